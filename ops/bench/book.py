"""Benchmark: the full single-process engine against a bare book, on one command stream.

Mix (seeded): 60% limit orders near the mid (some crossing), 30% cancels of
live orders, 10% market/IOC orders, on one market, spread over many funded
accounts. The stream is generated once per run by a bare dict-and-deque
price-time book written here (``BareBook``: no ledger, no holds, no fees, no
events, no validation: the least any matcher must do), which decides which
orders are live to cancel. Then both run the same stream, each command timed
on its own:

- the bare book (``bare_commands_per_s``, ``bare_p50_us``...): the baseline
  measured in the same run;
- ``Engine.apply`` (validation, the door, holds, matching, settlement, fees,
  events, replay memory), as the Engine runs by default, with its fused spot
  path (``exchange/fused.py``): ``commands_per_s``, ``p50_us``/``p99_us``/
  ``p999_us``/``max_us``, ``fills``;
- the same Engine without the fused path (``Engine(fused=False)``: every
  command through the pipeline step by step): ``pipeline_commands_per_s``...,
  ``fused_to_pipeline_ratio``, and ``pipeline_same_state_hash`` (both end in
  the same state). ``--no-pipeline`` skips it.

**The risk rulebook's cost** (issue 15): the engine figures above run without a
rulebook (``rules off``: the config without its ``[risk]`` table); then the same
stream runs with the rulebook in force (``rules_on_commands_per_s``...,
``rules_on_to_off_ratio``, target >= 0.9): every order and cancel passes the
pre-trade gate (lock, two token buckets, freezes, restrictions, the open-order
cap, the price band, the cancel ladder) and the market's guard (mode, breaker).
The stream's commands are 1 ms apart (1,000 accounts: one command a second
each), and the ladder's count is raised so that nothing is refused: both runs
do the same work plus, with rules on, the checks and counting
(``rules_on_refused`` must be 0; ``rules_on_same_book`` checks the books
ended equal).

**Each measurement in a process of its own**: the bare book and each engine
run in a fresh spawned process, one at a time, on the same seeded stream. In
one process, an engine measured after another runs on the heap the first left
and measured up to 20% slower here, whichever it was (``--in-process`` keeps
the old way, for comparison).

``engine_to_bare_ratio`` = engine / bare commands per second (the Speed
issue's figure). ``wall_commands_per_s`` includes the harness. A cancel whose
order the engine no longer has (self-trade prevention, which the bare book
does not model, closed it) is still sent and counted (``diverged``). The
median run of ``--runs`` (default 3) by engine throughput is printed.

Garbage collector: the engine creates no reference cycles on its hot path, so
the collector only has to find garbage that refcounting already freed. The
harness applies the engine processes' policy (``actors/gc_policy.py``: warm-up
heap frozen, automatic collection off, full collection + freeze at idle
moments) to all three runs alike, the bare book included (it ran under the
default collector in the first run before, which moved its figure, and the
ratio, by 30% between runs); ``--gc default`` measures the untuned collector
for comparison.

Usage: python ops/bench/book.py --json [--commands 1000000] [--runs 3] [--seed 7] [--no-rules]
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import heapq
import multiprocessing
import random
import sys
import time
import tomllib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402
from actors.gc_policy import GcPolicy  # noqa: E402
from exchange.config import DEFAULT_CONFIG_PATH, load_config, parse_config  # noqa: E402
from exchange.engine import Engine  # noqa: E402
from exchange.messages.records import (CancelOrder, Deposit, Fill, OpenAccount, OrderBooked, OrderRejected,  # noqa: E402
                                       PlaceOrder)
from exchange.matching.orders import OrderType, Side, TimeInForce  # noqa: E402

MARKET = "BTC-USDT"
BUY, SELL = int(Side.BUY), int(Side.SELL)              # decoded wire messages carry plain ints
LIMIT, MARKET_T = int(OrderType.LIMIT), int(OrderType.MARKET)
GTC, IOC = int(TimeInForce.GTC), int(TimeInForce.IOC)
PLACE, CANCEL = 0, 1
STEP_NS = 1_000_000            # the stream's clock: one command a millisecond


class BareBook:
    """Price-time priority with a dict of deques per side and a heap of prices:
    ``place`` matches, then rests a GTC remainder; ``cancel`` removes an order
    (its deque entry is emptied and skipped later). Prices and quantities are
    plain ints; ``place`` returns the number of fills."""
    __slots__ = ("levels", "prices", "orders")

    def __init__(self):
        self.levels = ({}, {})            # per side (0 bids, 1 asks): price -> deque of [order, quantity]
        self.prices = ([], [])            # per side: a heap (bids negated) with stale prices left in
        self.orders: dict = {}            # order -> (side index, price, entry)

    def place(self, order: int, side: int, price: int | None, quantity: int, rest: bool) -> int:
        own, other = (0, 1) if side == BUY else (1, 0)
        levels, heap = self.levels[other], self.prices[other]
        fills = 0
        while quantity and heap:
            best = heap[0] if other == 1 else -heap[0]
            level = levels.get(best)
            if level is None:
                heapq.heappop(heap)
                continue
            if price is not None and (best > price if side == BUY else best < price):
                break
            entry = level[0]
            if entry[1] == 0:                       # cancelled
                level.popleft()
            else:
                traded = min(quantity, entry[1])
                entry[1] -= traded
                quantity -= traded
                fills += 1
                if entry[1] == 0:
                    level.popleft()
                    del self.orders[entry[0]]
            if not level:
                del levels[best]
                heapq.heappop(heap)
        if quantity and rest and price is not None:
            level = self.levels[own].get(price)
            if level is None:
                level = self.levels[own][price] = deque()
                heapq.heappush(self.prices[own], price if own == 1 else -price)
            entry = [order, quantity]
            level.append(entry)
            self.orders[order] = (own, price, entry)
        return fills

    def cancel(self, order: int) -> bool:
        found = self.orders.pop(order, None)
        if found is None:
            return False
        own, price, entry = found
        entry[1] = 0
        level = self.levels[own][price]
        while level and level[0][1] == 0:
            level.popleft()
        if not level:
            del self.levels[own][price]           # its heap price goes stale, popped when reached
        return True


def generate(commands: int, seed: int, accounts: int, tick: int, lot: int) -> list[tuple]:
    """The seeded stream: ``(PLACE, account, side, order_type, price, quantity, tif)`` and
    ``(CANCEL, index of the placing command)``, the cancels choosing among orders a bare
    book holds at that point."""
    rng = random.Random(seed)
    mid = 50_000 * tick * 100          # 50,000.00 USDT in minor units
    book, live, stream = BareBook(), [], []
    for i in range(commands):
        roll = rng.random()
        account = rng.randrange(1, accounts + 1)
        if roll < 0.30 and live:
            j = rng.randrange(len(live))
            live[j], live[-1] = live[-1], live[j]
            placed = live.pop()
            if book.cancel(placed):
                stream.append((CANCEL, placed))
                continue
            roll = 1.0                                 # it filled meanwhile: place an order instead
        side = BUY if rng.random() < 0.5 else SELL
        if roll < 0.40:
            if rng.random() < 0.5:
                op = (PLACE, account, side, MARKET_T, 0, rng.randint(1, 20) * lot, IOC)
            else:
                offset = rng.randint(0, 20) * tick
                op = (PLACE, account, side, LIMIT, mid + offset if side == BUY else mid - offset,
                      rng.randint(1, 20) * lot, IOC)
        else:
            offset = rng.randint(-5, 60) * tick        # mostly passive, some crossing
            op = (PLACE, account, side, LIMIT, mid - offset if side == BUY else mid + offset,
                  rng.randint(1, 50) * lot, GTC)
        book.place(i, side, op[4] if op[3] == LIMIT else None, op[5], op[6] == GTC)
        if op[6] == GTC and i in book.orders:
            live.append(i)
        stream.append(op)
    return stream


def run_bare(stream: list[tuple]) -> tuple[list[int], int]:
    """The bare book over ``stream``: per-command nanoseconds, fills."""
    book = BareBook()
    place, cancel, perf = book.place, book.cancel, time.perf_counter_ns
    latencies = [0] * len(stream)
    fills = 0
    for i, op in enumerate(stream):
        if op[0] == CANCEL:
            t0 = perf()
            cancel(op[1])
            latencies[i] = perf() - t0
        else:
            _, _, side, otype, price, quantity, tif = op
            t0 = perf()
            fills += place(i, side, price if otype == LIMIT else None, quantity, tif == GTC)
            latencies[i] = perf() - t0
    return latencies, fills


def rules_config(on: bool):
    """The default config without its rulebook (off), or with it and the cancel ladder's
    count out of reach of the stream (on: the same commands accepted, the checks all run)."""
    def edit(raw: dict) -> None:
        if on:
            raw["risk"] = {"rules": {"R-4.2.5-cancel-ladder": {"count": 10**9}}}
        else:
            raw.pop("risk", None)
    raw = tomllib.loads(DEFAULT_CONFIG_PATH.read_text())
    edit(raw)
    return parse_config(raw, "bench")


def run_engine(stream: list[tuple], accounts: int, gc_mode: str, fused: bool = True,
               config=None) -> tuple[list[int], int, int, Engine, int]:
    """``Engine.apply`` over ``stream`` (with the fused spot path, or the pipeline alone):
    per-command nanoseconds, fills, diverged cancels, the engine, wall nanoseconds.
    Commands are ``STEP_NS`` apart."""
    engine = Engine(config or rules_config(False), fused=fused)
    for account in range(1, accounts + 1):
        engine.apply(OpenAccount(f"open:{account}", 0, account))
        engine.apply(Deposit(f"usdt:{account}", 0, account, "USDT", 10**15))
        engine.apply(Deposit(f"btc:{account}", 0, account, "BTC", 10**13))
    tune_gc(gc_mode)
    apply, perf = engine.apply, time.perf_counter_ns
    latencies = [0] * len(stream)
    booked: dict[int, tuple[int, int]] = {}      # placing command -> (order id, owner)
    fills = diverged = 0
    wall0 = perf()
    for i, op in enumerate(stream):
        if op[0] == CANCEL:
            order_id, owner = booked.pop(op[1], (0, 1))
            diverged += order_id == 0
            cmd = CancelOrder(i + 1, i * STEP_NS, owner, MARKET, order_id)
        else:
            _, account, side, otype, price, quantity, tif = op
            cmd = PlaceOrder(i + 1, i * STEP_NS, account, MARKET, side, otype, price, quantity, tif)
        t0 = perf()
        events = apply(cmd)
        latencies[i] = perf() - t0
        for event in events:
            kind = type(event)
            if kind is OrderBooked:
                booked[i] = (event.order_id, event.account_id)
            elif kind is Fill:
                fills += 1
            elif kind is OrderRejected and event.rule:
                engine.refused_by_rules = getattr(engine, "refused_by_rules", 0) + 1
    return latencies, fills, diverged, engine, perf() - wall0


def tune_gc(mode: str) -> None:
    """Apply the collector policy the engine processes use (see actors/gc_policy.py)."""
    if mode == "tuned":
        GcPolicy().install()


def summary(latencies: list[int], prefix: str = "") -> dict:
    ordered = sorted(latencies)
    n = len(ordered)

    def pct(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] / 1000, 2)
    return {f"{prefix}commands_per_s": round(n / (sum(ordered) / 1e9)), f"{prefix}p50_us": pct(0.50),
            f"{prefix}p99_us": pct(0.99), f"{prefix}p999_us": pct(0.999),
            f"{prefix}max_us": round(ordered[-1] / 1000, 2)}


def measure(kind: str, commands: int, seed: int, accounts: int, gc_mode: str) -> dict:
    """One measurement on the seeded stream: ``bare`` (the bare book), ``off`` (the Engine,
    no rulebook), ``on`` (the rulebook in force) or ``pipeline`` (no fused path). Plain data
    back (it may come from a child process): the latency summary and what the checks need."""
    spec = load_config().markets[MARKET]
    stream = generate(commands, seed, accounts, spec.tick_minor, spec.lot_minor)
    if kind == "bare":
        tune_gc(gc_mode)
        latencies, fills = run_bare(stream)
        gc.unfreeze()
        return {"summary": summary(latencies, "bare_"), "fills": fills}
    latencies, fills, diverged, engine, wall = run_engine(stream, accounts, gc_mode, fused=kind != "pipeline",
                                                          config=rules_config(kind == "on"))
    gc.unfreeze()
    engine.check_invariants()
    book = engine.markets[MARKET].book
    return {"summary": summary(latencies, PREFIX[kind]), "fills": fills, "diverged": diverged, "wall": wall,
            "book": hashlib.sha256(repr(book.canonical()).encode()).hexdigest(), "state_hash": engine.state_hash(),
            "resting": len(book.orders), "conservation_ok": not any(engine.conservation().values()),
            "refused": getattr(engine, "refused_by_rules", 0)}


PREFIX = {"off": "", "on": "rules_on_", "pipeline": "pipeline_"}


def isolated(kind: str, *args) -> dict:
    """``measure`` in a fresh process of its own (spawned, one at a time): no engine measures
    on a heap another engine left behind."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, kind, *args).result()


