"""Benchmark: what durability costs — journal appends, snapshots, end to end.

1. Journal appends. ``Journal.write`` (orjson encoding + one LMDB transaction,
   the path the actors use) on a fresh ``LmdbStore`` per case, durability
   ``sync`` (fsync per commit) and ``async`` (the OS flushes), batches of 1, 64
   and 1,024 real-shaped records (``[COMMAND, encode(PlaceOrder), None]``, ~95
   bytes). Each case runs for ``--append-seconds`` or ``--append-max-records``,
   whichever ends first. Reports ``append_<mode>_batch_<n>_records_per_s``
   (records / time inside ``write``) and the per-commit latency
   ``commit_<mode>_batch_<n>_p50_ms`` / ``_p99_ms``.
2. Snapshots. A shard with 1,000,000 funded accounts (opened straight through
   ``Ledger.open``) and a BTC-USDT book with 1,000,000 resting orders (added
   through ``OrderBook.add``, 1,000 price levels a side). Write =
   ``orjson.dumps(shard_state/market_state)`` + synced ``write_snapshot``
   (which reads back and checks it); load = ``latest_snapshot`` +
   ``orjson.loads`` + ``restore_shard/restore_market``. Median of ``--runs``;
   run under the actor GC policy (collector off, as during actor recovery).
   Reports ``snapshot_1m_accounts_write_s``/``_load_s``/``_bytes`` and the same
   for ``1m_orders``.
3. End to end. ``ops.loadtest.run_loadtest`` twice in one run (closed loop,
   the CLI's options: 2 markets, 8 senders x 500 orders, seed 7, 2 CPUs),
   journals on (sync, temp dir) then off. Reports ``e2e_orders_per_s_durable``,
   ``e2e_orders_per_s_no_durability`` and ``durability_cost_ratio`` =
   1 - durable / no_durability.

Temporary directories are removed. Progress goes to stderr; stdout carries
only the result (with ``--json``: exactly one JSON object). About 2-4 minutes
on 2 cores.

Usage: python ops/bench/journal.py --json [--skip-e2e] [--skip-snapshots] [--e2e-orders 200000]
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402
from actors.durability.journal import Journal  # noqa: E402
from actors.gc_policy import GcPolicy  # noqa: E402
from actors.durability.storage import LmdbStore  # noqa: E402
from exchange.messages.codec import encode  # noqa: E402
from exchange.config import load_config  # noqa: E402
from exchange.matching.market import MarketEngine  # noqa: E402
from exchange.messages.records import PlaceOrder  # noqa: E402
from exchange.messages.tags import RecordTag  # noqa: E402
from exchange.matching.orders import RestingOrder  # noqa: E402
from exchange.accounts.shard import AccountShard  # noqa: E402
from exchange.snapshot import market_state, restore_market, restore_shard, shard_state  # noqa: E402

MARKET = "BTC-USDT"
POOL = 8192                      # distinct records; every batch size divides it


def progress(message: str) -> None:
    print(f"[journal bench] {message}", file=sys.stderr, flush=True)


def records_pool() -> list[list]:
    """Journal records shaped like a shard's command records (request id as the load test makes them)."""
    prefix = 0x5EED_CAFE << 32
    return [[RecordTag.COMMAND, encode(PlaceOrder(f"{prefix | i}:{i}", 0, 1 + i % 2000, MARKET, 1 + i % 2, 1,
                                    (5_000_000 + i % 40) * 10_000, (1 + i % 10) * 10_000, 1)), None]
            for i in range(POOL)]


