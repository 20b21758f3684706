"""Messages to plain data and back: the journal's and snapshots' vocabulary.

``encode(message)`` gives ``[type_code, field, ...]`` made only of ints, strs,
bools, lists and None (JSON-able; the actor layer turns it into bytes with
orjson). ``decode`` rebuilds the NamedTuple. Type codes are stable and never
reused; each is declared beside its type in ``records`` (``@message``) and
``TYPE_CODES``/``TYPES_BY_CODE`` are derived from that registry. A request id
that was a tuple comes back as a tuple (JSON has only lists), so it stays
hashable and equal to the original.
"""
from __future__ import annotations

from exchange.messages import records as m

TYPE_CODES: dict[type, int] = {kind: code for kind, (code, _) in m.MESSAGES.items()}   # declared in records
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
        if list in map(type, value):
            return tuple(hashable(v) for v in value)
        return tuple(value)           # the usual case, a flat [account, request_id] tag: no generator
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
