"""Rolling restarts: the running exchange's actors restarted one at a time, so each
re-reads the config file and recovers from its journal exactly as after a crash
(``docs/DEPLOY.md``). Listing a market (``actors/listing.py``) and adding shards
(``actors/growth.py``) go through it. Only one actor is down at a time, for about a
second; its peers' links hold what they owe it and deliver it when it is back, so
nothing acknowledged is lost."""
from __future__ import annotations

import time

import ray

from actors import health
from exchange.config import ExchangeConfig


def restart_in_turn(config: ExchangeConfig, names, wait_s: float = 120) -> list[str]:
    """Restart each actor of ``names`` that runs (in that order, each back up before the next);
    return the names restarted."""
    return [name for name in names if restart(config, name, wait_s)]


def restart(config: ExchangeConfig, name: str, wait_s: float = 120) -> bool:
    """Restart the actor ``name`` and wait until it is up again; False if it does not run
    (the config has none)."""
    before = health.status(config)["actors"].get(name)
    if before is None or before["state"] == "missing":
        return False
    ray.kill(ray.get_actor(name), no_restart=False)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        now = health.status(config)["actors"][name]
        if now["state"] == "up" and now["restarts"] > before["restarts"]:
            return True
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not come back within {wait_s} s of its restart")
