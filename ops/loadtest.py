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
(``--zipf``), and a mix of roles over the whole venue (``--mix``): spot market makers
that quote and requote, takers, IOC sweepers and cancellers; margin traders; perpetual
makers and takers; OTC block trades. ``OrderGenerator`` below is the older uniform spot
mix the chaos run and the benchmarks keep; the many-clients mode trades spot only.

Before anything is measured, accounts are opened and funded, and when the mix has margin,
perpetual or OTC flow, the venue is prepared (``prepare_venue``): the index feed and the
pools' clock started, the venue roles' accounts funded (margin books, perpetual wallets,
the lender, the OTC clients and the desk's inventory), and the run waits until the index
prices, every perpetual market's mark and the desk's inventory are there. While orders
flow, the perpetual marks the generator prices from are refreshed every
``MARKS_EVERY_S`` (``follow_marks``). An OTC trade (``OtcTrade``) is no shard command:
the drivers split them out of each batch and send each to the desk (inquire, then
accept) as the rest goes to the shards. The open loop and the idle round trip wait for
both (``execute_mixed``); a closed-loop sender hands its trades to the ``DeskLane`` and
waits for its shard commands only (a block trader is a client of its own: an RFQ's two
calls and the desk's settlement take several shard round trips, and waiting for them
cost the closed loop a third of its rate), at most ``OTC_IN_FLIGHT_MAX`` trades in flight. A
trade's latency runs from the inquiry to the acceptance's answer, and it counts as an
order of the market ``"OTC <pair>"``. At the end the conservation audit runs over every
shard, the pools, the funds and the desk's transit at a consistent cut (retried while a
settlement is in flight, at most ``SETTLE_TIMEOUT_S``).

Latency goes into HDR histograms (``ops/latency.py``): in total, per market and per
second. A PNG report (``--report``, ``ops/report.py``) draws the latency distribution,
throughput and p99 over time, the per-market split and the sweep's knee, with the
conservation audit under them.

Reported: ``orders_per_s`` (commands, OTC trades included, acknowledged end to end per second),
latency ``p50_ms``..``max_ms`` from send to acknowledgement, ``fills``,
``conservation_ok``, and Ray's own batched message rate measured in the same
run (``ray_batched_msgs_per_s``, 1,000 messages a call) with the ratio of the two
(``e2e_to_ray_ratio``), and the ``workload``: the mix in force (renormalised without the
products the config lacks: ``unavailable``), and per role the commands ``sent`` and
``acknowledged`` (answered, not refused), with the refusals by reason (``refused``).
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
import time

import ray
from tqdm import tqdm

from actors import bootstrap
from actors.client.exchange_client import ExchangeClient
from exchange.core.reasons import Reason
from exchange.messages.records import CancelOrder, Deposit, OpenAccount, OrderBooked, OrderRejected, PlaceOrder
from exchange.matching.orders import OrderType, Side, TimeInForce
from ops.bench.ray_rate import measure as measure_ray
from ops.load_clients import run_clients
from ops.latency import LatencyRecorder, TimeSeries
from ops.report import write_report
from ops.workload import (DEFAULT_MIX, DEFAULT_ZIPF, MAKER_TIER, SPOT_MIX, OtcTrade, WorkloadGenerator, makers,
                          parse_mix)

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, GTC, IOC = int(OrderType.LIMIT), int(TimeInForce.GTC), int(TimeInForce.IOC)
MARKS_EVERY_S = 0.5             # how often the perpetual marks the generator prices from are refreshed
SETUP_TIMEOUT_S = 60            # the venue's preparation waits this long for prices and the desk
SETTLE_TIMEOUT_S = 60           # the final audit waits this long for a consistent cut
OTC_IN_FLIGHT_MAX = 64          # closed loop: OTC trades in flight at once (then the senders wait)
SETUP_TOLERATED = {Reason.ACCOUNT_EXISTS, Reason.MARGIN_ALREADY_ENABLED}   # a setup run again


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


