"""Benchmark: one order at a time on an idle exchange (no batching help).

Places ``--orders`` resting limit orders one after another through the Python
client and reports the round-trip latency client -> shard -> market -> shard
-> client, with durability on (a temporary LMDB directory) and off.

Baselines in the same run, on the same cluster:

- Ray's idle call p50 (``ops/bench/ray_rate.py: idle_call_p50_ms``, one call
  at a time to a trivial actor). The critical path is ``CRITICAL_PATH_CALLS``
  call-equivalents (the client's ``execute`` round trip, and the shard's
  ``submit`` out with the market's answer back), so ``ratio_to_ray`` = p50 /
  (calls x idle p50): 1.0 would be an exchange that costs nothing but Ray's
  messaging with synchronous actors.
- The floor (``floor_p50_ms``): the same path with no exchange in it. Two
  async actors (``Hop``), the driver calling the first, which journals the
  order's bytes, calls the second, which journals them too and answers: the
  shape an order takes through a shard and a market, with the same
  ``Journal`` over the same ``LmdbStore`` (each hop's group commit is one
  synced LMDB transaction, as the shard's command record and the market's
  batch are), or with no journal for the run without durability.
  ``floor_ratio_to_ray`` is that floor over (calls x idle p50): what Ray and
  the disk allow before any exchange work; ``ratio_to_floor`` is the
  exchange's p50 over it, which is what the exchange's own work costs.
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

import ray  # noqa: E402

from actors.client.exchange_client import ExchangeClient  # noqa: E402
from actors.durability.journal import Journal  # noqa: E402
from actors.durability.storage import LmdbStore  # noqa: E402
from ops.bench.ray_rate import idle_call_p50_ms  # noqa: E402
from ops.latency import LatencyRecorder  # noqa: E402

CRITICAL_PATH_CALLS = 2
ORDER_BYTES = 300                   # about one order's packed command and its journal record


@ray.remote(num_cpus=0)
class Hop:
    """One of the floor's two actors: journal what arrives, then answer, or first ask the peer."""

    def __init__(self, path: str | None):
        self.journal = Journal(LmdbStore(path, "sync", 3, 1 << 30)) if path else Journal(None)
        self.peer = None

    def set_peer(self, peer) -> None:
        self.peer = peer

    async def relay(self, payload: bytes) -> bytes:
        await self.journal.commit([payload])
        return await self.peer.answer.remote(payload)

    async def answer(self, payload: bytes) -> bytes:
        await self.journal.commit([payload])
        return payload


def floor_p50_ms(calls: int, data_dir: str | None) -> float:
    """The median milliseconds of the critical path's shape with no exchange in it (module docstring)."""
    first = Hop.remote(f"{data_dir}/floor-a" if data_dir else None)
    second = Hop.remote(f"{data_dir}/floor-b" if data_dir else None)
    ray.get(first.set_peer.remote(second))
    payload = b"x" * ORDER_BYTES
    ray.get([first.relay.remote(payload) for _ in range(20)])      # warm: workers, maps, the writer threads
    latency = LatencyRecorder()
    for _ in range(calls):
        started = time.perf_counter()
        ray.get(first.relay.remote(payload))
        latency.add(time.perf_counter() - started)
    ray.kill(first), ray.kill(second)
    return latency.percentiles((0.5,))["p50_ms"]


def measure(orders: int, data_dir: str | None) -> dict:
    client = ExchangeClient.start(data_dir=data_dir)
    try:
        client.open_account(1, fee_tier="market_maker")      # exempt from the rulebook's order-rate limit:
        client.deposit(1, "USDT", "100000000")              # every order rests, one a call
        latency = LatencyRecorder()
        for _ in range(orders):
            started = time.perf_counter()
            result = client.place_order(1, "BTC-USDT", "buy", "0.0001", price="40000.00")
            latency.add(time.perf_counter() - started)
            assert result.status == "open"
        out = latency.percentiles((0.5, 0.99))
        idle, floor = idle_call_p50_ms(), floor_p50_ms(orders, data_dir)
        out.update(ray_idle_call_p50_ms=idle, critical_path_calls=CRITICAL_PATH_CALLS,
                   ratio_to_ray=round(out["p50_ms"] / (CRITICAL_PATH_CALLS * idle), 2),
                   floor_p50_ms=floor, floor_ratio_to_ray=round(floor / (CRITICAL_PATH_CALLS * idle), 2),
                   ratio_to_floor=round(out["p50_ms"] / floor, 2))
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