def bench_append(durability: str, batch: int, pool: list, seconds: float, max_records: int) -> dict:
    """Group commits of ``batch`` records for ``seconds`` (or ``max_records``) on a fresh store."""
    directory = tempfile.mkdtemp(prefix="bench-journal-")
    store = LmdbStore(directory, durability=durability)
    journal = Journal(store)
    try:
        for k in range(3):                                    # warm-up commits
            journal.write(pool[k * batch % POOL:k * batch % POOL + batch])
        latencies, written, k = [], 0, 0
        perf = time.perf_counter
        deadline = perf() + seconds
        while written < max_records and perf() < deadline:
            start = k * batch % POOL
            records = pool[start:start + batch]
            t0 = perf()
            journal.write(records)
            latencies.append(perf() - t0)
            written += batch
            k += 1
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
    latencies.sort()
    n = len(latencies)
    name = f"{durability}_batch_{batch}"
    return {f"append_{name}_records_per_s": round(written / sum(latencies)),
            f"commit_{name}_p50_ms": round(latencies[n // 2] * 1e3, 4),
            f"commit_{name}_p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1e3, 4),
            f"commit_{name}_commits": n}


def build_shard(config, accounts: int) -> AccountShard:
    """A shard holding ``accounts`` funded accounts (straight into the ledger)."""
    shard = AccountShard(config)
    ledger = shard.ledger
    funds = [(a.index, 10 ** (a.scale + 3)) for a in config.asset_list]
    for account_id in range(1, accounts + 1):
        account = ledger.open(account_id, config.default_fee_tier)
        for index, amount in funds:
            account.available[index] = amount + account_id
            ledger.deposited[index] += amount + account_id
    return shard


def build_market(config, orders: int) -> MarketEngine:
    """A book with ``orders`` resting orders, half bids and half asks over 1,000 levels a side."""
    market = MarketEngine(config.markets[MARKET])
    add, mid = market.book.add, 5_000_000                     # ticks (50,000.00 USDT)
    for i in range(orders):
        side = 1 + i % 2
        offset = 1 + (i // 2) % 1000
        price = mid - offset if side == 1 else mid + offset
        lots = 1 + i % 50
        add(RestingOrder((i + 1) << 10, 1 + i % 100_000, side, price, lots, lots, 1000, 1, i))
    market.seq = market.trade_count = orders
    market.last_price = mid
    return market


def time_snapshot(state_of, restore, obj, size_of, directory: str, runs: int) -> dict:
    """Median write (state -> orjson -> synced LMDB) and load (LMDB -> orjson -> object) seconds."""
    store = LmdbStore(directory, durability="sync")
    writes, loads, size = [], [], 0
    try:
        for run in range(1, runs + 1):
            gc.collect()
            t0 = time.perf_counter()
            payload = orjson.dumps(state_of(obj))
            store.write_snapshot(run, payload)
            writes.append(time.perf_counter() - t0)
            size = len(payload)
            del payload
            gc.collect()
            t0 = time.perf_counter()
            position, payload = store.latest_snapshot()
            restored = restore(orjson.loads(payload))
            loads.append(time.perf_counter() - t0)
            assert position == run and size_of(restored) == size_of(obj), "snapshot did not round-trip"
            del payload, restored
    finally:
        store.close()
    return {"write_s": round(statistics.median(writes), 3), "load_s": round(statistics.median(loads), 3),
            "bytes": size}


def bench_snapshots(items: int, runs: int) -> dict:
    config = load_config()
    label = "1m" if items == 1_000_000 else str(items)
    out: dict = {}
    GcPolicy().install()                                      # what the actors run recovery under
    directory = tempfile.mkdtemp(prefix="bench-snapshot-")
    try:
        t0 = time.perf_counter()
        shard = build_shard(config, items)
        out[f"snapshot_{label}_accounts_build_s"] = round(time.perf_counter() - t0, 2)
        progress(f"built shard with {items:,} accounts; timing snapshots")
        r = time_snapshot(shard_state, lambda s: restore_shard(config, s), shard,
                          lambda s: len(s.ledger.accounts), f"{directory}/shard", runs)
        out.update({f"snapshot_{label}_accounts_{k}": v for k, v in r.items()})
        del shard
        gc.collect()
        t0 = time.perf_counter()
        market = build_market(config, items)
        out[f"snapshot_{label}_orders_build_s"] = round(time.perf_counter() - t0, 2)
        progress(f"built book with {items:,} orders; timing snapshots")
        r = time_snapshot(market_state, lambda s: restore_market(config, s), market,
                          lambda m: len(m.book.orders), f"{directory}/market", runs)
        out.update({f"snapshot_{label}_orders_{k}": v for k, v in r.items()})
        del market
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        gc.unfreeze()
        gc.enable()
        gc.collect()
    return out


def bench_e2e(orders: int, accounts: int, rounds: int = 2) -> dict:
    """The load test with journals on and off, alternating ``rounds`` times in
    this one process (on, off, on, off...); the medians are compared, so
    neither side always runs first on a warmer or colder machine."""
    from ops.loadtest import run_loadtest
    from ops.workload import SPOT_MIX
    rates: dict[bool, list] = {False: [], True: []}
    for _ in range(rounds):
        for no_durability in (False, True):
            args = argparse.Namespace(markets=2, accounts=accounts, orders=orders, concurrency=8, batch=500,
                                      rate=None, tick_ms=5.0, seed=7, no_progress=True, no_durability=no_durability,
                                      config=None, address=None, data=None, num_cpus=2, json=True,
                                      log_level="WARNING", mix=SPOT_MIX)   # the order path's cost
            result = run_loadtest(args)
            rates[no_durability].append(result["orders_per_s"])
            progress(f"e2e durability {result['durability']}: {result['orders_per_s']:,} orders/s, "
                     f"p99 {result.get('p99_ms')} ms, conservation {'ok' if result['conservation_ok'] else 'BROKEN'}")
    durable, memory = statistics.median(rates[False]), statistics.median(rates[True])
    return {"e2e_orders": orders, "e2e_orders_per_s_durable": round(durable),
            "e2e_orders_per_s_no_durability": round(memory), "e2e_runs_durable": rates[False],
            "e2e_runs_no_durability": rates[True], "durability_cost_ratio": round(1 - durable / memory, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append-seconds", type=float, default=1.5, help="time bound of each append case")
    parser.add_argument("--append-max-records", type=int, default=2_000_000, help="record bound of each append case")
    parser.add_argument("--snapshot-items", type=int, default=1_000_000, help="accounts / resting orders")
    parser.add_argument("--runs", type=int, default=3, help="snapshot write+load runs (median reported)")
    parser.add_argument("--e2e-orders", type=int, default=200_000, help="orders per load-test run")
    parser.add_argument("--e2e-accounts", type=int, default=2_000, help="accounts per load-test run")
    parser.add_argument("--skip-snapshots", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    # Keep stdout for the result: Ray forwards worker output to stdout, so point fd 1 at stderr.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from ops import logs
    logs.setup("WARNING")

    started = time.perf_counter()
    result: dict = {}
    pool = records_pool()
    result["journal_record_bytes_mean"] = round(sum(len(orjson.dumps(r)) for r in pool) / POOL, 1)
    for durability in ("sync", "async"):
        for batch in (1, 64, 1024):
            r = bench_append(durability, batch, pool, args.append_seconds, args.append_max_records)
            progress(", ".join(f"{k}={v}" for k, v in r.items()))
            result.update(r)
    if not args.skip_snapshots:
        result.update(bench_snapshots(args.snapshot_items, args.runs))
        progress(", ".join(f"{k}={v}" for k, v in result.items() if k.startswith("snapshot")))
    if not args.skip_e2e:
        result.update(bench_e2e(args.e2e_orders, args.e2e_accounts))
    result.update({"wall_s": round(time.perf_counter() - started, 1), "python": sys.version.split()[0]})
    report(result, args.json, out)
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
