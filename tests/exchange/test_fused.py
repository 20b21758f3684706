"""The fused spot path (``exchange/fused.py``) against the pipeline it fuses.

Every stream runs through an Engine with the fused path (the default) and
one without it (``fused=False``: every command through the door, the shard,
the market and settlement step by step). They must give the same events for
every command and the same ``state_hash`` at the end. The fused path must also refuse
(return None) without changing anything, and must actually take the common
commands, or the comparison would prove nothing.
"""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings

from exchange.engine import Engine
from exchange.matching.orders import Side, TimeInForce
from exchange.messages.records import (CancelOrder, Deposit, OpenAccount, OrderAccepted, PlaceMarginOrder,
                                       PlaceOrder)
from tests.exchange.support import BTC_USDT, BUY, CONFIG, GTC, IOC, LIMIT, MARKET, SELL, btc, usdt
from tests.exchange.test_engine_properties import Stream, streams


def run_both(commands: list, config=CONFIG, setup=None) -> tuple[Engine, Engine, int]:
    """Apply ``commands`` to a fused and a pipeline Engine; assert equal events per command
    and equal hashes. Return both engines and how many commands the fused path took."""
    fused, pipeline = Engine(config), Engine(config, fused=False)
    if setup is not None:
        setup(fused)
        setup(pipeline)
    taken = 0
    for i, command in enumerate(commands):
        before = fused.state_hash()
        events = fused.fused.apply(command)
        if events is None:
            assert fused.state_hash() == before, f"command {i}: the fused path changed state and refused"
            events = fused.apply(command)
        else:
            taken += 1
            if fused.shard.followups:
                fused._run(fused.shard.take_followups(), events)
        expected = pipeline.apply(command)
        assert events == expected, f"command {i} {command}:\n fused    {events}\n pipeline {expected}"
        assert [type(e) for e in events] == [type(e) for e in expected]
    assert fused.state_hash() == pipeline.state_hash()
    fused.check_invariants()
    return fused, pipeline, taken


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams)
def test_fused_path_with_random_streams_gives_the_pipelines_events_and_hash(operations):
    stream = Stream()          # builds commands against a live engine (fused); the stream is then replayed
    for op in operations:
        command = stream.command_for(op)
        if command is not None:
            stream.run(command)
    run_both(stream.commands)


def seeded_commands(seed: int, count: int) -> list:
    """A busy seeded stream, generated against a pipeline Engine so that cancels name live
    orders: GTC/IOC/market/post-only/FOK orders near the mid, cancels by id and by client
    order id (own, foreign, already closed), STP modes, balances that run out, repeated and
    re-used request ids, IntEnum fields."""
    rng = random.Random(seed)
    spec = CONFIG.markets[BTC_USDT]
    mid, tick, lot = usdt("50000"), spec.tick_minor, spec.lot_minor
    engine = Engine(CONFIG, fused=False)
    commands: list = []
    accounts = list(range(1, 9))
    for account in accounts:
        commands.append(OpenAccount(f"open{account}", 0, account, ""))
        commands.append(Deposit(f"usdt{account}", 0, account, "USDT", usdt("40000") * rng.randint(1, 3)))
        commands.append(Deposit(f"btc{account}", 0, account, "BTC", btc("1") * rng.randint(1, 3)))
    for command in commands:
        engine.apply(command)
    placed: list = []                  # (owner, order id, client order id), closed ones too
    for i in range(count):
        account = rng.choice(accounts)
        roll = rng.random()
        if roll < 0.25 and placed:
            owner, order_id, coid = rng.choice(placed[-50:])
            who = owner if rng.random() < 0.9 else rng.choice(accounts)
            if coid and rng.random() < 0.5:
                command = CancelOrder(i, i, who, BTC_USDT, 0, coid)
            else:
                command = CancelOrder(i, i, who, BTC_USDT, order_id, "")
        elif roll < 0.30:
            earlier = rng.choice(commands)
            command = earlier if rng.random() < 0.5 else earlier._replace(ts_ns=earlier.ts_ns + 1)
            if rng.random() < 0.5 and type(earlier) is PlaceOrder:
                command = earlier._replace(quantity=earlier.quantity + lot)       # id re-used, new body
        else:
            side = rng.choice([BUY, SELL])
            offset = rng.randint(-4, 12) * tick * 10
            price = mid - offset if side == BUY else mid + offset
            style, otype, tif = rng.random(), LIMIT, GTC
            if style < 0.1:
                otype, tif, price = MARKET, IOC, 0
            elif style < 0.2:
                tif = IOC
            elif style < 0.3:
                tif = int(TimeInForce.POST_ONLY)
            elif style < 0.33:
                tif = int(TimeInForce.FOK)
            if rng.random() < 0.05:
                side = Side(side)                                      # an IntEnum: the pipeline's door
            coid = f"c{rng.randint(0, 30)}" if rng.random() < 0.3 else ""
            command = PlaceOrder(i, i, account, BTC_USDT, side, otype, price, rng.randint(1, 40) * lot, tif,
                                 coid, rng.choice([0, 0, 0, 1, 2, 3]))
        commands.append(command)
        for event in engine.apply(command):
            if type(event) is OrderAccepted and event.request_id == command.request_id:
                placed.append((event.account_id, event.order_id, event.client_order_id))
    return commands


