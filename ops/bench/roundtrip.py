"""Benchmark: one order at a time on an idle exchange (no batching help).

Places ``--orders`` resting limit orders one after another through the Python
client and reports the round-trip latency client -> shard -> market -> shard
-> client, with durability on (a temporary LMDB directory) and off.

Baseline in the same run: Ray's idle call p50 on the same cluster
(``ops/bench/ray_rate.py: idle_call_p50_ms``, one call at a time to a trivial
actor). The critical path is ``CRITICAL_PATH_CALLS`` call-equivalents (the
client's ``execute`` round trip, and the shard's ``submit`` out with the
market's ``on_market_events`` back), so ``ratio_to_ray`` = p50 / (calls x
idle p50): 1.0 would be an exchange that costs nothing but Ray's messaging.
Usage: python ops/bench/roundtrip.py --json
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.client.exchange_client import ExchangeClient  # noqa: E402
from ops.bench.ray_rate import idle_call_p50_ms  # noqa: E402
from ops.latency import LatencyRecorder  # noqa: E402

CRITICAL_PATH_CALLS = 2


def measure(orders: int, data_dir: str | None) -> dict:
    client = ExchangeClient.start(data_dir=data_dir)
    try:
        client.open_account(1)
        client.deposit(1, "USDT", "100000000")
        latency = LatencyRecorder()
        for _ in range(orders):
            started = time.perf_counter()
            result = client.place_order(1, "BTC-USDT", "buy", "0.0001", price="40000.00")
            latency.add(time.perf_counter() - started)
            assert result.status == "open"
        out = latency.percentiles((0.5, 0.99))
        idle = idle_call_p50_ms()
        out.update(ray_idle_call_p50_ms=idle, critical_path_calls=CRITICAL_PATH_CALLS,
                   ratio_to_ray=round(out["p50_ms"] / (CRITICAL_PATH_CALLS * idle), 2))
        return out
    finally:
        client.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="roundtrip-")
    try:
        result = {"durable": measure(args.orders, scratch), "no_durability": measure(args.orders, None)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
