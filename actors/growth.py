"""Adding account shards to a running exchange (issue 17), without moving an account.

The operator raises ``[exchange] shards`` in the exchange's config file and records the
count it replaces, with the account id from which new accounts may go to the new shards:

    [exchange]
    shards = 4
    earlier_shards = [{ shards = 2, below_account = 1000000 }]

Accounts below the bound keep routing over the earlier count, so each stays on the shard
that holds it; ids from the bound on spread over every shard (``exchange.core.routing``).
The bound must be above every account already open, with room for those opened while
the change runs: an exchange that gives out account ids in sequence sets it a little above
the next one. Then ``OperatorClient.add_shards(config_path, data_dir)``:

1. **The change is checked** (``check``): more shards, the earlier counts as they were
   plus the count replaced, nothing else in the file changed but ``[placement]`` (a new
   shard may be pinned to a new node slot), no running actor moved off its node slot,
   and every shard's highest account below the bound. A refused change
   moves nothing.
2. **The new shards start**, empty, on their node slots.
3. **Every other actor restarts in turn** (``actors/rolling.py``): the shards first, so
   they route by the new layout, then the markets, the pools, the index, the liquidator,
   surveillance, the treasury, the admin actor, the OTC desk and the metrics collector,
   each re-reading the config file and recovering from its journal.
4. **No account strays**: each shard is asked for the accounts it holds and does not own
   (one opened above the bound while the change ran); any is reported, and such an
   account must be moved offline, as below.

Moving accounts already open to another shard (re-sharding) is not done here; it would
be: stop the exchange, replay each shard's journal into the new layout offline (every
account's balances, orders and positions to the shard that owns it under the new count,
the markets' books unchanged), check conservation against the old stores, then start.
"""
from __future__ import annotations

from dataclasses import replace

import ray

from actors import bootstrap, placement, rolling
from exchange.config import ExchangeConfig, load_config


def check(running: ExchangeConfig, updated: ExchangeConfig, highest_account: int) -> None:
    """Raise ``ValueError`` saying why ``updated`` cannot add shards to ``running``, whose
    highest account id open is ``highest_account``."""
    if updated.shards <= running.shards:
        raise ValueError(f"the config file has {updated.shards} shards: more than the {running.shards} running "
                         "are needed to add any")
    if updated.earlier_shards[:-1] != running.earlier_shards or updated.earlier_shards[-1:] == () \
            or updated.earlier_shards[-1][1] != running.shards:
        raise ValueError(f"[exchange] earlier_shards must keep the running ones and add "
                         f"{{ shards = {running.shards}, below_account = ... }}")
    same = replace(updated, shards=running.shards, earlier_shards=running.earlier_shards,
                   sections={**updated.sections, "placement": running.sections.get("placement")})
    if same != replace(running, sections={**running.sections, "placement": running.sections.get("placement")}):
        raise ValueError("the config file changes more than the shards (and their placement): add shards on "
                         "their own")
    bound = updated.earlier_shards[-1][0]
    if highest_account >= bound:
        raise ValueError(f"account {highest_account} is open and not below below_account = {bound}: "
                         "it would move to another shard; raise the bound")
    before, after = placement.plan(running), placement.plan(updated)
    moved = sorted(a for a, slot in before.items() if after.get(a, slot) != slot)
    if moved:
        raise ValueError(f"adding shards would move {', '.join(moved)} to another node slot (away from its "
                         "data): pin them under [placement.pin] first (docs/DEPLOY.md)")


def add_shards(handles: bootstrap.Handles, keyring, config_path: str, data_dir: str | None, detached: bool = False,
               wait_s: float = 120) -> tuple[bootstrap.Handles, dict]:
    """Add the shards of ``config_path`` (module docstring); the handles with them, and what
    was done: the shards started, the actors restarted, the strays found."""
    running, updated = handles.config, load_config(config_path)
    seen = ray.get([shard.routing.remote() for shard in handles.shards])
    check(running, updated, max(s["highest_account"] for s in seen))
    data = None if data_dir is None else str(data_dir)
    lifetime = "detached" if detached else None
    added = [bootstrap.shard_actor(updated, config_path, i, data, keyring, lifetime)
             for i in range(running.shards, updated.shards)]
    ray.get([shard.stats.remote() for shard in added])
    names = [n for n in placement.actor_names(updated) if not n.startswith("shard:")]
    restarted = rolling.restart_in_turn(updated, [f"shard:{i}" for i in range(running.shards)] + names, wait_s)
    shards = [*handles.shards, *added]
    strays = {f"shard:{i}": s["strays"] for i, s in enumerate(ray.get([shard.routing.remote() for shard in shards]))
              if s["strays"]}
    done = {"shards": updated.shards, "added": [f"shard:{i}" for i in range(running.shards, updated.shards)],
            "restarted": restarted, "strays": strays}
    return replace(handles, config=updated, shards=shards), done
