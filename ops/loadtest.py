"""Load test v1: drive the actors through the Python client and measure.

Closed loop (default): ``--concurrency`` senders each send ``--batch`` order
commands in one call, wait for the acknowledgements, and repeat. Open loop
(``--rate R``): a scheduler releases the orders due every ``--tick-ms``
(default 5 ms, so Ray's per-call cost is paid per batch) whether or not
earlier ones were answered; latency is measured from each order's intended
send time, so queueing and the batching delay both show (no coordinated
omission).

Order mix (seeded): 75% limit GTC orders around the mid (mostly passive, some
crossing), 10% IOC orders that cross, 15% cancels of orders the generator saw
rest. Accounts are opened and funded first (not measured). At the end the
conservation audit runs over every shard at a consistent cut.

Reported: ``orders_per_s`` (order commands acknowledged end to end per second),
latency ``p50_ms``..``max_ms`` from send to acknowledgement, ``fills``,
``conservation_ok``, and Ray's own batched message rate measured in the same
run (``ray_batched_msgs_per_s``, 1,000 messages a call) with the ratio of the two
(``e2e_to_ray_ratio``).
"""
from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time

import ray
from tqdm import tqdm

from actors import bootstrap
from actors.client.exchange_client import ExchangeClient
from exchange.messages.records import CancelOrder, Deposit, OpenAccount, OrderBooked, PlaceOrder
from exchange.matching.orders import OrderType, Side, TimeInForce
from ops.bench.ray_rate import measure as measure_ray
from ops.latency import LatencyRecorder

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, GTC, IOC = int(OrderType.LIMIT), int(TimeInForce.GTC), int(TimeInForce.IOC)


class OrderGenerator:
    """Seeded order commands for ``accounts`` over ``markets``."""

    def __init__(self, client: ExchangeClient, markets: list, accounts: int, seed: int):
        self.client = client
        self.rng = random.Random(seed)
        self.markets = markets
        self.accounts = accounts
        self.mids = {m.name: (50_000 if m.base.name == "BTC" else 3_000) * 100 for m in markets}  # ticks
        self.live: list[tuple[int, str, int]] = []
        self.counter = 0

    def batch(self, size: int) -> list:
        rng, out = self.rng, []
        prefix = self.client.next_request_id()
        for _ in range(size):
            self.counter += 1
            request_id = f"{prefix}:{self.counter}"
            roll = rng.random()
            if roll < 0.15 and self.live:
                j = rng.randrange(len(self.live))
                self.live[j], self.live[-1] = self.live[-1], self.live[j]
                account, market, order_id = self.live.pop()
                out.append(CancelOrder(request_id, 0, account, market, order_id))
                continue
            spec = self.markets[rng.randrange(len(self.markets))]
            account = rng.randint(1, self.accounts)
            side = BUY if rng.random() < 0.5 else SELL
            mid = self.mids[spec.name]
            lots = rng.randint(1, 10) * spec.min_lots
            if roll < 0.25:
                offset, tif = -rng.randint(1, 10), IOC            # crosses
            else:
                offset, tif = rng.randint(-2, 40), GTC           # mostly passive
            ticks = mid - offset if side == BUY else mid + offset
            out.append(PlaceOrder(request_id, 0, account, spec.name, side, LIMIT, ticks * spec.tick_minor,
                                  lots * spec.lot_minor, tif))
        return out

    def observe(self, commands: list, results: list) -> int:
        """Track orders that rested (for cancels); return how many were rejected."""
        rejected = 0
        for cmd, events in zip(commands, results):
            for event in events:
                kind = type(event)
                if kind is OrderBooked:
                    self.live.append((cmd.account_id, cmd.market, event.order_id))
                elif kind.__name__ == "OrderRejected":
                    rejected += 1
        return rejected


def fund_accounts(client: ExchangeClient, accounts: int, progress: bool) -> None:
    commands = []
    for account in range(1, accounts + 1):
        commands.append(OpenAccount(f"lt-open:{account}", 0, account))
        for asset in client.config.asset_list:
            commands.append(Deposit(f"lt-fund:{account}:{asset.name}", 0, account, asset.name,
                                    10 ** (asset.scale + 6)))   # a million of each: totals stay in int64
    for start in tqdm(range(0, len(commands), 5_000), desc="funding", disable=not progress, unit="batch"):
        client.execute(commands[start:start + 5_000])


async def closed_loop(client, gen, total, concurrency, batch, latency, bar) -> int:
    sent = rejected = 0

    async def sender() -> None:
        nonlocal sent, rejected
        while sent < total:
            size = min(batch, total - sent)
            sent += size
            commands = gen.batch(size)
            started = time.perf_counter()
            results = await client.execute_async(commands)
            latency.add(time.perf_counter() - started, size)
            rejected += gen.observe(commands, results)
            bar.update(size)
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return rejected


async def open_loop(client, gen, total, rate, latency, bar, tick_s: float = 0.005) -> int:
    rejected = 0
    tasks: set = set()
    start = time.perf_counter()

    async def send(commands: list, first: int) -> None:
        nonlocal rejected
        results = await client.execute_async(commands)
        done = time.perf_counter()
        latency.extend([done - (start + (first + i) / rate) for i in range(len(commands))])
        rejected += gen.observe(commands, results)
        bar.update(len(commands))

    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate)) - sent
        if due > 0:
            task = asyncio.create_task(send(gen.batch(due), sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += due
        await asyncio.sleep(tick_s)
    await asyncio.gather(*tasks)
    return rejected


def run_loadtest(args) -> dict:
    progress = not args.no_progress
    owns = not ray.is_initialized() and not args.address
    bootstrap.init_ray(address=args.address, num_cpus=args.num_cpus)
    scratch = None
    if args.no_durability:
        data = None
    else:
        data = args.data or (scratch := tempfile.mkdtemp(prefix="exchange-loadtest-"))
    client = ExchangeClient(bootstrap.create_actors(args.config, data_dir=data), owns_cluster=owns)
    try:
        markets = client.config.market_list[:args.markets]
        fund_accounts(client, args.accounts, progress)
        ray_rate = measure_ray(1_000, 2.0)
        gen = OrderGenerator(client, markets, args.accounts, args.seed)
        latency = LatencyRecorder()
        trades_before = sum(s["trades"] for s in client.market_stats())
        bar = tqdm(total=args.orders, desc="orders", unit="ord", disable=not progress, smoothing=0.1)
        started = time.perf_counter()
        if args.rate:
            rejected = asyncio.run(open_loop(client, gen, args.orders, args.rate, latency, bar, getattr(args, "tick_ms", 5.0) / 1000))
        else:
            rejected = asyncio.run(closed_loop(client, gen, args.orders, args.concurrency, args.batch, latency, bar))
        elapsed = time.perf_counter() - started
        bar.close()
        stats = client.market_stats()
        audit = client.audit()
        rate = args.orders / elapsed
        return {"mode": "open" if args.rate else "closed", "offered_rate": args.rate, "orders": args.orders,
                "duration_s": round(elapsed, 2), "orders_per_s": round(rate), **latency.percentiles(),
                "fills": sum(s["trades"] for s in stats) - trades_before, "rejected": rejected,
                "accounts": args.accounts, "markets": [m.name for m in markets],
                "durability": "off" if args.no_durability else client.config.sections.get("durability", {}).get("mode", "sync"),
                "ray_batched_msgs_per_s": round(ray_rate),
                "e2e_to_ray_ratio": round(rate / ray_rate, 4),
                "conservation_ok": audit["ok"], "imbalance": audit["imbalance"]}
    finally:
        client.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
