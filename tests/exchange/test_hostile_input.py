"""Hostile input, as a property (issue 11): random values of every type in every
field of every client and liquidator command. Each command is either refused at
the door with a reason, changing nothing (``state_hash`` identical), or
admitted; whatever is admitted can always be journaled (orjson with the
codec), decodes back to the same command, and so does every event it
produced. The Engine's invariants and conservation hold after every command."""
from __future__ import annotations

import orjson
from hypothesis import given, settings, strategies as st

from exchange.accounts.access import LIQUIDATOR_COMMANDS, Role
from exchange.messages.codec import decode, encode_shallow
from exchange.messages.records import (AmendOrder, Borrow, CancelOrder, CoverShortfall, Deposit, EnableMargin,
                               FinishLiquidation, LiquidationStep, OpenAccount, OrderRejected, PlaceMarginOrder,
                               PlaceOrder, Repay, StartLiquidation, SupplyToPool, TransferMargin, Withdraw,
                               WithdrawFromPool, WriteOffDebt)
from exchange.core.money import INT64_MAX
from tests.exchange.support import ALICE, BTC_USDT, BUY, CONFIG, LIMIT, SELL, btc, funded_harness, usdt

P, Q = usdt("50000"), btc("0.1")
PRICES = (0,) * len(CONFIG.assets)
TEMPLATES = [
    OpenAccount("t", 0, 77, "vip1"), Deposit("t", 0, ALICE, "BTC", 5), Withdraw("t", 0, ALICE, "USDT", 5),
    PlaceOrder("t", 0, ALICE, BTC_USDT, BUY, LIMIT, P, Q, 1, "coid", 0),
    CancelOrder("t", 0, ALICE, BTC_USDT, 0, "mine"), AmendOrder("t", 0, ALICE, BTC_USDT, 1024, P, Q),
    EnableMargin("t", 0, ALICE, "L1", "3x"), TransferMargin("t", 0, ALICE, "USDT", 5, True, ""),
    Borrow("t", 0, ALICE, "USDT", 5, ""), Repay("t", 0, ALICE, "USDT", 5, ""),
    PlaceMarginOrder("t", 0, ALICE, BTC_USDT, SELL, LIMIT, P, Q, 1, False, True, True, ""),
    SupplyToPool("t", 0, ALICE, "USDT", 5), WithdrawFromPool("t", 0, ALICE, "USDT", 5),
    StartLiquidation("t", 0, ALICE, "", PRICES), LiquidationStep("t", 0, ALICE, "", BTC_USDT, 1, PRICES),
    CoverShortfall("t", 0, ALICE, "", "USDT", 5), FinishLiquidation("t", 0, ALICE, ""),
    WriteOffDebt("t", 0, ALICE, "", "USDT"),
]
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([0, 1, -1, INT64_MAX, INT64_MAX + 1, -(2 ** 63) - 1, 2 ** 64, 10 ** 30]),
    st.text(max_size=40),
    st.sampled_from(["", "BTC", "USDT", BTC_USDT, "\ud800", "a\udfff", "x" * 65, "x" * 100_000, "é",
                     "\x00", "L1", "3x", "vip1", "mine"]),
    st.binary(max_size=8), st.tuples(st.integers(), st.integers()),
    st.lists(st.integers(min_value=-5, max_value=2 ** 65), max_size=4), st.dictionaries(st.text(max_size=3),
                                                                                       st.integers()),
)


def encodes(message) -> bool:
    """The journal's encoding of ``message`` decodes back to it."""
    data = orjson.loads(orjson.dumps(message, default=encode_shallow))
    return decode(data) == message


@settings(max_examples=400, deadline=None, database=None)
@given(st.sampled_from(TEMPLATES), st.data())
def test_hostile_field_values_are_refused_with_a_reason_or_admitted_encodable(template, data):
    ex = funded_harness()
    ex.rest(ALICE, SELL, P, Q, client_order_id="mine")
    fields = data.draw(st.lists(st.sampled_from(template._fields), min_size=1, max_size=3, unique=True))
    command = template._replace(**{f: data.draw(HOSTILE) for f in fields})
    engine = ex.engine
    before = engine.state_hash()
    role = Role.LIQUIDATOR if type(command) in LIQUIDATOR_COMMANDS else Role.CLIENT
    admitted = engine.shard.admit(command, role)
    events = engine.apply(command)
    engine.check_invariants()
    if type(admitted) is list:                         # refused at the door
        assert events == admitted and len(events) == 1 and type(events[0]) is OrderRejected
        assert events[0].reason >= 100 and engine.state_hash() == before
    else:
        assert encodes(admitted.command)
    assert all(encodes(e) for e in events)             # the answer and every event can be journaled too
