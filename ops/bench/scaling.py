"""Benchmark: how throughput grows with markets and shards (issue 17).

For each count of spot markets (``--markets 1,2,4,8``) and account shards (``--shards
1,2,4``) it starts the exchange (the built-in config laid under one with that many shards
and markets: BTC-USDT, ETH-USDT, then synthetic A1-USDT...), funds ``--accounts``
accounts, and drives ``--orders`` orders of the load test's workload (``ops/workload.py``,
closed loop) through the actors; then it stops them and goes to the next.

This machine has 2 cores, which caps the total whatever the layout. So beside the
throughput each row reports what scales on a cluster:

- ``per_market_per_s`` / ``per_shard_per_s``: the throughput each actor carries;
- ``cpu_us_per_order``: CPU time the whole machine spent per order (every process:
  actors, Ray, the driver), from the kernel's counters (``psutil.cpu_times``);
- ``cpu_busy``: the share of the machine's cores that were busy.

A warm-up layout runs first and is not kept (Ray starts its worker processes, modules
load). Baselines from the same run: the first layout's throughput (``ratio_to_first``) and Ray's
own batched message rate (``ray_batched_msgs_per_s``). ``projection`` states what N nodes
of this machine's size should reach: cores / CPU per order for each node (a range, from
the dearest layout to the cheapest), times N, as long as no single market actor exceeds
the per-market rate measured with one market (each actor runs on one core).

Usage: python ops/bench/scaling.py --json [--markets 1,2,4,8] [--shards 1,2,4] [--orders 60000]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402

SYNTHETIC = ("A1", "A2", "A3", "A4", "A5", "A6")


def overlay(markets: int, shards: int) -> str:
    """A config laid over the built-in one: ``shards`` shards and ``markets`` spot markets."""
    lines = ['extends = "default"', "[exchange]", f"shards = {shards}"]
    for asset in SYNTHETIC[:max(0, markets - 2)]:
        lines += [f"[assets.{asset}]", "scale = 8", f"[markets.{asset}-USDT]", f'base = "{asset}"', 'quote = "USDT"',
                  'tick_size = "0.01"', 'lot_size = "0.001"', 'min_qty = "0.001"', 'max_qty = "5000"',
                  "max_slippage_bps = 500", f"[index.assets.{asset}]", 'start_price = "3000.00"',
                  "volatility_bps = 10", 'components = [{ source = "sim-alpha", weight = 100 }]']
    return "\n".join(lines) + "\n"


def layout(markets: int, shards: int, orders: int, accounts: int, seed: int, folder: Path) -> dict:
    import psutil

    from actors import bootstrap
    from actors.client.exchange_client import ExchangeClient
    from ops.latency import LatencyRecorder
    from ops.loadtest import closed_loop, fund_accounts
    from ops.workload import SPOT_MIX, WorkloadGenerator, makers

    path = folder / f"m{markets}-s{shards}.toml"
    path.write_text(overlay(markets, shards))
    client = ExchangeClient(bootstrap.create_actors(path, data_dir=tempfile.mkdtemp(dir=folder)))
    try:
        fund_accounts(client, accounts, False, makers(accounts))
        gen = WorkloadGenerator(client, client.config.market_list[:markets], accounts, seed, mix=SPOT_MIX)
        latency = LatencyRecorder()

        class Quiet:
            def update(self, _):
                pass
        cpu_before, started = psutil.cpu_times(), time.perf_counter()
        asyncio.run(closed_loop(client, gen, orders, 8, 200, latency, Quiet()))
        elapsed, cpu_after = time.perf_counter() - started, psutil.cpu_times()
        busy = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("user", "system", "nice", "irq", "softirq"))
        rate = orders / elapsed
        return {"markets": markets, "shards": shards, "orders": orders, "orders_per_s": round(rate),
                "per_market_per_s": round(rate / markets), "per_shard_per_s": round(rate / shards),
                "cpu_us_per_order": round(busy / orders * 1e6, 1),
                "cpu_busy": round(busy / (elapsed * psutil.cpu_count()), 2), **latency.percentiles((0.5, 0.99)),
                "conservation_ok": client.audit()["ok"]}
    finally:
        bootstrap.destroy_actors(client.handles)             # (the next layout reuses this Ray)


def run(market_counts: list[int], shard_counts: list[int], orders: int, accounts: int, seed: int) -> dict:
    import psutil
    import ray

    from actors import bootstrap
    from ops.bench.ray_rate import measure as measure_ray

    bootstrap.init_ray(num_cpus=2)
    try:
        rows = []
        with tempfile.TemporaryDirectory() as scratch:
            layout(1, 1, max(1_000, orders // 10), accounts, seed, Path(scratch))   # warm-up: Ray's workers
            ray_rate = measure_ray(1_000, 2.0)                                    # start, imports load; not kept
            for markets in market_counts:
                for shards in shard_counts:
                    rows.append(layout(markets, shards, orders, accounts, seed, Path(scratch)))
                    print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        first = rows[0]["orders_per_s"]
        for row in rows:
            row["ratio_to_first"] = round(row["orders_per_s"] / first, 2)
        cores = psutil.cpu_count()
        cheapest, dearest = min(r["cpu_us_per_order"] for r in rows), max(r["cpu_us_per_order"] for r in rows)
        one_market = max(r["per_market_per_s"] for r in rows if r["markets"] == 1)
        low, high = cores / (dearest / 1e6), cores / (cheapest / 1e6)
        return {"rows": rows, "ray_batched_msgs_per_s": round(ray_rate), "cores": cores,
                "all_ok": all(r["conservation_ok"] for r in rows),
                "projection": {"cpu_us_per_order": [cheapest, dearest],
                               "per_node_orders_per_s": [round(low), round(high)],
                               "per_market_actor_limit_per_s": one_market,
                               "nodes": {n: [round(n * low), round(n * high)] for n in (1, 2, 4, 8, 16)},
                               "note": f"N nodes of {cores} cores, from the dearest to the cheapest CPU per "
                                       "order measured (the load generator's share included), while each market "
                                       "stays under the one-market rate (markets spread over nodes by "
                                       "[placement])"}}
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    counts = lambda text: [int(x) for x in text.split(",")]   # noqa: E731
    parser.add_argument("--markets", type=counts, default=[1, 2, 4, 8], help="spot market counts (default 1,2,4,8)")
    parser.add_argument("--shards", type=counts, default=[1, 2, 4], help="shard counts (default 1,2,4)")
    parser.add_argument("--orders", type=int, default=60_000, help="orders per layout")
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report(run(args.markets, args.shards, args.orders, args.accounts, args.seed), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
