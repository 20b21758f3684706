"""Benchmark: margin-level recomputation on a price tick, and liquidation throughput.

1. ``margin_recompute_1m_accounts_s``: ``--accounts`` (default 1,000,000)
   margin books that all owe something, split over ``--shards`` worker
   processes (one per account shard, as the shard actors are), each re-valuing
   its books at a new index price with the shard actor's own
   ``set_index_prices`` -> ``scan_margin`` (levels, zones, notifications on a
   zone change, the margin-level metrics, hand-overs to the liquidator). The
   figure is the wall time from the tick until the slowest shard is done (the
   shards run in parallel, as the shard actors do).
2. ``liquidations_per_s``: a cascade on real Ray actors. ``--cascade``
   accounts (default 200) each hold a margin long; the index falls under
   their liquidation line in one tick; the figure is accounts liquidated
   (taken over, orders placed and filled, loans repaid, handed back) per
   second from the tick until the liquidator has finished the last one.
   ``liquidations_per_s_engine`` is the same cascade in the single-process
   engine (the domain's cost without Ray).

Usage: python ops/bench/margin.py --json [--accounts 1000000] [--shards 2] [--cascade 200] [--no-ray]
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402
from exchange.config import load_config  # noqa: E402
from exchange.engine import Engine  # noqa: E402
from exchange.margin.liquidation import next_action  # noqa: E402
from exchange.messages.records import (Deposit, FinishLiquidation, LiquidationStep, OpenAccount,  # noqa: E402
                               PlaceMarginOrder, PlaceOrder, StartLiquidation)
from ops.margin_setup import lender, margin_trader  # noqa: E402
from exchange.matching.orders import OrderType, Side, TimeInForce  # noqa: E402

USDT, BTC = 10**6, 10**8
BUY, SELL, LIMIT, IOC, GTC = int(Side.BUY), int(Side.SELL), int(OrderType.LIMIT), int(TimeInForce.IOC), \
    int(TimeInForce.GTC)


# ---- 1. recompute on a tick ----------------------------------------------------------

def _shard_worker(shard: int, books: int, seed: int, barrier, results) -> None:
    """One shard process: an ``AccountShardActor`` built in-process (no Ray; its
    journal off) with ``books`` margin books, re-valued once at a new tick by
    its own ``scan_margin``: levels, zones, notifications, the margin metrics.
    Handing a book to the liquidator is a fire-and-forget Ray call; here it is
    counted instead (no Ray in the worker)."""
    from actors.capability import Keyring, Role
    from actors.shard_actor import AccountShardActor

    keyring = Keyring.mint()
    actor = AccountShardActor(None, shard, keyring=keyring)
    index = keyring.capability(Role.INDEX)
    config = actor.config
    desk = actor.shard.margin
    rng = random.Random(seed + shard)
    b, e, u = (config.assets[a].index for a in ("BTC", "ETH", "USDT"))
    for n in range(books):
        book = desk.book(n * 2 + shard, "BTC-USDT" if n % 4 == 0 else "", create=True)
        book.available[b] = rng.randint(1, 2 * BTC)
        book.available[u] = rng.randint(0, 20_000 * USDT)
        book.scaled[u] = rng.randint(1_000 * USDT, 80_000 * USDT)
        if n % 3 == 0:
            book.available[e] = rng.randint(1, 10 * BTC)
            book.scaled[b] = rng.randint(1, BTC // 10)
    desk.pool_index[u] = desk.pool_index[u] * 1_000_123 // 1_000_000
    handed: list = []
    actor._hand_over = lambda key, level: handed.append(key)
    actor.set_index_prices(index, {}, {"BTC": 50_000 * USDT, "ETH": 3_000 * USDT})     # the previous tick
    handed.clear()
    for key in list(actor.zones):
        desk.books[key].liquidating = actor.zones[key] == 3                   # those are taken over already
    barrier.wait()
    started = time.perf_counter()
    actor.set_index_prices(index, {}, {"BTC": 48_500 * USDT, "ETH": 2_900 * USDT})   # the tick being measured
    finished = time.perf_counter()
    results.put((shard, started, finished, len(desk.books), len(handed)))


def recompute(accounts: int, shards: int, seed: int) -> dict:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(shards), context.Queue()
    workers = [context.Process(target=_shard_worker, args=(s, accounts // shards, seed, barrier, results))
               for s in range(shards)]
    for w in workers:
        w.start()
    done = [results.get() for _ in workers]
    for w in workers:
        w.join()
    start, end = min(d[1] for d in done), max(d[2] for d in done)
    return {"margin_recompute_1m_accounts_s": round((end - start) * 1_000_000 / accounts, 4),
            "margin_recompute_s": round(end - start, 4), "margin_accounts": sum(d[3] for d in done),
            "margin_recompute_per_shard_s": [round(d[2] - d[1], 4) for d in sorted(done)],
            "accounts_handed_to_liquidator": sum(d[4] for d in done), "shards": shards}


# ---- 2. a liquidation cascade --------------------------------------------------------------

def _cascade_commands(accounts: list[int], ts: int) -> tuple[list, list, list]:
    """(the maker's and the lender's commands, the traders' setup, their 3x margin longs)."""
    market = [OpenAccount("o-maker", ts, 1, "regular"), Deposit("d-maker-b", ts, 1, "BTC", 1_000 * BTC),
             Deposit("d-maker-u", ts, 1, "USDT", 10**8 * USDT),
             PlaceOrder("ask", ts, 1, "BTC-USDT", SELL, LIMIT, 50_000 * USDT, len(accounts) * BTC // 20, GTC),
             PlaceOrder("bid", ts, 1, "BTC-USDT", BUY, LIMIT, 31_900 * USDT, len(accounts) * BTC // 20, GTC),
             *lender("bench", 2, ts, {"USDT": 10**7 * USDT})]
    traders = [command for a in accounts for command in margin_trader("bench", a, ts, 1_000 * USDT, "L3", "3x")]
    longs = [PlaceMarginOrder(f"l{a}", ts, a, "BTC-USDT", BUY, LIMIT, 50_000 * USDT, BTC // 20, IOC)
             for a in accounts]
    return market, traders, longs


def cascade_engine(count: int) -> dict:
    engine = Engine(load_config())
    engine.set_index_prices({"BTC": 50_000 * USDT, "USDT": USDT})
    accounts = list(range(100, 100 + count))
    market, traders, longs = _cascade_commands(accounts, 0)
    for command in market + traders + longs:
        engine.apply(command)
    engine.set_index_prices({"BTC": 32_000 * USDT})
    lots = {m.name: (m.base.name, m.quote.name, m.min_lots * m.lot_minor) for m in engine.config.market_list}
    desk = engine.shard.margin
    started = time.perf_counter()
    liquidated = 0
    for key, _ in desk.levels(engine.prices):
        account = key[0]
        engine.apply(StartLiquidation(f"s{account}", 0, account, "", engine.prices))
        for step in range(1, 50):
            action = next_action(desk.book_view(desk.books[key], engine.prices), ["BTC-USDT"], lots)
            if action[0] != "trade":
                break
            engine.apply(LiquidationStep(f"x{account}:{step}", 0, account, "", "BTC-USDT", step, engine.prices))
        engine.apply(FinishLiquidation(f"f{account}", 0, account, ""))
        liquidated += 1
    seconds = time.perf_counter() - started
    engine.check_invariants()
    assert not any(engine.conservation().values())
    return {"liquidations_per_s_engine": round(liquidated / seconds, 1), "cascade_engine_accounts": liquidated}


def cascade_ray(count: int) -> dict:
    import ray

    from actors import bootstrap
    from actors.capability import Keyring
    from actors.client.operator import OperatorClient

    bootstrap.init_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as data:
        keyring = Keyring.mint()
        operator = OperatorClient(bootstrap.create_actors(data_dir=data, keyring=keyring), keyring)
        client = operator.client
        try:
            now = time.time_ns()
            operator.set_index_component("BTC", "bench", 50_000 * USDT, 1, now)
            accounts = list(range(1_000, 1_000 + count))
            market, traders, longs = _cascade_commands(accounts, now)
            client.execute(market)
            client.execute(traders)
            filled = client.execute(longs)
            opened = sum(1 for events in filled if any(type(e).__name__ == "Fill" for e in events))
            started = time.perf_counter()
            operator.set_index_component("BTC", "bench", 32_000 * USDT, 1, time.time_ns())
            done = 0
            deadline = time.monotonic() + 600
            while done < opened and time.monotonic() < deadline:
                records = client.liquidations(10_000)
                done = sum(1 for r in records if r.get("outcome") == "finished")
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            audit = client.audit()
        finally:
            bootstrap.destroy_actors(client.handles)
            ray.shutdown()
    return {"liquidations_per_s": round(done / seconds, 1), "cascade_accounts": opened, "cascade_liquidated": done,
            "cascade_s": round(seconds, 3), "cascade_conservation_ok": audit["ok"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000, help="margin accounts re-valued on one tick")
    parser.add_argument("--shards", type=int, default=2, help="shard processes re-valuing in parallel")
    parser.add_argument("--cascade", type=int, default=200, help="accounts liquidated in the cascade")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-ray", action="store_true", help="skip the cascade on Ray actors")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = recompute(args.accounts, args.shards, args.seed)
    result.update(cascade_engine(args.cascade))
    if not args.no_ray:
        result.update(cascade_ray(args.cascade))
    result["python"] = sys.version.split()[0]
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
