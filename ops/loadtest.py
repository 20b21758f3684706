"""Load test v1: drive the actors through the Python client and measure.

Closed loop (default): ``--concurrency`` senders each send ``--batch`` order
commands in one call, wait for the acknowledgements, and repeat. Open loop
(``--rate R``): a scheduler releases the orders due every ``--tick-ms``
(default 5 ms, so Ray's per-call cost is paid per batch) whether or not
earlier ones were answered; latency is measured from each order's intended
send time, so queueing and the batching delay both show (no coordinated
omission).

Sweep (``--sweep``): the idle round trip (one order at a time), the closed-loop
capacity (``--orders``), then the open loop at each ``--sweep-steps``
fraction of it (default 10%, 30%, 50%, 70%, 90%) for ``--step-seconds``:
p50/p99/p99.9 per step, the knee (the highest offered rate whose p99 stays
within ``--knee-p99-ms``, default 25 ms), and the p99 at the step nearest 30%
over the idle round trip (``p99_to_idle_p50``).

Many clients (``--clients N``, ``ops/load_clients.py``): N independent simulated
clients over ``--drivers`` driver processes, each trading its own account with
1-4 orders in flight for ``--seconds``; the idle round trip of the same run
beside its percentiles.

The workload (``ops/workload.py``, seeded): Zipf-distributed accounts and markets
(``--zipf``), and a mix of market makers that quote and requote, takers, IOC sweepers
and cancellers (``--mix``). ``OrderGenerator`` below is the older uniform mix the chaos
run, the many-clients mode and the benchmarks keep. Accounts are opened and funded first
(not measured). At the end the conservation audit runs over every shard at a consistent
cut.

Latency goes into HDR histograms (``ops/latency.py``): in total, per market and per
second. A PNG report (``--report``, ``ops/report.py``) draws the latency distribution,
throughput and p99 over time, the per-market split and the sweep's knee, with the
conservation audit under them.

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
from ops.load_clients import run_clients
from ops.latency import LatencyRecorder, TimeSeries
from ops.report import write_report
from ops.workload import DEFAULT_MIX, DEFAULT_ZIPF, MAKER_TIER, WorkloadGenerator, makers, parse_mix

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, GTC, IOC = int(OrderType.LIMIT), int(TimeInForce.GTC), int(TimeInForce.IOC)


class OrderGenerator:
    """Seeded order commands for ``accounts`` over ``markets``."""

    def __init__(self, client: ExchangeClient, markets: list, accounts: int, seed: int, first_account: int = 1):
        self.client = client
        self.rng = random.Random(seed)
        self.markets = markets
        self.first_account = first_account          # orders come from accounts first_account..accounts
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
            account = rng.randint(self.first_account, self.accounts)
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


def fund_accounts(client: ExchangeClient, accounts: int, progress: bool, market_makers: int = 0) -> None:
    """Open and fund accounts 1..``accounts``; the first ``market_makers`` in the market-maker fee tier."""
    commands = []
    for account in range(1, accounts + 1):
        commands.append(OpenAccount(f"lt-open:{account}", 0, account, MAKER_TIER if account <= market_makers else ""))
        for asset in client.config.asset_list:
            commands.append(Deposit(f"lt-fund:{account}:{asset.name}", 0, account, asset.name,
                                    10 ** (asset.scale + 6)))   # a million of each: totals stay in int64
    for start in tqdm(range(0, len(commands), 5_000), desc="funding", disable=not progress, unit="batch"):
        client.execute(commands[start:start + 5_000])


class RunRecord:
    """What one run measured: the latency of every order in total, per market and per second."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.total = LatencyRecorder()
        self.markets: dict[str, LatencyRecorder] = {}
        self.timeline = TimeSeries(self.start)

    def acknowledged(self, commands: list, latencies: list[float], now: float) -> None:
        for cmd, seconds in zip(commands, latencies):
            market = self.markets.get(cmd.market)
            if market is None:
                market = self.markets[cmd.market] = LatencyRecorder()
            market.add(seconds)
            self.timeline.add(now, seconds)
        self.total.extend(latencies)

    def result(self, elapsed: float) -> dict:
        return {"distribution": self.total.distribution(), "timeline": self.timeline.rows(),
                "per_market": {name: {"orders": r.count, "orders_per_s": round(r.count / elapsed),
                                      **r.percentiles((0.5, 0.99))} for name, r in sorted(self.markets.items())}}


