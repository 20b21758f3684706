"""What metrics cost: the same closed-loop load with metrics on and off, in one run.

    python ops/bench/metrics.py --json [--orders 100000] [--runs 3] [--accounts 1000]

One local Ray cluster; for each run a fresh set of actors (fresh journals) is
created from the default config (metrics on) or the same config with
``[metrics] enabled = false`` (every actor and the client get ``NullMetrics``,
no metrics actor), runs alternate on/off so drift hits both, and the medians
are compared: ``metrics_cost_ratio = 1 - on/off`` (target < 0.10).

Also measured in-process: the recorders' own cost per command
(``ShardMetrics.record_batch`` on a 500-command batch, the client's
``record_round_trip``), what a shard's push costs (collect + pickle, once a
second), and one scrape of the metrics actor.
"""
from __future__ import annotations

import argparse
import asyncio
import pickle
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import ray

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actors import bootstrap  # noqa: E402
from ops.bench import report  # noqa: E402
from actors.client.exchange_client import ExchangeClient  # noqa: E402
from actors.link.link import Links  # noqa: E402
from actors.metrics.roles import ClientMetrics, ShardMetrics  # noqa: E402
from exchange.config import load_config  # noqa: E402
from exchange.messages.records import OrderAccepted, PlaceOrder  # noqa: E402
from ops.cli import _reserve_stdout_for_json  # noqa: E402
from ops.latency import LatencyRecorder  # noqa: E402
from ops.loadtest import OrderGenerator, closed_loop, fund_accounts  # noqa: E402

DEFAULT_CONFIG = ROOT / "config" / "default.toml"


def config_without_metrics(directory: Path) -> str:
    text = DEFAULT_CONFIG.read_text()
    changed, count = re.subn(r"(\[metrics\][^\[]*?enabled\s*=\s*)true", r"\1false", text)
    assert count == 1, "no [metrics] enabled = true in the default config"
    path = directory / "no-metrics.toml"
    path.write_text(changed)
    return str(path)


def one_run(config_path: str | None, args, seed: int) -> float:
    """Create the actors, fund accounts, send ``args.orders`` orders closed loop; orders/s."""
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as data:
        client = ExchangeClient(bootstrap.create_actors(config_path, data_dir=data, metrics_port=0))
        try:
            fund_accounts(client, args.accounts, progress=False)
            gen = OrderGenerator(client, client.config.market_list, args.accounts, seed)
            bar = SimpleNamespace(update=lambda n: None)
            started = time.perf_counter()
            asyncio.run(closed_loop(client, gen, args.orders, args.concurrency, args.batch, LatencyRecorder(), bar))
            return args.orders / (time.perf_counter() - started)
        finally:
            client.metrics.stop()
            bootstrap.destroy_actors(client.handles)
            time.sleep(1.0)                       # let the killed processes go before the next run


def recorder_costs() -> dict:
    """In-process cost of the hot-path recorders, per command."""
    config = load_config()
    shard = SimpleNamespace(ledger=SimpleNamespace(accounts={}), orders={}, products={})
    actor = SimpleNamespace(name="shard:0", config=config, shard=shard, commands=0, pending={},
                            links=Links({}, send=None))
    metrics = ShardMetrics(actor)
    commands = [PlaceOrder(i, 0, i, "BTC-USDT", 1, 1, 5_000_000, 10_000) for i in range(500)]
    results = [[OrderAccepted(i, 0, i, i, "BTC-USDT", 1, 5_000_000, 10_000, "")] for i in range(500)]
    rounds = 2_000
    started = time.perf_counter()
    for _ in range(rounds):
        metrics.record_batch(commands, results, 0.001)
    shard_us = (time.perf_counter() - started) / (rounds * 500) * 1e6
    client = ClientMetrics(config)
    started = time.perf_counter()
    for _ in range(rounds):
        client.record_round_trip(500, 0.01)
    client_us = (time.perf_counter() - started) / (rounds * 500) * 1e6
    started = time.perf_counter()
    for _ in range(200):
        payload = pickle.dumps(metrics.families())
    push_ms = (time.perf_counter() - started) / 200 * 1000
    return {"shard_record_batch_us_per_command": round(shard_us, 3),
            "client_record_round_trip_us_per_command": round(client_us, 3),
            "shard_push_collect_and_pickle_ms": round(push_ms, 3), "shard_push_bytes": len(payload)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders per run")
    parser.add_argument("--runs", type=int, default=3, help="runs with metrics on, and as many off")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.json:
        _reserve_stdout_for_json()
    costs = recorder_costs()
    bootstrap.init_ray(num_cpus=2)
    on: list[float] = []
    off: list[float] = []
    scrape_ms = None
    with tempfile.TemporaryDirectory(prefix="bench-metrics-config-") as scratch:
        no_metrics = config_without_metrics(Path(scratch))
        for run in range(args.runs):
            for enabled in ((True, False) if run % 2 == 0 else (False, True)):
                rate = one_run(None if enabled else no_metrics, args, seed=7 + run)
                (on if enabled else off).append(rate)
                if not args.json:
                    print(f"run {run + 1} metrics {'on ' if enabled else 'off'}: {rate:,.0f} orders/s", flush=True)
        handles = bootstrap.create_actors(None, metrics_port=0)
        time.sleep(2.5)
        started = time.perf_counter()
        text = ray.get(handles.metrics.scrape.remote())
        scrape_ms = (time.perf_counter() - started) * 1000
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        bootstrap.destroy_actors(handles)
    ray.shutdown()
    on_median, off_median = statistics.median(on), statistics.median(off)
    result = {"orders_per_run": args.orders, "runs": args.runs,
              "orders_per_s_metrics_on": [round(r) for r in on], "orders_per_s_metrics_off": [round(r) for r in off],
              "median_on": round(on_median), "median_off": round(off_median),
              "metrics_cost_ratio": round(1 - on_median / off_median, 4),
              "scrape_ms_idle": round(scrape_ms, 2), "series_idle": series, **costs}
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
