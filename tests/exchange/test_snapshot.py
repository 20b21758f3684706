"""Snapshots and the codec: restored state hashes the same as the original."""
from __future__ import annotations

import json
import random

import orjson

from hypothesis import given, settings, strategies as st

from exchange.messages.codec import decode, encode, encode_shallow
from exchange.config import load_config
from exchange.engine import Engine
from exchange.messages.records import CancelOrder, Deposit, OpenAccount, PlaceMarginOrder, PlaceOrder
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.snapshot import market_state, restore_market, restore_shard, shard_state
from tests.exchange.support import ALICE, BOB, BTC_USDT, BUY, GTC, LIMIT, SELL, btc, usdt


def busy_engine(seed: int, enums: bool) -> tuple[Engine, list]:
    config = load_config()
    engine, rng, commands = Engine(config), random.Random(seed), []
    side = (lambda v: Side(v)) if enums else int
    for account in range(1, 6):
        commands += [OpenAccount(f"o:{account}", 0, account), Deposit(f"u:{account}", 0, account, "USDT", 10**12),
                     Deposit(f"b:{account}", 0, account, "BTC", 10**10)]
    for i in range(400):
        if i % 5 == 4:
            commands.append(CancelOrder(f"c:{i}", i, rng.randint(1, 5), "BTC-USDT", rng.randint(1, 300) << 10))
        else:
            commands.append(PlaceOrder(f"p:{i}", i, rng.randint(1, 5), "BTC-USDT", side(rng.choice((1, 2))),
                                       OrderType.LIMIT if enums else 1, (500_000 + rng.randint(-20, 20)) * 10_000,
                                       rng.randint(1, 9) * 10_000, TimeInForce.GTC if enums else 1, "", 0))
    for command in commands:
        engine.apply(command)
    return engine, commands


def test_snapshot_through_json_with_busy_book_restores_the_same_state_hash():
    engine, _ = busy_engine(5, enums=True)
    config = engine.config
    # orjson, as the actors write it: it hands each message to the default hook
    # (the stdlib json would write NamedTuples as bare arrays).
    shard = restore_shard(config, orjson.loads(orjson.dumps(shard_state(engine.shard), default=encode_shallow)))
    market = restore_market(config, json.loads(json.dumps(market_state(engine.markets["BTC-USDT"]))))
    assert shard.state_hash() == engine.shard.state_hash()
    assert market.canonical() == engine.markets["BTC-USDT"].canonical()
    assert shard.results == engine.shard.results
    shard.check_invariants()
    market.check_invariants()


def test_engine_with_enum_or_int_fields_reaches_the_same_state_hash():
    assert busy_engine(9, enums=True)[0].state_hash() == busy_engine(9, enums=False)[0].state_hash()


def test_replay_of_decoded_commands_reaches_the_same_state_hash():
    engine, commands = busy_engine(13, enums=True)
    replayed = Engine(engine.config)
    for command in commands:
        replayed.apply(decode(json.loads(json.dumps(encode(command)))))
    assert replayed.state_hash() == engine.state_hash()


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.integers(-2**63, 2**63 - 1), st.text(max_size=8),
                 st.tuples(st.text(max_size=4), st.integers(0, 10**6))))
def test_codec_with_any_request_id_round_trips_to_an_equal_hashable_message(request_id):
    message = PlaceOrder(request_id, 1, 2, "BTC-USDT", Side.SELL, 1, 3, 4, 1, "x", 0)
    back = decode(json.loads(json.dumps(encode(message))))
    assert back == message and hash(back.request_id) == hash(message.request_id)


def resting_margin_order():
    """A margin harness whose cross book has a resting buy it borrowed for (auto-repay on)."""
    from tests.exchange.margin.test_margin import MarginHarness, margin_config
    h = MarginHarness(margin_config())
    events = h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.3"), GTC,
                   isolated=False, auto_borrow=True, auto_repay=True)
    assert [type(e).__name__ for e in events][-2:] == ["OrderAccepted", "OrderBooked"], events
    return h


def test_snapshot_with_a_resting_margin_order_settles_it_in_the_restored_book():
    original, restored = resting_margin_order(), resting_margin_order()
    engine = restored.engine
    engine.shard = restore_shard(engine.config, orjson.loads(orjson.dumps(shard_state(engine.shard),
                                                                          default=encode_shallow)))
    assert engine.state_hash() == original.engine.state_hash()
    order = next(iter(engine.shard.orders.values()))
    assert order.wallet is engine.shard.margin.books[(ALICE, "")]
    for h in (original, restored):
        h.ex.place(BOB, SELL, usdt("50000"), btc("0.3"))
        h.engine.check_invariants()
    assert engine.state_hash() == original.engine.state_hash() and not engine.shard.orders


def test_a_shard_snapshot_taken_before_shards_were_added_routes_by_the_grown_layout():
    from dataclasses import replace
    from exchange.core.routing import shard_for
    from exchange.venue import new_shard
    two = load_config()                                                   # 2 shards
    grown = replace(two, shards=4, earlier_shards=((1_000_000, 2),))
    shard = new_shard(two, 0, two.routing)
    mine = [a for a in range(1, 200) if shard_for(a, 2) == 0]
    for account in mine:
        shard.ledger.open(account, "regular")
    restored = restore_shard(grown, orjson.loads(orjson.dumps(shard_state(shard))))
    assert restored.routing == grown.routing and restored.shards == 4 and restored.strays() == []
    assert all(restored.owns(a) for a in mine)                            # the old accounts stay
    above = range(1_000_000, 1_000_100)
    assert {a for a in above if restored.owns(a)} == {a for a in above if shard_for(a, 4) == 0}
    alone = restore_shard(grown, {**shard_state(new_shard(two, 0, 1)), "shards": 1})
    assert alone.shards == 1 and alone.owns(123)                          # a stand-alone shard keeps its count
