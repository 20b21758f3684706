"""``exchange verify --data DIR``: check stored state offline, without Ray.

It rebuilds every actor from its LMDB store the way a restart would (newest
intact snapshot + journal), then finishes what a restart would finish:
requests a shard had journaled but a market had not applied are applied, and
pushes a market had not delivered are delivered (receivers de-duplicate, as
live). On that state it checks:
- conservation of every asset: balances of all accounts on all shards + the
  fee accounts = deposits - withdrawals, to the smallest unit;
- no orphaned hold: every held amount belongs to a live order, and every live
  order is funded (``AccountShard.check_invariants``);
- replay: rebuilding each actor from its *oldest* kept snapshot and the whole
  journal after it gives the same state hash as from the newest.
The exchange must not be running on this directory. Exit code 1 on any
mismatch, with a report saying which check failed and where.
"""
from __future__ import annotations

import logging
from pathlib import Path

from actors.market_actor import MarketActor
from actors.shard_actor import AccountShardActor
from exchange.config import load_config


def _rebuild(config_path, data_dir: str, oldest: bool = False):
    config = load_config(config_path)
    shards = [AccountShardActor(config_path, i, data_dir, oldest) for i in range(config.shards)]
    markets = {m.name: MarketActor(config_path, m.name, data_dir, oldest) for m in config.market_list}
    return config, shards, markets


def _close(shards, markets) -> None:
    for actor in [*shards, *markets.values()]:
        if actor.journal.enabled:
            actor.journal.store.close()


def _hashes(shards, markets) -> dict[str, str]:
    out = {s.name: s.state_hash() for s in shards}
    out.update({m.actor_name: m.state_hash() for m in markets.values()})
    return out


def _finish_in_flight(shards, markets) -> dict:
    """Apply undelivered requests and pushes, as the restarted actors would."""
    requests = pushes = 0
    for shard in shards:
        for market_name, queued in shard.outbox.items():
            market = markets[market_name]
            fresh = [entry for entry in queued if entry[0] > market.applied_rseq[shard.index]]
            if fresh:
                market._apply(shard.index, fresh)
                requests += len(fresh)
            shard.outbox[market_name] = []
    for market in markets.values():
        book = market.engine.book
        for index, queued in market.queues.items():
            if queued:
                shards[index]._apply_push(market.name, queued, (book.best_bid(), book.best_ask()))
                pushes += len(queued)
                market.queues[index] = []
    return {"requests_applied": requests, "pushes_delivered": pushes}


def verify(data_dir: str, config_path: str | None = None) -> dict:
    if not Path(data_dir).is_dir():
        return {"ok": False, "error": f"no data directory at {data_dir}"}
    logging.getLogger("exchange").setLevel(logging.ERROR)
    config, shards, markets = _rebuild(config_path, data_dir)
    newest = _hashes(shards, markets)
    recovery = {a.name if hasattr(a, "index") else a.actor_name: a.recovery for a in [*shards, *markets.values()]}
    in_flight = _finish_in_flight(shards, markets)
    problems: list[str] = []
    for shard in shards:
        try:
            shard.shard.check_invariants()
        except AssertionError as exc:
            problems.append(f"{shard.name}: {exc}")
    imbalance = {}
    for asset in config.asset_list:
        i = asset.index
        ledgers = [s.shard.ledger for s in shards]
        total = sum(ledger.totals()[i] for ledger in ledgers)
        net = sum(ledger.deposited[i] - ledger.withdrawn[i] for ledger in ledgers)
        imbalance[asset.name] = total - net
        if total != net:
            problems.append(f"conservation: {asset.name} off by {total - net} minor units")
    _close(shards, markets)
    _, shards_old, markets_old = _rebuild(config_path, data_dir, oldest=True)
    oldest = _hashes(shards_old, markets_old)
    _close(shards_old, markets_old)
    for name, digest in newest.items():
        if oldest[name] != digest:
            problems.append(f"replay: {name} from its oldest snapshot hashes {oldest[name][:12]}, "
                            f"from its newest {digest[:12]}")
    return {"ok": not problems, "problems": problems, "imbalance": imbalance, "in_flight": in_flight,
            "recovery": recovery, "state_hashes": newest,
            "open_orders": sum(len(s.shard.orders) for s in shards),
            "accounts": sum(len(s.shard.ledger.accounts) for s in shards)}