def test_fused_path_with_a_long_seeded_stream_gives_the_pipelines_events_and_takes_most_commands():
    commands = seeded_commands(7, 3_000)
    _, _, taken = run_both(commands)
    orders_and_cancels = sum(type(c) in (PlaceOrder, CancelOrder) for c in commands)
    assert taken > orders_and_cancels * 0.5, (taken, orders_and_cancels)


def test_fused_path_refuses_without_change_what_it_does_not_fuse():
    engine = Engine(CONFIG)
    for command in seeded_commands(3, 0):
        engine.apply(command)
    spec = CONFIG.markets[BTC_USDT]
    before = engine.state_hash()
    untaken = [PlaceOrder(1, 0, 1, BTC_USDT, BUY, MARKET, 0, spec.lot_minor, IOC),          # empty book
               PlaceOrder(2, 0, 1, BTC_USDT, BUY, LIMIT, usdt("50000"), spec.lot_minor, int(TimeInForce.FOK)),
               PlaceOrder(3, 0, 1, BTC_USDT, Side.BUY, LIMIT, usdt("50000"), spec.lot_minor, GTC),   # IntEnum
               PlaceOrder(4, 0, 1, BTC_USDT, BUY, LIMIT, usdt("50000") + 1, spec.lot_minor, GTC),    # off tick
               PlaceOrder(5, 0, 99, BTC_USDT, BUY, LIMIT, usdt("50000"), spec.lot_minor, GTC),       # no account
               PlaceOrder(6, 0, 1, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("100"), GTC),            # no funds
               PlaceOrder("open1", 0, 1, BTC_USDT, BUY, LIMIT, usdt("50000"), spec.lot_minor, GTC),  # id re-used
               CancelOrder(7, 0, 1, BTC_USDT, 5 << 10, ""),                                         # no such order
               PlaceMarginOrder(8, 0, 1, BTC_USDT, BUY, LIMIT, usdt("50000"), spec.lot_minor, GTC)]
    for command in untaken:
        assert engine.fused.apply(command) is None, command
        assert engine.state_hash() == before


def test_spot_taker_filling_a_margin_makers_auto_repay_order_matches_the_pipeline():
    """A maker funded by a margin book closes inside the fused match: the product's hook
    (auto-repay) runs as a follow-up, as in the pipeline."""
    from tests.exchange.margin.test_margin import MarginHarness, margin_config
    harnesses = [MarginHarness(margin_config()) for _ in range(2)]
    harnesses[1].engine.fused = None
    results = []
    for h in harnesses:
        h.ex.rest(2, SELL, usdt("50000"), btc("0.4"))
        h.run(PlaceMarginOrder, 1, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.4"), IOC)      # a long, in debt
        resting = h.run(PlaceMarginOrder, 1, BTC_USDT, SELL, LIMIT, usdt("55000"), btc("0.4"), GTC)
        taker = PlaceOrder("taker", 10**9, 3, BTC_USDT, BUY, LIMIT, usdt("55000"), btc("0.4"), GTC)
        results.append((resting, h.engine.apply(taker), h.engine.state_hash()))
        h.engine.check_invariants()
    assert results[0] == results[1]
    assert any(type(e).__name__ == "Repaid" for e in results[0][1]), results[0][1]


def test_cancel_of_a_resting_margin_order_goes_through_the_pipeline_and_matches_it():
    """A margin book's order closes through the desk's hook (it may repay): the fused path
    declines it, unchanged, and both engines answer the same."""
    from tests.exchange.margin.test_margin import MarginHarness, margin_config
    harnesses = [MarginHarness(margin_config()) for _ in range(2)]
    harnesses[1].engine.fused = None
    results = []
    for h in harnesses:
        h.ex.rest(2, SELL, usdt("50000"), btc("0.4"))
        h.run(PlaceMarginOrder, 1, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.4"), IOC)
        resting = h.run(PlaceMarginOrder, 1, BTC_USDT, SELL, LIMIT, usdt("55000"), btc("0.4"), GTC)
        order_id = next(e.order_id for e in resting if type(e) is OrderAccepted)
        cancel = CancelOrder("cancel-margin", 10**9, 1, BTC_USDT, order_id, "")
        if h.engine.fused is not None:
            before = h.engine.state_hash()
            assert h.engine.fused.apply(cancel) is None and h.engine.state_hash() == before
        results.append((h.engine.apply(cancel), h.engine.state_hash()))
        h.engine.check_invariants()
    assert results[0] == results[1]
    assert [type(e).__name__ for e in results[0][0]][-1] == "OrderClosed"
