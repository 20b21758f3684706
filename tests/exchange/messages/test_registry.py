"""exchange.messages.records' registry: every message type declared once with a
stable code and a kind, and everything derived from it (codec, validation,
pickling) agreeing with it."""
from __future__ import annotations

import json
import pickle

import pytest

from exchange.messages import codec, records, validation
from exchange.messages.records import COMMAND, EVENT, MESSAGES, REQUEST, LiquidationStage, message

# The codes as journals hold them: a change here means old journals decode wrongly.
JOURNALED_CODES = {
    "OpenAccount": 1, "Deposit": 2, "Withdraw": 3, "PlaceOrder": 4, "CancelOrder": 5, "AmendOrder": 6,
    "SubmitOrder": 20, "CancelRequest": 21, "AmendRequest": 22,
    "AccountOpened": 40, "BalanceChanged": 41, "OrderAccepted": 42, "OrderRejected": 43, "Fill": 44,
    "OrderBooked": 45, "OrderClosed": 46, "OrderAmended": 47, "RequestRejected": 48,
    "EnableMargin": 60, "TransferMargin": 61, "Borrow": 62, "Repay": 63, "PlaceMarginOrder": 64,
    "SupplyToPool": 65, "WithdrawFromPool": 66, "StartLiquidation": 67, "LiquidationStep": 68,
    "CoverShortfall": 69, "FinishLiquidation": 70, "WriteOffDebt": 71,
    "PoolRequest": 80,
    "Borrowed": 90, "Repaid": 91, "Supplied": 92, "SupplyWithdrawn": 93, "LendingRefused": 94,
    "InterestAccrued": 95, "MarginTransferred": 96, "MarginEnabled": 97, "MarginLevelChanged": 98,
    "LiquidationUpdate": 99, "DebtWrittenOff": 100,
    "TransferPerp": 110, "SetPerpLeverage": 111, "SetRiskLimit": 112, "SetMarginMode": 113, "PlacePerpOrder": 114,
    "CancelPerpOrder": 115, "PerpTransferred": 130, "PerpSettingsChanged": 131, "PositionChanged": 132,
    "FundingDue": 133, "FundingPaid": 134, "TakeOverPerp": 116, "LiquidationOrderPerp": 117, "DeleveragePerp": 118,
    "AbsorbDeleverage": 119, "FinishPerpLiquidation": 120, "PerpLiquidationUpdate": 135, "MarkUpdated": 136,
    "PerpMarginZoneChanged": 137, "SweepPerpFees": 121, "PerpFeesSwept": 138,
    "FreezeAccount": 122, "LockAccount": 123, "RestrictAccount": 124, "FreezeAsset": 125, "SetRiskRule": 126,
    "SetMarketMode": 127, "RiskAction": 139, "OperatorActed": 140, "RequestWithdrawal": 141,
    "ReviewWithdrawal": 142, "SettleWithdrawal": 143, "CredentialChanged": 144, "WithdrawalUpdated": 145,
    "BlockAddress": 146, "GrantHedgeExemption": 147, "SetMaintenanceMargin": 148, "CreditCompensation": 149,
    "CompensationCredited": 150, "OtcCross": 151, "OtcCrossed": 152,
}
CLIENT_COMMANDS = {"OpenAccount", "Deposit", "Withdraw", "PlaceOrder", "CancelOrder", "AmendOrder", "EnableMargin",
                   "TransferMargin", "Borrow", "Repay", "PlaceMarginOrder", "SupplyToPool", "WithdrawFromPool",
                   "StartLiquidation", "LiquidationStep", "CoverShortfall", "FinishLiquidation", "WriteOffDebt",
                   "TransferPerp", "SetPerpLeverage", "SetRiskLimit", "SetMarginMode", "PlacePerpOrder",
                   "CancelPerpOrder", "TakeOverPerp", "LiquidationOrderPerp", "DeleveragePerp", "AbsorbDeleverage",
                   "FinishPerpLiquidation", "SweepPerpFees", "FreezeAccount", "LockAccount", "RestrictAccount",
                   "FreezeAsset", "SetRiskRule", "SetMarketMode", "RequestWithdrawal", "ReviewWithdrawal",
                   "SettleWithdrawal", "CredentialChanged", "BlockAddress", "GrantHedgeExemption",
                   "SetMaintenanceMargin", "CreditCompensation", "OtcCross"}
REQUESTS = {"SubmitOrder", "CancelRequest", "AmendRequest", "PoolRequest"}


def declared_named_tuples() -> list[type]:
    return [v for v in vars(records).values()
            if isinstance(v, type) and issubclass(v, tuple) and hasattr(v, "_fields")
            and v.__module__ == records.__name__]


