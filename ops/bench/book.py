"""Benchmark: one million commands through the full single-process engine.

Mix (seeded): 60% limit orders near the mid (some crossing), 30% cancels of
live orders, 10% market/IOC orders, on one market, spread over many funded
accounts. Every command goes through ``Engine.apply`` (validation, holds,
matching, settlement, fees, events). Prints JSON: ``commands_per_s`` (commands
divided by time inside ``apply``), ``wall_commands_per_s`` (including the
harness), ``fills``, latency percentiles ``p50_us``/``p99_us``/``p999_us``/
``max_us``; the median run of ``--runs`` (default 3) by throughput.

Garbage collector: the engine creates no reference cycles on its hot path, so
the collector only has to find garbage that refcounting already freed. The
harness applies the engine processes' policy (``actors/gc_policy.py``: warm-up
heap frozen, automatic collection off, full collection + freeze at idle
moments); ``--gc default`` measures the untuned collector for comparison.

Usage: python ops/bench/book.py --json [--commands 1000000] [--runs 3] [--seed 7]
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.gc_policy import GcPolicy  # noqa: E402
from exchange.config import load_config  # noqa: E402
from exchange.engine import Engine  # noqa: E402
from exchange.messages.records import CancelOrder, Deposit, OpenAccount, OrderBooked, PlaceOrder  # noqa: E402
from exchange.matching.orders import OrderType, Side, TimeInForce  # noqa: E402

MARKET = "BTC-USDT"


def tune_gc(mode: str) -> None:
    """Apply the collector policy the engine processes use (see actors/gc_policy.py)."""
    if mode == "tuned":
        GcPolicy().install()


def run_once(commands: int, seed: int, accounts: int, gc_mode: str) -> dict:
    config = load_config()
    engine = Engine(config)
    spec = config.markets[MARKET]
    rng = random.Random(seed)
    for account in range(1, accounts + 1):
        engine.apply(OpenAccount(f"open:{account}", 0, account))
        engine.apply(Deposit(f"usdt:{account}", 0, account, "USDT", 10**15))
        engine.apply(Deposit(f"btc:{account}", 0, account, "BTC", 10**13))
    tune_gc(gc_mode)
    mid = 50_000 * spec.tick_minor * 100          # 50,000.00 USDT in minor units
    tick, lot = spec.tick_minor, spec.lot_minor
    live: list[tuple[int, int]] = []
    latencies = [0] * commands
    apply = engine.apply
    perf = time.perf_counter_ns
    BUY, SELL = int(Side.BUY), int(Side.SELL)              # decoded wire messages carry plain ints
    LIMIT, MARKET_T = int(OrderType.LIMIT), int(OrderType.MARKET)
    GTC, IOC = int(TimeInForce.GTC), int(TimeInForce.IOC)
    fills = 0
    wall0 = perf()
    for i in range(commands):
        roll = rng.random()
        account = rng.randrange(1, accounts + 1)
        if roll < 0.30 and live:
            j = rng.randrange(len(live))
            live[j], live[-1] = live[-1], live[j]
            order_id, owner = live.pop()
            cmd = CancelOrder(i + 1, i, owner, MARKET, order_id)
        elif roll < 0.40:
            side = BUY if rng.random() < 0.5 else SELL
            if rng.random() < 0.5:
                cmd = PlaceOrder(i + 1, i, account, MARKET, side, MARKET_T, 0, rng.randint(1, 20) * lot, IOC)
            else:
                offset = rng.randint(0, 20) * tick
                price = mid + offset if side == BUY else mid - offset
                cmd = PlaceOrder(i + 1, i, account, MARKET, side, LIMIT, price, rng.randint(1, 20) * lot, IOC)
        else:
            side = BUY if rng.random() < 0.5 else SELL
            offset = rng.randint(-5, 60) * tick     # mostly passive, some crossing
            price = mid - offset if side == BUY else mid + offset
            cmd = PlaceOrder(i + 1, i, account, MARKET, side, LIMIT, price, rng.randint(1, 50) * lot, GTC)
        t0 = perf()
        events = apply(cmd)
        latencies[i] = perf() - t0
        for event in events:
            kind = type(event)
            if kind is OrderBooked:
                live.append((event.order_id, event.account_id))
            elif kind.__name__ == "Fill":
                fills += 1
    wall = perf() - wall0
    gc.unfreeze()
    engine.check_invariants()
    latencies.sort()
    busy = sum(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(commands - 1, int(q * commands))] / 1000, 2)
    return {"commands": commands, "commands_per_s": round(commands / (busy / 1e9)),
            "wall_commands_per_s": round(commands / (wall / 1e9)), "fills": fills,
            "p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999),
            "max_us": round(latencies[-1] / 1000, 2), "resting_orders_end": len(live),
            "conservation_ok": not any(engine.conservation().values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--gc", choices=["tuned", "default"], default="tuned")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the median run)")
    args = parser.parse_args(argv)
    runs = [run_once(args.commands, args.seed + r, args.accounts, args.gc) for r in range(args.runs)]
    median = sorted(runs, key=lambda r: r["commands_per_s"])[len(runs) // 2]
    result = {**median, "runs": args.runs, "seed": args.seed, "gc": args.gc,
              "commands_per_s_runs": [r["commands_per_s"] for r in runs],
              "python": sys.version.split()[0]}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
