"""The door every command passes before it touches state (issue 11): field
bounds the journal can hold, request ids, re-used ids with another body,
who may send what, which shard owns an account. Each case fails on the code
before issue 11 and is refused with its own reason, changing nothing."""
from __future__ import annotations

import dataclasses

import pytest

from exchange.accounts.access import Role
from exchange.messages.records import (CancelOrder, CoverShortfall, CreditCompensation, Deposit, FinishLiquidation,
                                       LiquidationStep, OpenAccount, OrderRejected, SetMaintenanceMargin,
                                       StartLiquidation, Withdraw, WriteOffDebt)
from exchange.core.money import INT64_MAX
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.accounts.shard import Admitted, AccountShard
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, CONFIG, SELL, assert_rejected, btc, funded_harness,
                                    snapshot, usdt)

P, Q = usdt("50000"), btc("0.1")
NO_PRICES = (0,) * len(CONFIG.assets)

# name -> (reason, decided in the market?, build(ex) -> command), as in test_engine_rejections.py
SCENARIOS = {
    "request_id_too_big": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit(2 ** 64, 0, ALICE, "BTC", 1)),
    "request_id_zero": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit(0, 0, ALICE, "BTC", 1)),
    "request_id_bool": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit(True, 0, ALICE, "BTC", 1)),
    "request_id_float": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit(1.0, 0, ALICE, "BTC", 1)),
    "request_id_tuple": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit((1, 2), 0, ALICE, "BTC", 1)),
    "request_id_surrogate": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit("r\ud800", 0, ALICE, "BTC", 1)),
    "request_id_long": (Reason.INVALID_REQUEST_ID, False, lambda ex: Deposit("r" * 65, 0, ALICE, "BTC", 1)),
    "request_id_reused": (Reason.REQUEST_ID_REUSED, False,
                          lambda ex: (ex.apply(Deposit("dup", 0, ALICE, "USDT", 100)),
                                      Deposit("dup", 0, ALICE, "USDT", 999))[-1]),
    "client_order_id_int": (Reason.INVALID_CLIENT_ORDER_ID, False,
                            lambda ex: ex.place_cmd(ALICE, BUY, P, Q)._replace(client_order_id=5)),
    "client_order_id_megabyte": (Reason.INVALID_CLIENT_ORDER_ID, False,
                                 lambda ex: ex.place_cmd(ALICE, BUY, P, Q, client_order_id="x" * 1_000_000)),
    "client_order_id_surrogate": (Reason.INVALID_CLIENT_ORDER_ID, False,
                                  lambda ex: ex.place_cmd(ALICE, BUY, P, Q, client_order_id="a\udc80")),
    "cancel_client_order_id_int": (Reason.INVALID_CLIENT_ORDER_ID, False,
                                   lambda ex: CancelOrder("c", 0, ALICE, BTC_USDT, 0, 7)),
    "asset_name_long": (Reason.STRING_TOO_LONG, False, lambda ex: Deposit("s", 0, ALICE, "B" * 33, 1)),
    "market_name_long": (Reason.STRING_TOO_LONG, False,
                         lambda ex: ex.place_cmd(ALICE, BUY, P, Q, market="M" * 100_000)),
    "account_beyond_int64": (Reason.VALUE_OUT_OF_RANGE, False, lambda ex: OpenAccount("a", 0, INT64_MAX + 1)),
    "order_id_beyond_int64": (Reason.VALUE_OUT_OF_RANGE, False, lambda ex: ex.cancel_cmd(ALICE, 2 ** 64)),
    "amount_beyond_int64": (Reason.VALUE_OUT_OF_RANGE, False, lambda ex: Deposit("b", 0, ALICE, "BTC", 2 ** 63)),
    "liquidation_from_client": (Reason.NOT_PERMITTED, False,
                                lambda ex: ClientDoor(StartLiquidation("l", 0, ALICE, "", NO_PRICES))),
}


class ClientDoor:
    """A command to apply through the client's door (``Role.CLIENT``) in ``assert_rejected``."""
    def __init__(self, command):
        self.command = command
        self.request_id = command.request_id


@pytest.fixture
def ex():
    harness = funded_harness()
    apply = harness.engine.apply
    harness.engine.apply = lambda c, role=None: apply(c.command, Role.CLIENT) if type(c) is ClientDoor \
        else apply(c, role)
    return harness


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_door_with_bad_input_is_refused_with_its_reason_and_changes_nothing(ex, name):
    reason, _, build = SCENARIOS[name]
    assert_rejected(ex, build(ex), reason)