async def closed_loop(client, gen, total, concurrency, batch, latency, bar, record: RunRecord | None = None) -> int:
    sent = rejected = 0

    async def sender() -> None:
        nonlocal sent, rejected
        while sent < total:
            size = min(batch, total - sent)
            sent += size
            commands = gen.batch(size)
            started = time.perf_counter()
            results = await client.execute_async(commands)
            done = time.perf_counter()
            latency.add(done - started, size)
            if record is not None:
                record.acknowledged(commands, [done - started] * size, done)
            rejected += gen.observe(commands, results)
            bar.update(size)
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return rejected


async def open_loop(client, gen, total, rate, latency, bar, tick_s: float = 0.005,
                    record: RunRecord | None = None) -> int:
    rejected = 0
    tasks: set = set()
    start = time.perf_counter()

    async def send(commands: list, first: int) -> None:
        nonlocal rejected
        results = await client.execute_async(commands)
        done = time.perf_counter()
        latencies = [done - (start + (first + i) / rate) for i in range(len(commands))]
        latency.extend(latencies)
        if record is not None:
            record.acknowledged(commands, latencies, done)
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


def drive(client, gen, args, orders: int, rate: float | None, latency: LatencyRecorder,
          progress: bool, record: RunRecord | None = None) -> tuple[int, float]:
    """Send ``orders`` (open loop at ``rate``, else closed loop); return (rejected, seconds)."""
    bar = tqdm(total=orders, desc="orders" if rate is None else f"orders at {rate:,.0f}/s", unit="ord",
               disable=not progress, smoothing=0.1)
    started = time.perf_counter()
    if rate:
        rejected = asyncio.run(open_loop(client, gen, orders, rate, latency, bar, args.tick_ms / 1000, record))
    else:
        rejected = asyncio.run(closed_loop(client, gen, orders, args.concurrency, args.batch, latency, bar,
                                           record))
    elapsed = time.perf_counter() - started
    bar.close()
    return rejected, elapsed


def idle_round_trip_p50_ms(client, gen, orders: int = 100) -> float:
    """One order at a time on the otherwise idle exchange: the median round trip."""
    latency = LatencyRecorder()
    for _ in range(orders):
        commands = gen.batch(1)
        started = time.perf_counter()
        gen.observe(commands, client.execute(commands))
        latency.add(time.perf_counter() - started)
    return latency.percentiles((0.5,))["p50_ms"]


def sweep(client, gen, args, progress: bool) -> dict:
    """The closed-loop capacity first, then the open loop at each ``--sweep-steps`` fraction
    of it for ``--step-seconds`` (latency from each order's intended send time), and the
    knee: the highest offered rate whose p99 stays within ``--knee-p99-ms``."""
    idle = idle_round_trip_p50_ms(client, gen)
    record = RunRecord()
    capacity_latency = LatencyRecorder()
    _, elapsed = drive(client, gen, args, args.orders, None, capacity_latency, progress, record)
    capacity = args.orders / elapsed
    steps = []
    for fraction in args.sweep_steps:
        rate = capacity * fraction
        orders = max(200, int(rate * args.step_seconds))
        latency = LatencyRecorder()
        rejected, seconds = drive(client, gen, args, orders, rate, latency, progress)
        steps.append({"fraction": fraction, "offered_per_s": round(rate), "orders": orders,
                      "achieved_per_s": round(orders / seconds), "rejected": rejected,
                      **latency.percentiles((0.5, 0.99, 0.999))})
    within = [s for s in steps if s["p99_ms"] <= args.knee_p99_ms]
    knee = max(within, key=lambda s: s["offered_per_s"]) if within else None
    at_30 = min(steps, key=lambda s: abs(s["fraction"] - 0.3))
    return {"mode": "sweep", "capacity_orders_per_s": round(capacity), "idle_round_trip_p50_ms": idle,
            "orders": args.orders, **capacity_latency.percentiles(), **record.result(elapsed),
            "steps": steps, "knee_p99_ms_bound": args.knee_p99_ms,
            "knee_orders_per_s": knee["offered_per_s"] if knee else None,
            "knee_fraction": knee["fraction"] if knee else None,
            "p99_to_idle_p50": round(at_30["p99_ms"] / idle, 2) if idle else None,
            "p99_to_idle_p50_at_fraction": at_30["fraction"]}      # the step nearest 30% of capacity


