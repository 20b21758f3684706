"""What Ray itself moves on this machine: small messages per second in batches.

``measure(batch, seconds)`` pipelines calls carrying ``batch`` small tuples to
a trivial actor (4 calls in flight) and returns messages per second. The load
test reports it beside the exchange's end-to-end rate, so the ratio between
the two is visible. ``idle_call_p50_ms(calls)``: one call at a time to a
trivial actor, the median round trip (the round-trip benchmark's baseline).
``pattern_rates(in_flight, seconds)``: the order path's shapes of calls with
trivial actors, cycles per second with ``in_flight`` cycles at once: a driver
calling an actor; an actor calling another and awaiting it (A->B->A, what a
shard's ``submit`` is now); an actor calling another which calls it back
(A->B, B->A, what a push is).
Usage: python ops/bench/ray_rate.py --json [--patterns]
"""
from __future__ import annotations

import argparse
import asyncio
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


@ray.remote(num_cpus=0)
class Echo:
    """One end of the call patterns: answers, relays to its peer, or has its peer call it back."""

    def __init__(self):
        self.peer = None
        self.waiting: dict = {}

    async def set_peer(self, peer) -> None:
        self.peer = peer

    async def ping(self, x):
        return x

    async def relay(self, x):
        return await self.peer.ping.remote(x)

    async def via_push(self, x, me):
        future = asyncio.get_running_loop().create_future()
        self.waiting[x] = future
        asyncio.get_running_loop().create_task(self._ask_back(x, me))
        return await future

    async def _ask_back(self, x, me) -> None:
        await self.peer.push_back.remote(me, x)

    async def push_back(self, caller, x):
        await caller.done.remote(x)
        return x

    async def done(self, x) -> None:
        self.waiting.pop(x).set_result(x)


def pattern_rates(in_flight: int = 8, seconds: float = 3.0) -> dict:
    """Cycles per second of each call pattern (module docstring), ``in_flight`` at once."""
    a, b = Echo.remote(), Echo.remote()
    ray.get([a.set_peer.remote(b), b.set_peer.remote(a)])

    async def rate(call) -> int:
        done, stop = 0, time.perf_counter() + seconds
        numbers = iter(range(1 << 62))                  # one key per cycle: cycles in flight never share one

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await call(next(numbers))
                done += 1
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return round(done / (time.perf_counter() - started))
    out = {"driver_to_actor": asyncio.run(rate(lambda i: a.ping.remote(i))),
           "actor_to_actor_and_back": asyncio.run(rate(lambda i: a.relay.remote(i))),
           "actor_to_actor_then_call_back": asyncio.run(rate(lambda i: a.via_push.remote(i, a)))}
    ray.kill(a), ray.kill(b)
    return out


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
    parser.add_argument("--patterns", action="store_true", help="also the order path's call patterns, 8 in flight")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    out = {f"msgs_per_s_batch_{b}": round(measure(b, args.seconds)) for b in (1, 100, 1000)}
    out["idle_call_p50_ms"] = idle_call_p50_ms()
    if args.patterns:
        out["cycles_per_s_8_in_flight"] = pattern_rates(8, args.seconds)
    print(json.dumps(out) if args.json else out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