def sample(kind: type, salt: int = 0):
    """One instance of ``kind`` with a distinct, JSON-able value in every field (by annotation)."""
    values = []
    for i, name in enumerate(kind._fields):
        annotation = kind.__annotations__[name]
        annotation = getattr(annotation, "__forward_arg__", annotation)       # NamedTuple wraps them in ForwardRef
        n = 1000 * (salt + 1) + i
        if annotation == "int | str":
            values.append(("r", n) if salt else f"r-{n}")     # a tuple id must come back as a tuple
        elif annotation == "int":
            values.append(n)
        elif annotation == "str":
            values.append(f"s{n}")
        elif annotation == "bool":
            values.append(bool(i % 2))
        elif annotation == "tuple":
            values.append((n, n + 1))
        else:
            raise AssertionError(f"{kind.__name__}.{name}: no sample for {annotation}")
    return kind(*values)


ALL_TYPES = list(MESSAGES)


def test_registry_with_every_declared_named_tuple_registers_each_exactly_once():
    declared = declared_named_tuples()
    assert len(declared) == len(set(declared)) == len(MESSAGES)
    assert set(declared) == set(MESSAGES)


def test_registry_codes_are_unique_and_the_journaled_ones():
    codes = [code for code, _ in MESSAGES.values()]
    assert len(codes) == len(set(codes))
    assert {kind.__name__: code for kind, (code, _) in MESSAGES.items()} == JOURNALED_CODES


def test_registry_kinds_match_who_sends_each_type():
    kinds = {kind.__name__: k for kind, (_, k) in MESSAGES.items()}
    assert {n for n, k in kinds.items() if k is COMMAND} == CLIENT_COMMANDS
    assert {n for n, k in kinds.items() if k is REQUEST} == REQUESTS
    assert {n for n, k in kinds.items() if k is EVENT} == set(JOURNALED_CODES) - CLIENT_COMMANDS - REQUESTS


def test_derived_tables_with_the_registry_agree_with_it():
    assert codec.TYPE_CODES == {kind: code for kind, (code, _) in MESSAGES.items()}
    assert codec.TYPES_BY_CODE == {code: kind for kind, (code, _) in MESSAGES.items()}
    assert validation.CLIENT_COMMAND_TYPES == tuple(k for k, (_, kind) in MESSAGES.items() if kind is COMMAND)
    assert set(validation.SCHEMAS) == set(validation.CLIENT_COMMAND_TYPES)
    assert all(len(validation.SCHEMAS[k]) == len(k._fields) for k in validation.SCHEMAS)


@pytest.mark.parametrize("kind", ALL_TYPES, ids=lambda k: k.__name__)
@pytest.mark.parametrize("salt", [0, 1])
def test_codec_with_one_instance_of_every_type_round_trips_through_json(kind, salt):
    original = sample(kind, salt)
    data = json.loads(json.dumps(codec.encode(original)))
    decoded = codec.decode(data)
    assert type(decoded) is kind and decoded == original
    assert codec.encode_shallow(original) == [MESSAGES[kind][0], *original]


@pytest.mark.parametrize("kind", ALL_TYPES, ids=lambda k: k.__name__)
def test_pickle_with_every_type_uses_the_direct_reduce_and_round_trips(kind):
    original = sample(kind)
    assert original.__reduce__() == (kind, tuple(original))
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is kind and copy == original


def test_message_with_a_taken_code_or_a_second_registration_fails_at_once():
    with pytest.raises(ValueError):
        message(1, EVENT)(type("Clash", (tuple,), {"_fields": ()}))
    with pytest.raises(ValueError):
        message(CODE_FREE, EVENT)(records.Fill)
    with pytest.raises(ValueError):
        message(0, EVENT)
    with pytest.raises(TypeError):
        message(CODE_FREE, EVENT)(type("NotATuple", (), {}))
    assert CODE_FREE not in codec.TYPES_BY_CODE


CODE_FREE = 30_000


def test_liquidation_stage_with_a_journaled_value_keeps_its_number():
    assert {s.name: int(s) for s in LiquidationStage} == {
        "STARTED": 1, "REPAID": 2, "ORDER": 3, "IDLE": 4, "COVERED": 5, "WRITTEN_OFF": 6, "FINISHED": 7}
    update = records.LiquidationUpdate("liq:1:step:1", 5, 7, "", LiquidationStage.IDLE, 0)
    decoded = codec.decode(json.loads(json.dumps(codec.encode(update))))
    assert decoded == update and decoded.stage == LiquidationStage.IDLE


def test_every_command_through_the_door_has_request_id_then_ts_ns_first_which_stamped_replaces():
    from exchange.accounts.shard import stamped
    for kind in validation.CLIENT_COMMAND_TYPES:
        assert kind._fields[:2] == ("request_id", "ts_ns"), kind.__name__
        command = sample(kind)
        assert stamped(command, 12345) == command._replace(ts_ns=12345)
        assert type(stamped(command, 1)) is kind
