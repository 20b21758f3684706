"""``exchange chaos``: load the exchange while killing its actors, then audit.

While closed-loop senders place and cancel orders, and margin accounts
borrow from and repay the lending pool, a killer picks a random shard,
market, lending-pool or liquidator actor every ``--kill-interval`` seconds and either asks Ray to
kill it (``ray.kill(actor, no_restart=False)``: Ray restarts it) or SIGKILLs
its worker process (the OS kills it mid-instruction; Ray restarts it too).
Each restarted actor recovers from LMDB; clients and peers re-send what was
not acknowledged. Recovery time is measured from the kill until the actor
answers again as a new incarnation.

At the end the load stops, the system settles, and the report says:
``acked_orders`` (order requests whose answer reached a sender),
``acked_margin`` (borrows and repayments acknowledged), ``acked_checked``
(those that can still be looked up: when a shard's replay-protection memory
of ``dedup_window`` answers is full, only its newest half-window of
acknowledged requests is checked), ``acked_lost`` (of the checked, how many
no shard remembers: must be 0), ``pools_sound`` (every
pool's borrowed total still equals the sum of its loans),
``double_settlements`` (base quantity settled beyond twice the traded
quantity, over all markets: must be 0), ``conservation_ok`` and the per-asset
imbalance (must all be 0), ``kills`` and ``recovery_p50_s``/``recovery_max_s``,
and the orders' latency (HDR: p50..max). ``--report`` draws the load test's PNG report
(``ops/report.py``) with the chaos counters under it.
"""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import statistics
import tempfile
import time

import ray
from tqdm import tqdm

from actors import bootstrap
from actors.client.exchange_client import ExchangeClient
from exchange.messages.records import Borrow, Borrowed, OrderAccepted, PlaceMarginOrder, Repaid, Repay
from exchange.matching.orders import OrderType, Side, TimeInForce
from ops.margin_setup import lender, margin_trader
from exchange.core.routing import shard_for
from ops.loadtest import OrderGenerator, RunRecord, fund_accounts, reported


async def _wait_new_incarnation(actor, started_ns: int, timeout_s: float = 120) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        try:
            stats = await asyncio.wait_for(actor.stats.remote(), 5)
            if stats["started_ns"] != started_ns:
                return time.monotonic() - began
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("an actor did not come back after a kill")


async def _killer(client: ExchangeClient, stop: asyncio.Event, interval_s: float, rng: random.Random,
                  recoveries: list, log: list) -> None:
    actors = [*client.handles.shards, *client.handles.markets.values(), client.handles.lending,
              client.handles.liquidator]
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
            return
        except asyncio.TimeoutError:
            pass
        actor = rng.choice(actors)
        stats = await actor.stats.remote()
        how = rng.choice(("ray.kill", "SIGKILL"))
        began = time.monotonic()
        if how == "ray.kill":
            ray.kill(actor, no_restart=False)
        else:
            os.kill(stats["pid"], signal.SIGKILL)
        recovered = await _wait_new_incarnation(actor, stats["started_ns"])
        recoveries.append(recovered)
        name = stats.get("market") or (f"shard:{stats['shard']}" if "shard" in stats else "liquidator")
        log.append({"actor": name, "how": how,
                    "recovery_s": round(time.monotonic() - began, 3)})


async def _load(client, gen, stop: asyncio.Event, concurrency: int, batch: int, acked: list, bar,
                record: RunRecord) -> None:
    async def sender() -> None:
        while not stop.is_set():
            commands = gen.batch(batch)
            started = time.perf_counter()
            results = await client.execute_async(commands)
            done = time.perf_counter()
            record.acknowledged(commands, [done - started] * len(commands), done)
            gen.observe(commands, results)
            for cmd, events in zip(commands, results):
                if any(type(e) is OrderAccepted for e in events):
                    acked.append((cmd.account_id, cmd.request_id))
            bar.update(len(commands))
    await asyncio.gather(*(sender() for _ in range(concurrency)))


MARGIN_ACCOUNTS = range(900_001, 900_021)
MARGIN_ACKS = (Borrowed, Repaid, OrderAccepted)
BUY, SELL, LIMIT, IOC = int(Side.BUY), int(Side.SELL), int(OrderType.LIMIT), int(TimeInForce.IOC)
USDT = 10**6


def fund_margin(client: ExchangeClient) -> None:
    """A lender and margin accounts (USDT only, so no index price is needed to borrow)."""
    ts = time.time_ns()
    commands = lender("chaos", 900_000, ts, {"USDT": 10**7 * USDT})
    for account in MARGIN_ACCOUNTS:
        commands += margin_trader("chaos", account, ts, 100_000 * USDT, "L2", "3x")
    client.execute(commands)