def prepare_venue(client: ExchangeClient, gen: WorkloadGenerator, progress: bool) -> None:
    """Start the index feed and the pools' clock, open and fund the venue roles' accounts
    (``WorkloadGenerator.setup_commands``: fixed request ids, so running it again changes
    nothing) and wait until the index prices, every perpetual market's mark and the OTC
    desk's inventory are there (``RuntimeError`` after ``SETUP_TIMEOUT_S``, or if a setup
    command is refused). Nothing to do when the mix has no margin, perpetual or OTC flow."""
    if not gen.venue:
        return
    client.start_feeds()
    assets = {m.base.name for m in gen.margin_markets} | {p.spec.base.name for p in gen.otc_pairs} \
        | {spec.base.name for spec in gen.perps.values()}
    _wait_until("the index prices", lambda: all(ray.get(client.handles.index.index_prices.remote()).get(a)
                                                for a in assets))
    commands = gen.setup_commands()
    for start in tqdm(range(0, len(commands), 5_000), desc="venue setup", disable=not progress, unit="batch"):
        chunk = commands[start:start + 5_000]
        for cmd, events in zip(chunk, client.execute(chunk)):
            for event in events:
                if type(event) is OrderRejected and event.reason not in SETUP_TOLERATED:
                    raise RuntimeError(f"the venue setup was refused {Reason(event.reason).name}: {cmd}")
    if gen.follows_marks:
        def marked() -> bool:
            asyncio.run(refresh_marks(client, gen))
            return all(gen.marks.get(name) for name in gen.perp_names)
        _wait_until("the perpetual marks", marked)
    if "otc" in gen.roles:
        desk_assets = {a for p in gen.otc_pairs for a in (p.spec.base.name, p.spec.quote.name)}
        _wait_until("the OTC desk's inventory", lambda: all(client.otc_view()["inventory"].get(a)
                                                            for a in desk_assets))