def reported(args, result: dict) -> dict:
    """``result`` with the PNG report drawn (``--report``; ``ops/report.py``), and the bulky
    series it drew from kept out of the JSON unless ``--series``."""
    if getattr(args, "report", ""):
        result["report"] = write_report(args.report, result)
    if not getattr(args, "series", False):
        for key in ("distribution", "timeline"):
            result.pop(key, None)
    return result


def _audit(client) -> dict:
    audit = client.audit()
    return {"conservation_ok": audit["ok"], "imbalance": audit["imbalance"]}


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
        fund_accounts(client, args.accounts, progress, makers(args.accounts))
        ray_rate = measure_ray(1_000, 2.0)
        zipf, mix = getattr(args, "zipf", DEFAULT_ZIPF), getattr(args, "mix", None) or DEFAULT_MIX
        mix = parse_mix(mix) if isinstance(mix, str) else mix
        gen = WorkloadGenerator(client, markets, args.accounts, args.seed, zipf=zipf, mix=mix)
        workload = {"zipf": zipf, "mix": mix}
        latency = LatencyRecorder()
        trades_before = sum(s["trades"] for s in client.market_stats())
        if getattr(args, "clients", 0):
            idle = idle_round_trip_p50_ms(client, gen)
            result = run_clients(client, [m.name for m in markets], args.clients, args.drivers, args.seconds,
                                 args.accounts, args.seed, progress)
            return {**result, "idle_round_trip_p50_ms": idle,
                    "p99_to_idle_p50": round(result["p99_ms"] / idle, 2) if idle else None,
                    "accounts": args.accounts, "markets": [m.name for m in markets],
                    "ray_batched_msgs_per_s": round(ray_rate),
                    "e2e_to_ray_ratio": round(result["orders_per_s"] / ray_rate, 4), **_audit(client)}
        if getattr(args, "sweep", False):
            return reported(args, {**sweep(client, gen, args, progress), "accounts": args.accounts,
                                    "markets": [m.name for m in markets], "ray_batched_msgs_per_s": round(ray_rate),
                                    "workload": {**workload, "sent": dict(gen.sent), "refused": dict(gen.refused)},
                                    **_audit(client)})
        record = RunRecord()
        rejected, elapsed = drive(client, gen, args, args.orders, args.rate, latency, progress, record)
        stats = client.market_stats()
        rate = args.orders / elapsed
        return reported(args, {
            "mode": "open" if args.rate else "closed", "offered_rate": args.rate, "orders": args.orders,
            "duration_s": round(elapsed, 2), "orders_per_s": round(rate), **latency.percentiles(),
            "fills": sum(s["trades"] for s in stats) - trades_before, "rejected": rejected,
            "accounts": args.accounts, "markets": [m.name for m in markets],
            "durability": "off" if args.no_durability else client.config.sections.get("durability", {}).get("mode", "sync"),
            "ray_batched_msgs_per_s": round(ray_rate), "e2e_to_ray_ratio": round(rate / ray_rate, 4),
            "workload": {**workload, "sent": dict(gen.sent), "refused": dict(gen.refused)}, **record.result(elapsed),
            **_audit(client)})
    finally:
        client.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
