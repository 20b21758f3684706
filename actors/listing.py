"""Listing a spot market on a running exchange (issue 17).

The operator adds the market to the exchange's config file, the one every actor was
started with, and calls ``OperatorClient.list_market(config_path, name, data_dir)``
(it holds the deployment's keyring, which the new actor needs). Then:

1. **The change is checked** (``check``). The market must be new, and a spot market over
   assets the exchange already has. Nothing else the running actors' stored state depends
   on may change: the assets and their order, the other markets' grids, the shard count,
   and the node slot of every running actor (``[placement]``; pin them if the new market
   would shift them). A refused change moves nothing.
2. **The market actor starts**, on its node slot, with an empty book.
3. **The actors that route to markets or watch them restart one at a time**: the
   shards, the liquidator, surveillance, the treasury and the admin actor. Each one
   re-reads the config file as it starts and recovers from its journal, exactly as after
   a crash (``docs/DEPLOY.md``). Only one is down at a time, for about a second, and
   nothing acknowledged is lost. The markets already listed, the pools and the OTC desk
   go on untouched.

Not yet: a market over a **new asset**. Asset indexes are assigned in name order
(``exchange/config.py``) and stored balances are lists by index, so a new asset would
shift the indexes the stored state was written with: each store records its assets and
refuses a config whose assets differ (``LmdbStore.bind_assets``). Listing one needs
asset indexes fixed by listing order, and snapshots that widen their balance lists
(``docs/DEPLOY.md``). New shards are
added apart, by ``actors/growth.py``.
"""
from __future__ import annotations

from dataclasses import replace

import ray

from actors import bootstrap, placement, rolling
from exchange.config import ExchangeConfig, load_config

RESTARTED = ("liquidator", "surveillance", "treasury", "admin")     # and every shard


def check(running: ExchangeConfig, updated: ExchangeConfig, name: str) -> None:
    """Raise ``ValueError`` saying why ``updated`` cannot list ``name`` on ``running``."""
    if name in running.markets:
        raise ValueError(f"{name} is listed already")
    if name not in updated.markets:
        raise ValueError(f"{name} is not a spot market of the config file: add [markets.{name}] first")
    if updated.assets != running.assets:
        raise ValueError("the config file's assets differ from the running exchange's: a new asset cannot be "
                         "listed on a running exchange yet (actors/listing.py)")
    if updated.shards != running.shards:
        raise ValueError("the shard count cannot change with a listing: add shards on their own (actors/growth.py)")
    changed = sorted(m for m, spec in running.markets.items()
                     if m not in updated.markets or replace(updated.markets[m], index=0) != replace(spec, index=0))
    if changed:
        raise ValueError(f"the config file changes markets already listed: {', '.join(changed)}")
    before, after = placement.plan(running), placement.plan(updated)
    moved = sorted(a for a, slot in before.items() if after.get(a, slot) != slot)
    if moved:
        raise ValueError(f"listing {name} would move {', '.join(moved)} to another node slot (away from its data): "
                         "pin them under [placement.pin] first (docs/DEPLOY.md)")
    extra = sorted(set(updated.markets) - set(running.markets) - {name})
    if extra:
        raise ValueError(f"list one market at a time (the file also adds {', '.join(extra)})")


def list_market(handles: bootstrap.Handles, keyring, config_path: str, name: str, data_dir: str | None,
                detached: bool = False, wait_s: float = 120) -> bootstrap.Handles:
    """List ``name`` (module docstring); the handles with it."""
    updated = load_config(config_path)
    check(handles.config, updated, name)
    data = None if data_dir is None else str(data_dir)
    market = bootstrap.market_actor(updated, config_path, name, data, keyring, "detached" if detached else None)
    ray.get(market.stats.remote())
    rolling.restart_in_turn(updated, [f"shard:{i}" for i in range(updated.shards)] + list(RESTARTED), wait_s)
    return replace(handles, config=updated, markets={**handles.markets, name: market})