def run_once(commands: int, seed: int, accounts: int, gc_mode: str, pipeline: bool, rules: bool = True,
             isolate: bool = True) -> dict:
    """The bare book, the engine, the engine with the rulebook (``rules``) and (``pipeline``)
    the engine without its fused path, on one stream, each under the same collector policy
    and (``isolate``) each in a process of its own."""
    run = (lambda kind: isolated(kind, commands, seed, accounts, gc_mode)) if isolate else \
        (lambda kind: _in_process(kind, commands, seed, accounts, gc_mode))
    bare, off = run("bare"), run("off")
    result = {"commands": commands, **off["summary"], "wall_commands_per_s": round(commands / (off["wall"] / 1e9)),
              "fills": off["fills"], **bare["summary"], "bare_fills": bare["fills"], "diverged": off["diverged"],
              "resting_orders_end": off["resting"], "conservation_ok": off["conservation_ok"]}
    result["engine_to_bare_ratio"] = round(result["commands_per_s"] / result["bare_commands_per_s"], 4)
    if rules:
        on = run("on")
        result.update(on["summary"])
        result["rules_on_to_off_ratio"] = round(result["rules_on_commands_per_s"] / result["commands_per_s"], 4)
        result["rules_on_refused"] = on["refused"]
        result["rules_on_same_book"] = on["book"] == off["book"]
    if pipeline:
        piped = run("pipeline")
        result.update(piped["summary"])
        result["pipeline_to_bare_ratio"] = round(result["pipeline_commands_per_s"] / result["bare_commands_per_s"], 4)
        result["fused_to_pipeline_ratio"] = round(result["commands_per_s"] / result["pipeline_commands_per_s"], 3)
        result["pipeline_same_state_hash"] = piped["state_hash"] == off["state_hash"]
    return result


