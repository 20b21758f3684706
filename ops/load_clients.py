"""The load test's realistic mode: many independent clients, each with a few
orders in flight (``exchange loadtest --clients N``).

Real users do not send 500-order batches: a trading bot sends an order and
sends the next when it has the answer, a few at a time. ``--clients`` simulated
clients are spread over ``--drivers`` driver processes (Ray actors of their
own, so the test's process only waits and counts); each client trades its own
account and keeps 1 to 4 orders in flight (drawn per client, seeded) for
``--seconds``: every slot sends one order (the load test's mix: resting
limits, crossing IOCs, cancels of its own resting orders) and the next as
soon as the answer comes. A driver's clients share one ``ExchangeClient``, as
a gateway's connections would, so what they send at once coalesces per shard
(``actors/client/coalescing.py``). Latency is per order, from its send to its
answer; nothing is sent on a schedule, so there is no coordinated omission to
correct: a slow answer delays only its own client.

Reported: ``orders_per_s`` (answered per second, all drivers),
``p50_ms``..``max_ms``, the idle round trip measured in the same run
(``idle_round_trip_p50_ms``) with ``p99_to_idle_p50``, and Ray's batched
message rate with ``e2e_to_ray_ratio`` as in the other modes.
"""
from __future__ import annotations

import asyncio
import random
import time

import ray
from tqdm import tqdm

from actors.client.exchange_client import ExchangeClient
from ops.latency import LatencyRecorder

IN_FLIGHT_MAX = 4          # orders one client keeps in flight at most (1..4, drawn per client)


@ray.remote(num_cpus=0)
class LoadDriver:
    """One driver process: ``run`` plays its clients against the exchange."""

    def __init__(self, handles, market_names: list[str], seed: int):
        self.client = ExchangeClient(handles, owns_actors=False)
        self.markets = [handles.config.markets[name] for name in market_names]
        self.seed = seed

    async def run(self, accounts: list[int], seconds: float) -> dict:
        """Play one client per account in ``accounts`` for ``seconds``; return the latencies
        (seconds), the rejections and how many orders were in flight at most."""
        from ops.loadtest import OrderGenerator
        rng = random.Random(self.seed)
        latencies: list[float] = []
        rejected = 0
        deadline = time.perf_counter() + seconds

        async def slot(generator) -> None:
            nonlocal rejected
            while time.perf_counter() < deadline:
                commands = generator.batch(1)
                started = time.perf_counter()
                results = await self.client.execute_async(commands)
                latencies.append(time.perf_counter() - started)
                rejected += generator.observe(commands, results)

        slots = []
        for account in accounts:
            generator = OrderGenerator(self.client, self.markets, account, rng.randrange(2**32), account)
            slots.extend(slot(generator) for _ in range(rng.randint(1, IN_FLIGHT_MAX)))
        started = time.perf_counter()
        await asyncio.gather(*slots)
        return {"latencies": latencies, "rejected": rejected, "seconds": time.perf_counter() - started,
                "in_flight": len(slots)}


def run_clients(client: ExchangeClient, market_names: list[str], clients: int, drivers: int, seconds: float,
                accounts: int, seed: int, progress: bool) -> dict:
    """``clients`` clients (accounts 1..clients, wrapping over ``accounts``) over ``drivers``
    driver actors for ``seconds``; the merged figures."""
    owned = [1 + i % accounts for i in range(clients)]
    actors = [LoadDriver.remote(client.handles, market_names, seed + i) for i in range(drivers)]
    refs = [actor.run.remote(owned[i::drivers], seconds) for i, actor in enumerate(actors)]
    with tqdm(total=round(seconds), desc=f"{clients} clients", unit="s", disable=not progress) as bar:
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            bar.update(min(1, bar.total - bar.n))
    results = ray.get(refs)
    for actor in actors:
        ray.kill(actor)
    latency = LatencyRecorder()
    for result in results:
        latency.extend(result["latencies"])
    orders = latency.count
    elapsed = max(r["seconds"] for r in results)
    return {"mode": "clients", "clients": clients, "drivers": drivers, "seconds": round(elapsed, 2),
            "orders_in_flight_max": sum(r["in_flight"] for r in results), "orders": orders,
            "orders_per_s": round(orders / elapsed), **latency.percentiles(),
            "rejected": sum(r["rejected"] for r in results)}
