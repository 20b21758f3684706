"""Messages to plain data and back: the journal's and snapshots' vocabulary.

``encode(message)`` gives ``[type_code, field, ...]`` made only of ints, strs,
bools, lists and None (JSON-able; the actor layer turns it into bytes with
orjson). ``decode`` rebuilds the NamedTuple. Type codes are stable and never
reused. A request id that was a tuple comes back as a tuple (JSON has only
lists), so it stays hashable and equal to the original.
"""
from __future__ import annotations

from exchange.messages import records as m

TYPE_CODES: dict[type, int] = {
    m.OpenAccount: 1, m.Deposit: 2, m.Withdraw: 3, m.PlaceOrder: 4, m.CancelOrder: 5, m.AmendOrder: 6,
    m.SubmitOrder: 20, m.CancelRequest: 21, m.AmendRequest: 22,
    m.AccountOpened: 40, m.BalanceChanged: 41, m.OrderAccepted: 42, m.OrderRejected: 43, m.Fill: 44,
    m.OrderBooked: 45, m.OrderClosed: 46, m.OrderAmended: 47, m.RequestRejected: 48,
    # margin and lending (issue 6)
    m.EnableMargin: 60, m.TransferMargin: 61, m.Borrow: 62, m.Repay: 63, m.PlaceMarginOrder: 64,
    m.SupplyToPool: 65, m.WithdrawFromPool: 66, m.StartLiquidation: 67, m.LiquidationStep: 68,
    m.CoverShortfall: 69, m.FinishLiquidation: 70,
    m.PoolRequest: 80,
    m.Borrowed: 90, m.Repaid: 91, m.Supplied: 92, m.SupplyWithdrawn: 93, m.LendingRefused: 94,
    m.InterestAccrued: 95, m.MarginTransferred: 96, m.MarginEnabled: 97, m.MarginLevelChanged: 98,
    m.LiquidationUpdate: 99, m.WriteOffDebt: 71, m.DebtWrittenOff: 100,
}
TYPES_BY_CODE = {code: kind for kind, code in TYPE_CODES.items()}


class CodecError(ValueError):
    """Data that does not decode to a known message."""


def plain(value):
    """Ints stay ints (IntEnums become ints), tuples become lists."""
    kind = type(value)
    if kind is int or kind is str or value is None or kind is bool:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    raise CodecError(f"cannot encode {kind.__name__}")


def hashable(value):
    """Lists back to tuples (request ids, keys)."""
    if type(value) is list:
        return tuple(hashable(v) for v in value)
    return value


def encode(message) -> list:
    code = TYPE_CODES.get(type(message))
    if code is None:
        raise CodecError(f"not a message: {type(message).__name__}")
    return [code, *(plain(v) for v in message)]


def decode(data: list):
    try:
        kind = TYPES_BY_CODE[data[0]]
        fields = [hashable(v) for v in data[1:]]
        return kind(*fields)
    except (KeyError, IndexError, TypeError) as exc:
        raise CodecError(f"cannot decode {data!r:.200}") from exc


def encode_shallow(message) -> list:
    """``[type_code, *fields]`` without converting the fields: for a JSON
    writer's ``default`` hook (orjson then writes ints, strs, tuples and enums
    natively, about 8 times faster than ``encode``; the bytes are the same)."""
    code = TYPE_CODES.get(type(message))
    if code is None:
        raise TypeError(f"not a message: {type(message).__name__}")
    return [code, *message]


def decode_events(data: list) -> list:
    return [decode(d) for d in data]