def _in_process(kind: str, *args) -> dict:
    result = measure(kind, *args)
    gc.collect()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--gc", choices=["tuned", "default"], default="tuned")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="skip the engine without its fused path (pipeline_* figures)")
    parser.add_argument("--no-rules", action="store_true", help="skip the run with the risk rulebook in force")
    parser.add_argument("--in-process", action="store_true",
                        help="measure every engine in this process (the one measured later runs on the heap the "
                             "earlier left: up to 20%% slower here) instead of each in a fresh process")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the median run)")
    args = parser.parse_args(argv)
    runs = [run_once(args.commands, args.seed + r, args.accounts, args.gc, not args.no_pipeline, not args.no_rules,
                     isolate=not args.in_process) for r in range(args.runs)]
    median = sorted(runs, key=lambda r: r["commands_per_s"])[len(runs) // 2]
    result = {**median, "runs": args.runs, "seed": args.seed, "gc": args.gc,
              "commands_per_s_runs": [r["commands_per_s"] for r in runs],
              "engine_to_bare_ratio_runs": [r["engine_to_bare_ratio"] for r in runs],
              "rules_on_to_off_ratio_runs": [r.get("rules_on_to_off_ratio") for r in runs],
              "rules_on_to_off_ratio_median": (sorted(r["rules_on_to_off_ratio"] for r in runs)[len(runs) // 2]
                                               if not args.no_rules else None),
              "python": sys.version.split()[0]}
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