async def _margin_load(client: ExchangeClient, stop: asyncio.Event, rng: random.Random, acked: list,
                       counts: dict) -> None:
    """Borrow, repay and place IOC margin orders (auto-borrow, auto-repay: the follow-up
    chains) in small batches; acknowledged ones must survive every kill. They join the
    orders' ``acked`` list, so it stays in the order answers arrived (newest last)."""
    spec = client.config.markets["BTC-USDT"]
    while not stop.is_set():
        commands = []
        index = (await client.handles.index.index_prices.remote()).get("BTC")
        for _ in range(20):
            account = rng.choice(MARGIN_ACCOUNTS)
            roll = rng.random()
            if roll < 0.3 and index:
                side = rng.choice((BUY, SELL))
                price = index * (1_005 if side == BUY else 995) // 1_000 // spec.tick_minor * spec.tick_minor
                commands.append(PlaceMarginOrder(client.next_request_id(), time.time_ns(), account, spec.name, side,
                                                 LIMIT, price, rng.randint(1, 10) * 10 * spec.lot_minor, IOC))
                continue
            kind = Borrow if roll < 0.7 else Repay
            commands.append(kind(client.next_request_id(), time.time_ns(), account, "USDT",
                                 rng.randint(1, 1_000) * USDT, ""))
        results = await client.execute_async(commands)
        for cmd, events in zip(commands, results):
            if any(type(e) in MARGIN_ACKS for e in events):
                acked.append((cmd.account_id, cmd.request_id))
                counts["margin"] += 1


def _settle(client: ExchangeClient, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = sum(s["pending"] for s in ray.get([s.stats.remote() for s in client.handles.shards]))
        audit = client.audit()
        if audit["consistent"] and not pending:
            return audit
        time.sleep(0.2)
    return client.audit()


def run_chaos(args) -> dict:
    rng = random.Random(args.seed)
    scratch = None if args.data else tempfile.mkdtemp(prefix="exchange-chaos-")
    bootstrap.init_ray(address=args.address, num_cpus=args.num_cpus)
    client = ExchangeClient(bootstrap.create_actors(args.config, data_dir=args.data or scratch),
                            owns_cluster=not args.address)
    try:
        fund_accounts(client, args.accounts, not args.no_progress)
        fund_margin(client)
        ray.get(client.handles.index.start.remote())      # index prices: margin orders are valued at them
        gen = OrderGenerator(client, client.config.market_list, args.accounts, args.seed)
        acked: list = []
        counts = {"margin": 0}
        recoveries: list = []
        kills: list = []
        bar = tqdm(desc="chaos", unit="ord", disable=args.no_progress)
        record = RunRecord()

        async def main() -> None:
            stop = asyncio.Event()
            load = asyncio.create_task(_load(client, gen, stop, args.concurrency, args.batch, acked, bar, record))
            margin = asyncio.create_task(_margin_load(client, stop, random.Random(args.seed + 1), acked, counts))
            killer = asyncio.create_task(_killer(client, stop, args.kill_interval, rng, recoveries, kills))
            await asyncio.sleep(args.duration)
            stop.set()
            await asyncio.gather(load, margin, killer)
        asyncio.run(main())
        bar.close()
        audit = _settle(client)
        found = unchecked = 0
        by_shard: dict[int, list] = {}
        for key in acked:
            by_shard.setdefault(shard_for(key[0], client.config.routing), []).append(key)
        memory = ray.get([s.stats.remote() for s in client.handles.shards])
        for index, keys in list(by_shard.items()):
            if memory[index]["remembered"] >= memory[index]["replay_window"]:
                # the replay-protection memory is full: the oldest answers were evicted, so only the
                # newest half-window of acknowledged requests can still be looked up
                newest = keys[-(memory[index]["replay_window"] // 2):]
                unchecked += len(keys) - len(newest)
                by_shard[index] = newest
        for index, keys in by_shard.items():
            for start in range(0, len(keys), 10_000):
                found += sum(ray.get(client.handles.shards[index].known_requests.remote(keys[start:start + 10_000])))
        traded = {s["market"]: s["traded_quantity"] for s in client.market_stats()}
        applied: dict[str, int] = {}
        for shard_audit in ray.get([s.audit.remote() for s in client.handles.shards]):
            for market, quantity in shard_audit["fill_quantity_applied"].items():
                applied[market] = applied.get(market, 0) + quantity
        double = sum(abs(applied.get(m, 0) - 2 * q) for m, q in traded.items())
        pools_sound = ray.get(client.handles.lending.check_invariants.remote())
        chaos = {"kills": len(recoveries), "acked_lost": len(acked) - unchecked - found, "double_settlements": double,
                 "recovery_max_s": round(max(recoveries), 3) if recoveries else None}
        return reported(args, {
                "mode": "chaos", "orders": record.total.count,
                "orders_per_s": round(record.total.count / args.duration), **record.total.percentiles(),
                **record.result(args.duration), "chaos": chaos,
                "duration_s": args.duration, "acked_orders": len(acked) - counts["margin"],
                "acked_margin": counts["margin"], "acked_checked": len(acked) - unchecked, "acked_found": found,
                "acked_lost": len(acked) - unchecked - found,
                "double_settlements": double, "pools_sound": pools_sound,
                "conservation_ok": audit["ok"], "imbalance": audit["imbalance"], "kills": len(recoveries),
                "recovery_p50_s": round(statistics.median(recoveries), 3) if recoveries else None,
                "recovery_max_s": round(max(recoveries), 3) if recoveries else None,
                "trades": sum(s["trades"] for s in client.market_stats()), "kill_log": kills})
    finally:
        client.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