def _wait_until(what: str, ready, timeout_s: float = SETUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the venue setup waited {timeout_s:g} s for {what}")
        time.sleep(0.1)


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


async def otc_trade(client, trade: OtcTrade) -> dict:
    """Ask the OTC desk for a quote and accept it: the acceptance's answer, or the refusal."""
    otc = client.handles.otc
    quote = await otc.inquire.remote(trade.account_id, trade.pair, trade.side, trade.quantity, 0, "crypto", "t+0")
    if not quote["ok"]:
        return quote
    return await otc.accept.remote(trade.account_id, quote["quote"]["id"])


async def execute_mixed(client, commands: list) -> tuple[list, list[float]]:
    """Send the shard commands in one call and each OTC trade to the desk, all at once:
    each command's answer (events, or the desk's answer) and when it came
    (``perf_counter``), in the commands' order."""
    trades = [i for i, cmd in enumerate(commands) if type(cmd) is OtcTrade]
    if not trades:
        results = await client.execute_async(commands)
        return results, [time.perf_counter()] * len(commands)
    others = [i for i, cmd in enumerate(commands) if type(cmd) is not OtcTrade]

    async def timed(call) -> tuple:
        answer = await call
        return answer, time.perf_counter()
    calls = [timed(otc_trade(client, commands[i])) for i in trades]
    if others:
        calls.append(timed(client.execute_async([commands[i] for i in others])))
    answers = await asyncio.gather(*calls)
    results, done = [None] * len(commands), [0.0] * len(commands)
    for i, (answer, at) in zip(trades, answers):
        results[i], done[i] = answer, at
    if others:
        events, at = answers[-1]
        for i, answer in zip(others, events):
            results[i], done[i] = answer, at
    return results, done


def execute_now(client, commands: list) -> list:
    """``execute_mixed``, waited for (the client's synchronous call when no OTC trade is in)."""
    if not any(type(cmd) is OtcTrade for cmd in commands):
        return client.execute(commands)
    return asyncio.run(execute_mixed(client, commands))[0]


async def refresh_marks(client, gen) -> None:
    """Read every perpetual market's mark (ticks) into ``gen.marks``."""
    names = gen.perp_names
    views = await asyncio.gather(*(client.handles.markets[name].price_view.remote() for name in names))
    for name, view in zip(names, views):
        if view.get("mark"):
            gen.marks[name] = view["mark"]


async def follow_marks(client, gen, every_s: float = MARKS_EVERY_S) -> None:
    while True:
        await refresh_marks(client, gen)
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def marks_followed(client, gen):
    """Keep ``gen.marks`` fresh while the block runs (when the generator prices perpetual orders)."""
    task = asyncio.create_task(follow_marks(client, gen)) if getattr(gen, "follows_marks", False) else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DeskLane:
    """The OTC trades of a closed loop, beside its batches: a sender hands its batch's trades
    to the desk and goes on with its shard commands, waiting only while
    ``OTC_IN_FLIGHT_MAX`` trades are in flight (a block trader is a client of its own, not
    part of a spot bot's batch; the bound keeps a slow desk from piling up work). Each
    trade's latency runs from its inquiry to the acceptance's answer."""

    def __init__(self, client, gen, latency, bar, record: RunRecord | None) -> None:
        self.client, self.gen, self.latency, self.bar, self.record = client, gen, latency, bar, record
        self.room = asyncio.Semaphore(OTC_IN_FLIGHT_MAX)
        self.tasks: set = set()
        self.rejected = 0

    async def send(self, trades: list) -> None:
        for trade in trades:
            await self.room.acquire()
            task = asyncio.create_task(self._trade(trade))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _trade(self, trade: OtcTrade) -> None:
        try:
            started = time.perf_counter()
            answer = await otc_trade(self.client, trade)
            done = time.perf_counter()
        finally:
            self.room.release()
        self.latency.add(done - started)
        if self.record is not None:
            self.record.acknowledged([trade], [done - started], done)
        self.rejected += self.gen.observe([trade], [answer])
        self.bar.update(1)

    async def drain(self) -> int:
        """Wait for the trades in flight; return how many of all were refused."""
        while self.tasks:
            await asyncio.gather(*self.tasks)
        return self.rejected


async def closed_loop(client, gen, total, concurrency, batch, latency, bar, record: RunRecord | None = None) -> int:
    sent = rejected = 0
    desk = DeskLane(client, gen, latency, bar, record)

    async def sender() -> None:
        nonlocal sent, rejected
        while sent < total:
            size = min(batch, total - sent)
            sent += size
            commands = gen.batch(size)
            trades = [cmd for cmd in commands if type(cmd) is OtcTrade]
            if trades:
                await desk.send(trades)
                commands = [cmd for cmd in commands if type(cmd) is not OtcTrade]
            started = time.perf_counter()
            results = await client.execute_async(commands)
            done = time.perf_counter()
            latency.add(done - started, len(commands))
            if record is not None:
                record.acknowledged(commands, [done - started] * len(commands), done)
            rejected += gen.observe(commands, results)
            bar.update(len(commands))
    async with marks_followed(client, gen):
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return rejected + await desk.drain()


async def open_loop(client, gen, total, rate, latency, bar, tick_s: float = 0.005,
                    record: RunRecord | None = None) -> int:
    rejected = 0
    tasks: set = set()
    start = time.perf_counter()

    async def send(commands: list, first: int) -> None:
        nonlocal rejected
        results, done = await execute_mixed(client, commands)
        latencies = [at - (start + (first + i) / rate) for i, at in enumerate(done)]
        latency.extend(latencies)
        if record is not None:
            record.acknowledged(commands, latencies, max(done))
        rejected += gen.observe(commands, results)
        bar.update(len(commands))

    sent = 0
    async with marks_followed(client, gen):
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
    if getattr(gen, "follows_marks", False):
        asyncio.run(refresh_marks(client, gen))
    for _ in range(orders):
        commands = gen.batch(1)
        started = time.perf_counter()
        gen.observe(commands, execute_now(client, commands))
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


def _audit(client, timeout_s: float = SETTLE_TIMEOUT_S) -> dict:
    """The conservation audit at a consistent cut, retried while a settlement (an OTC
    crossing, a fill's push) is in flight, at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    audit = client.audit()
    while not audit["consistent"] and time.monotonic() < deadline:
        time.sleep(0.2)
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
        if getattr(args, "clients", 0):                 # the many-clients mode trades spot only
            gen = WorkloadGenerator(client, markets, args.accounts, args.seed, zipf=zipf, mix=SPOT_MIX)
            idle = idle_round_trip_p50_ms(client, gen)
            result = run_clients(client, [m.name for m in markets], args.clients, args.drivers, args.seconds,
                                 args.accounts, args.seed, progress)
            return {**result, "idle_round_trip_p50_ms": idle,
                    "p99_to_idle_p50": round(result["p99_ms"] / idle, 2) if idle else None,
                    "accounts": args.accounts, "markets": [m.name for m in markets],
                    "ray_batched_msgs_per_s": round(ray_rate),
                    "e2e_to_ray_ratio": round(result["orders_per_s"] / ray_rate, 4), **_audit(client)}
        gen = WorkloadGenerator(client, markets, args.accounts, args.seed, zipf=zipf, mix=mix)
        prepare_venue(client, gen, progress)
        latency = LatencyRecorder()
        trades_before = sum(s["trades"] for s in client.market_stats())
        if getattr(args, "sweep", False):
            result = sweep(client, gen, args, progress)
            return reported(args, {**result, "accounts": args.accounts, "markets": [m.name for m in markets],
                                   "ray_batched_msgs_per_s": round(ray_rate),
                                   "workload": {"zipf": zipf, **gen.summary()}, **_audit(client)})
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
            "workload": {"zipf": zipf, **gen.summary()}, **record.result(elapsed), **_audit(client)})
    finally:
        client.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