@pytest.mark.parametrize("command", [
    StartLiquidation("l1", 0, ALICE, "", NO_PRICES),
    LiquidationStep("l2", 0, ALICE, "", BTC_USDT, 1, NO_PRICES),
    CoverShortfall("l3", 0, ALICE, "", "USDT", 1_000_000 * 10 ** 6),
    FinishLiquidation("l4", 0, ALICE, ""),
    WriteOffDebt("l5", 0, ALICE, "", "USDT"),
], ids=lambda c: type(c).__name__)
def test_liquidator_command_through_client_door_is_not_permitted(ex, command):
    before = snapshot(ex.engine)
    assert ex.engine.apply(ClientDoor(command)) == [OrderRejected(command.request_id, ALICE, Reason.NOT_PERMITTED)]
    assert snapshot(ex.engine) == before


@pytest.mark.parametrize("command", [
    CreditCompensation("c1", 0, ALICE, "BTC-USDT-PERP", 10**9, 1, 10**9, "demo-treasury", "pay myself"),
    SetMaintenanceMargin("m1", 0, ALICE, "BTC-USDT-PERP", 1, "demo-risk", "lower it for me"),
], ids=lambda c: type(c).__name__)
def test_a_compensation_or_a_margin_change_through_the_client_door_is_not_permitted(ex, command):
    before = snapshot(ex.engine)
    assert ex.engine.apply(ClientDoor(command)) == [OrderRejected(command.request_id, ALICE, Reason.NOT_PERMITTED)]
    assert snapshot(ex.engine) == before


def test_reused_request_id_with_same_body_replays_and_other_body_is_refused(ex):
    first = ex.apply(Deposit("d-1", 5, ALICE, "USDT", 100))
    assert ex.apply(Deposit("d-1", 99, ALICE, "USDT", 100)) == first       # the stamp is not the body
    before = snapshot(ex.engine)
    for other in (Deposit("d-1", 0, ALICE, "USDT", 999), Withdraw("d-1", 0, ALICE, "USDT", 100)):
        assert ex.apply(other) == [OrderRejected("d-1", ALICE, Reason.REQUEST_ID_REUSED)]
    order = ex.place_cmd(BOB, SELL, usdt("70000"), btc("0.1"))
    placed = ex.apply(order)
    changed = order._replace(price=usdt("65000"), quantity=btc("0.5"))
    assert ex.apply(changed) == [OrderRejected(order.request_id, BOB, Reason.REQUEST_ID_REUSED)]
    assert ex.apply(order) == placed
    assert snapshot(ex.engine) != before          # the order rested; nothing else changed
    assert len(ex.engine.shard.orders) == 1


def test_request_ids_of_different_types_never_alias(ex):
    one = ex.apply(Deposit(1, 0, ALICE, "USDT", 10))
    text = ex.apply(Deposit("1", 0, ALICE, "USDT", 10))
    assert [type(e).__name__ for e in one + text] == ["BalanceChanged", "BalanceChanged"]
    assert ex.apply(Deposit(True, 0, ALICE, "USDT", 10))[0].reason == Reason.INVALID_REQUEST_ID


def test_limit_order_with_price_zero_is_non_positive_price(ex):
    assert_rejected(ex, ex.place_cmd(ALICE, BUY, 0, Q), Reason.NON_POSITIVE_PRICE)


def test_shard_refuses_an_account_routed_to_another_shard():
    shard = AccountShard(CONFIG, 0, 2)
    other = next(a for a in range(1, 100) if shard_for(a, 2) == 1)
    mine = next(a for a in range(1, 100) if shard_for(a, 2) == 0)
    assert shard.admit(OpenAccount("o", 0, other)) == [OrderRejected("o", other, Reason.WRONG_SHARD)]
    assert type(shard.admit(OpenAccount("o", 0, mine))) is Admitted


def test_scoped_sender_may_act_only_for_its_accounts():
    shard = AccountShard(CONFIG)
    scope = frozenset({ALICE})
    assert shard.admit(Deposit("s", 0, BOB, "BTC", 1), Role.CLIENT, scope) == \
        [OrderRejected("s", BOB, Reason.ACCOUNT_NOT_IN_SCOPE)]
    assert type(shard.admit(Deposit("s", 0, ALICE, "BTC", 1), Role.CLIENT, scope)) is Admitted


def test_liquidator_door_refuses_client_commands():
    shard = AccountShard(CONFIG)
    assert shard.admit(Deposit("x", 0, ALICE, "BTC", 1), Role.LIQUIDATOR)[0].reason == Reason.NOT_PERMITTED
    assert type(shard.admit(CancelOrder("x", 0, ALICE, BTC_USDT, 5), Role.LIQUIDATOR)) is Admitted


def test_enum_fields_are_admitted_as_plain_ints(ex):
    from exchange.matching.orders import OrderType, Side, TimeInForce
    command = ex.place_cmd(ALICE, Side.SELL, P, Q)._replace(order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    admitted = ex.engine.shard.admit(command)
    assert all(type(v) in (int, str) for v in admitted.command)
    assert dataclasses.is_dataclass(admitted) is False and admitted.command.side == 2
