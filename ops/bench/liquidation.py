"""Benchmark: a perpetual flash crash, in-process and on Ray actors.

The venue is the default one (``config/default.toml``: ``BTC-USDT-PERP``, its
1,000,000 USDT fund). ``--positions`` accounts (default 100,000) each hold one
position at 40,000: half are longs at 5x to 25x (a third isolated), half
the shorts that sold to them (cross, 2x to 4x). Market makers (as many as
their risk limits need) rest bids from 27,000 down to 20,000 for a fifth of
the longs' size. Then the index
falls 30% in one step (40,000 -> 28,000), and goes on being published once
a second: every long is due as the mark follows; the book takes what it can
at or above their bankruptcy prices, the fund pays its share until its
drawdown trigger, ADL closes the rest against the shorts.

Figures, each beside the baseline measured in the same run and their ratio:

- ``crash_s``: from the index move to the last liquidation finished (every
  liquidation and ADL fill done), and ``liquidations_per_s``; baseline: the
  same crash on the in-process ``Engine`` (``*_engine``), the domain's cost
  without Ray, messages or journals;
- ``mark_to_margin_p99_ms``: from an index update to every shard holding the
  new mark with every position re-valued at it (zones, notifications), p99
  over ``--marks`` updates before the crash; baseline: Ray's idle call
  (p50 of a no-op actor method) and the in-process mark-and-revalue. A mark
  re-values only the positions it can move (``exchange.perp.zones``); the
  first after the set-up re-values and prices every position (every one was
  touched by its trade): ``first_mark_ms``, apart.

Usage: python ops/bench/liquidation.py --json [--positions 100000] [--marks 30] [--no-ray] [--seed 7]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402
from exchange.config import load_config  # noqa: E402
from exchange.engine import Engine  # noqa: E402
from exchange.matching.orders import OrderType, Side, TimeInForce  # noqa: E402
from exchange.messages.records import (Deposit, OpenAccount, PlacePerpOrder, SetMarginMode,  # noqa: E402
                                       SetPerpLeverage, SetRiskLimit, TransferPerp)

PERP = "BTC-USDT-PERP"
USDT = 10**6
TICK, LOT = 100_000, 100_000                     # minor units: 0.1 USDT, 0.001 BTC
BUY, SELL, LIMIT = int(Side.BUY), int(Side.SELL), int(OrderType.LIMIT)
GTC, IOC = int(TimeInForce.GTC), int(TimeInForce.IOC)
BEFORE, AFTER = 40_000, 28_000                   # the index, whole USDT per BTC
MAKER = 1                                        # the makers: accounts 1, 2, ...
MAKER_NOTIONAL = 5_000_000                       # USDT of bids a maker rests (its top tier holds 10,000,000)
FIRST = 10_000
NS = 10**9


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def positions_commands(count: int, seed: int, ts: int) -> tuple[list, list]:
    """(setup: accounts, wallets, leverage and the maker's bids; trades: short then long, pair by pair)."""
    rng = random.Random(seed)
    pairs = count // 2
    setup, trades = [], []
    sizes = [rng.randint(10, 100) for _ in range(pairs)]             # lots: 0.01 to 0.1 BTC
    depth, levels = sum(sizes) // 5, 8
    makers = -(-depth * AFTER // 10**3 // MAKER_NOTIONAL)            # each within its top risk tier
    for m in range(MAKER, MAKER + makers):
        setup += [OpenAccount(f"m-open{m}", ts, m), Deposit(f"m-usdt{m}", ts, m, "USDT", 10**9 * USDT),
                  TransferPerp(f"m-perp{m}", ts, m, "USDT", 10**8 * USDT), SetPerpLeverage(f"m-lev{m}", ts, m, PERP, 2),
                  SetRiskLimit(f"m-tier{m}", ts, m, PERP, 9)]
        for level in range(levels):                                  # 27,000 down to 20,000
            price = (AFTER - 1_000 - level * 1_000) * USDT
            setup.append(PlacePerpOrder(f"m-bid{m}:{level}", ts, m, PERP, BUY, LIMIT, price,
                                        max(1, depth // levels // makers) * LOT, GTC))
    for i, lots in enumerate(sizes):
        short, long_ = FIRST + 2 * i, FIRST + 2 * i + 1
        for account, leverage in ((short, rng.randint(2, 4)), (long_, rng.randint(5, 25))):
            margin = lots * LOT * BEFORE // 10**8 * USDT // leverage + 500 * USDT // 10
            setup += [OpenAccount(f"o{account}", ts, account), Deposit(f"d{account}", ts, account, "USDT", 2 * margin),
                      TransferPerp(f"t{account}", ts, account, "USDT", margin)]
            if account == long_ and i % 3 == 0:
                setup.append(SetMarginMode(f"i{account}", ts, account, PERP, True))
            setup.append(SetPerpLeverage(f"l{account}", ts, account, PERP, leverage))
        trades += [PlacePerpOrder(f"s{short}", ts, short, PERP, SELL, LIMIT, BEFORE * USDT, lots * LOT, GTC),
                   PlacePerpOrder(f"b{long_}", ts, long_, PERP, BUY, LIMIT, BEFORE * USDT, lots * LOT, IOC)]
    return setup, trades


def _check(results: list) -> int:
    """How many commands were rejected (the set-up must have none)."""
    return sum(1 for events in results if events and type(events[0]).__name__ in ("OrderRejected",))


# ---- in-process ------------------------------------------------------------------------------

def engine_with_positions(count: int, seed: int, ts: int) -> Engine:
    """The default venue in-process, marked at 40,000, with ``positions_commands`` applied."""
    engine = Engine(load_config())
    engine.set_index_prices({"BTC": BEFORE * USDT})
    engine.mark_perps(ts)
    setup, trades = positions_commands(count, seed, ts)
    rejected = _check([engine.apply(c) for c in setup + trades])
    assert rejected == 0, f"{rejected} set-up commands rejected"
    return engine


def engine_crash(count: int, marks: int, seed: int) -> dict:
    ts = 1_000 * NS
    engine = engine_with_positions(count, seed, ts)
    latencies = []
    rng = random.Random(seed)
    ts += NS
    started = time.perf_counter()
    engine.mark_perps(ts)                                         # the first: every position re-valued
    first = time.perf_counter() - started
    for i in range(marks):                                        # small moves: nobody due
        ts += NS
        engine.set_index_prices({"BTC": (BEFORE + rng.randint(-20, 20)) * USDT})
        started = time.perf_counter()
        engine.mark_perps(ts)
        latencies.append(time.perf_counter() - started)
    ts += NS
    engine.set_index_prices({"BTC": AFTER * USDT})
    started = time.perf_counter()
    engine.mark_perps(ts)
    finished = []
    while True:
        finished += engine.run_perp_liquidations(ts)
        if not engine.perp_liquidator.open and not engine.shard.perp.zones:
            break
        if not engine.perp_liquidator.open and not any(z == 2 for z in engine.shard.perp.zones.values()):
            break
        ts += NS
        engine.mark_perps(ts)
    seconds = time.perf_counter() - started
    engine.check_invariants()
    fund = engine.perp_fund
    adl = sum(1 for e in fund.entries if e.kind.name == "ADL_START")
    return {"crash_s_engine": round(seconds, 3), "liquidations_engine": len(finished),
            "liquidations_per_s_engine": round(len(finished) / seconds, 1), "adl_rounds_engine": adl,
            "simulated_seconds_engine": ts // NS - 1_000 - marks - 2,
            "mark_to_margin_p99_ms_engine": round(_pct(latencies, 0.99) * 1e3, 3),
            "mark_to_margin_p50_ms_engine": round(statistics.median(latencies) * 1e3, 3),
            "first_mark_ms_engine": round(first * 1e3, 3),
            "fund_change_engine": fund.balances[PERP] - 1_000_000 * USDT}


# ---- on Ray ------------------------------------------------------------------------------------

def ray_crash(count: int, marks: int, seed: int, progress) -> dict:
    """The crash on Ray; it is over once no liquidation is open and no shard holds a position
    at or under maintenance (the liquidator's own read). Pairs may cross-match on Ray (the
    shards' batches reach the market in any order), so positions differ a little from the
    in-process run's."""
    import ray

    from actors import bootstrap
    from actors.capability import Keyring, Role
    from actors.client.operator import OperatorClient
    from actors.link.wire import unpack_plain
    from exchange.perp.liquidation import DUE
    from ops.bench.ray_rate import idle_call_p50_ms

    bootstrap.init_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as data:
        keyring = Keyring.mint()
        operator = OperatorClient(bootstrap.create_actors(data_dir=data, keyring=keyring), keyring)
        client, handles = operator.client, operator.client.handles
        market, liquidator = handles.markets[PERP], handles.liquidator
        index, reader = keyring.capability(Role.INDEX), keyring.capability(Role.LIQUIDATOR)
        try:
            idle_p50 = idle_call_p50_ms(300)
            ts = time.time_ns()

            def move(usdt: int) -> int:
                return ray.get(market.set_index_prices.remote(index, {"BTC": usdt * USDT}, time.time_ns()))

            def marked(mark: int) -> None:
                while not all(m.get(PERP, (0, 0))[1] == mark for m in ray.get([s.perp_marks.remote()
                                                                              for s in handles.shards])):
                    pass
            marked(move(BEFORE))
            setup, trades = positions_commands(count, seed, ts)
            rejected = 0
            for start in progress(range(0, len(setup) + len(trades), 4_000), "set-up"):
                rejected += _check(client.execute((setup + trades)[start:start + 4_000]))
            assert rejected == 0, f"{rejected} set-up commands rejected"
            latencies = []
            rng = random.Random(seed)
            started = time.perf_counter()
            marked(move(BEFORE + 1))                                # the first: every position re-valued
            first = time.perf_counter() - started
            for _ in range(marks):
                started = time.perf_counter()
                marked(move(BEFORE + rng.randint(-20, 20)))
                latencies.append(time.perf_counter() - started)
            started = time.perf_counter()
            marked(move(AFTER))
            finished, last_change, last, due = 0, time.perf_counter(), -1, None
            deadline = time.monotonic() + 1_800
            published = time.monotonic()
            while time.monotonic() < deadline:
                if time.monotonic() - published >= 1.0:      # the index feed goes on, once a second
                    move(AFTER)
                    published = time.monotonic()
                view = ray.get(liquidator.perp_liquidations.remote(0))
                finished = view["finished"]
                if finished != last:
                    last, last_change = finished, time.perf_counter()
                if finished and not view["open"]:
                    due = sum(len(unpack_plain(d)[0]) for d in ray.get([
                        shard.perp_read_many.remote(reader, [[DUE]]) for shard in handles.shards]))
                    if not due:
                        break
                time.sleep(0.05)
            seconds = last_change - started
            audit = client.audit()
            fund = client.perp_fund()["balances"][PERP]
        finally:
            bootstrap.destroy_actors(handles)
            ray.shutdown()
    return {"crash_s": round(seconds, 3), "liquidations": finished, "due_left": due,
            "liquidations_per_s": round(finished / seconds, 1), "conservation_ok": audit["ok"],
            "mark_to_margin_p99_ms": round(_pct(latencies, 0.99) * 1e3, 3),
            "mark_to_margin_p50_ms": round(statistics.median(latencies) * 1e3, 3),
            "first_mark_ms": round(first * 1e3, 3),
            "ray_idle_call_p50_ms": round(idle_p50, 3), "fund_change": fund - 1_000_000 * USDT}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--positions", type=int, default=100_000, help="positions open before the crash")
    parser.add_argument("--marks", type=int, default=30, help="index updates timed before the crash")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-ray", action="store_true", help="only the in-process crash")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = {"positions": args.positions, **engine_crash(args.positions, args.marks, args.seed)}
    print(json.dumps(result), file=sys.stderr, flush=True)          # the in-process part, before Ray's
    if not args.no_ray:
        result.update(ray_crash(args.positions, args.marks, args.seed, _progress(not args.json)))
        result["liquidations_per_s_ratio_to_engine"] = round(result["liquidations_per_s"]
                                                             / result["liquidations_per_s_engine"], 4)
        result["mark_to_margin_p99_ratio_to_idle_call"] = round(result["mark_to_margin_p99_ms"]
                                                                / result["ray_idle_call_p50_ms"], 2)
        result["mark_to_margin_p99_ratio_to_engine"] = round(result["mark_to_margin_p99_ms"]
                                                             / result["mark_to_margin_p99_ms_engine"], 2)
    result["python"] = sys.version.split()[0]
    report(result, args.json)
    return 0


def _progress(show: bool):
    if not show:
        return lambda iterable, _: iterable
    from tqdm import tqdm
    return lambda iterable, label: tqdm(iterable, desc=label, unit="batch")


if __name__ == "__main__":
    raise SystemExit(main())
