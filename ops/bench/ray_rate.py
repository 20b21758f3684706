"""What Ray itself moves on this machine: small messages per second in batches.

``measure(batch, seconds)`` pipelines calls carrying ``batch`` small tuples to
a trivial actor (4 calls in flight) and returns messages per second. The load
test reports it beside the exchange's end-to-end rate, so the ratio between
the two is visible. ``idle_call_p50_ms(calls)``: one call at a time to a
trivial actor, the median round trip (the round-trip benchmark's baseline).
Usage: python ops/bench/ray_rate.py --json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


@ray.remote(num_cpus=0)
class Sink:
    def take(self, batch: list) -> int:
        return len(batch)


def measure(batch: int = 1_000, seconds: float = 2.0, in_flight: int = 4) -> float:
    """Messages per second through one Ray actor with ``batch`` messages per call."""
    sink = Sink.remote()
    payload = [(i, i * 7, "BTC-USDT", 1, 50_000_000_000, 10_000) for i in range(batch)]
    ray.get(sink.take.remote(payload))
    sent, refs = 0, []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        refs.append(sink.take.remote(payload))
        if len(refs) >= in_flight:
            sent += ray.get(refs.pop(0))
    sent += sum(ray.get(refs))
    rate = sent / (time.perf_counter() - started)
    ray.kill(sink)
    return rate


def idle_call_p50_ms(calls: int = 300) -> float:
    """The median milliseconds of one Ray call to an idle actor, one call at a time."""
    sink = Sink.remote()
    ray.get(sink.take.remote([]))
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        ray.get(sink.take.remote([]))
        samples.append(time.perf_counter() - started)
    ray.kill(sink)
    samples.sort()
    return round(samples[len(samples) // 2] * 1000, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    out = {f"msgs_per_s_batch_{b}": round(measure(b, args.seconds)) for b in (1, 100, 1000)}
    out["idle_call_p50_ms"] = idle_call_p50_ms()
    print(json.dumps(out) if args.json else out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
