"""The shape of every client command: each field's kind, bound and reason.

``check_fields(command)`` runs before a command touches any state and returns
the ``Reason`` of the first field that is not what the journal, the replay
memory and the rest of the pipeline can hold, or None. So whatever passes it
can always be journaled (orjson: ints within signed 64 bits, valid UTF-8
strings), remembered and compared, and a hostile value is refused with a
specific reason before anything changes.

Field kinds (checked in field order, one reason per failed check):
- request id: an ``int`` in 1..2**63-1 or a ``str`` of 1..64 printable ASCII
  characters (``INVALID_REQUEST_ID``). Nothing else: no bools, floats, tuples
  or bytes, so two ids never compare equal across types (``1 == True == 1.0``
  cannot alias), and ``5`` and ``"5"`` are two different ids.
- ints (amounts, prices, quantities, ids, enums): an ``int`` (an ``IntEnum`` is
  taken as its value; ``bool`` is not an int here) within signed 64 bits
  (``FIELD_NOT_AN_INTEGER`` for another type, ``VALUE_OUT_OF_RANGE`` beyond).
  Signs and grids are the business checks' job (``NON_POSITIVE_AMOUNT``...).
- names (asset, market, fee tier, user level, leverage tier): a ``str``
  (``FIELD_NOT_A_STRING``) of at most 32 (``STRING_TOO_LONG``) printable ASCII
  characters (``NAME_NOT_PRINTABLE_ASCII``); whether it names something is
  checked later.
- client order id: ``""`` or 1..36 of ``[A-Za-z0-9._:/-]`` (Binance's rule;
  ``INVALID_CLIENT_ORDER_ID``).
- flags: exactly ``bool`` (``FIELD_NOT_A_FLAG``).
- text (an operator's reason, a rule's new value): a ``str`` of at most 256
  printable characters (any script: reasons are written in the operators' own
  language), ``FIELD_NOT_A_STRING`` / ``STRING_TOO_LONG`` / ``TEXT_NOT_PRINTABLE``.
- price vectors (the liquidator's): a tuple of one int per asset
  (``INVALID_PRICE_VECTOR``), each in 0..2**63-1 (``VALUE_OUT_OF_RANGE``).

A client command type is one registered with kind ``COMMAND`` in ``records``;
its schema is its fields' kinds (a field name missing from ``_S`` fails at
import). Anything that is not a client command type is ``UNKNOWN_COMMAND``;
``None`` (what the wire decoder leaves for an element that decodes to no
message) is ``MALFORMED_COMMAND``, the one case with no finer meaning.
"""
from __future__ import annotations

import re

from exchange.messages import records as m
from exchange.core.money import INT64_MAX, INT64_MIN
from exchange.core.reasons import Reason

REQUEST_ID_MAX_CHARS = 64
NAME_MAX_CHARS = 32
TEXT_MAX_CHARS = 256
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:/-]{1,36}\Z")

RID, INT, NAME, COID, FLAG, PRICES, TEXT = range(7)
_S = {"request_id": RID, "ts_ns": INT, "account_id": INT, "fee_tier": NAME, "asset": NAME, "amount": INT,
      "market": NAME, "trade_market": NAME, "side": INT, "order_type": INT, "price": INT, "quantity": INT,
      "tif": INT, "client_order_id": COID, "stp": INT, "order_id": INT, "user_level": NAME,
      "leverage_tier": NAME, "to_margin": FLAG, "isolated": FLAG, "auto_borrow": FLAG, "auto_repay": FLAG,
      "step": INT, "prices": PRICES, "to_perp": FLAG, "leverage": INT, "risk_tier": INT, "reduce_only": FLAG,
      "liquidation": INT, "swept": INT, "scope": INT, "operator": NAME, "reason": TEXT, "locked": FLAG,
      "level": INT, "until_ns": INT, "rule": NAME, "key": NAME, "value": TEXT, "mode": INT,
      "destination": TEXT, "withdrawal": INT, "approve": FLAG, "txid": TEXT, "blocked": FLAG, "stage": INT, "granted": FLAG,
      "maintenance_ppm": INT, "seq": INT, "through": INT, "rfq": NAME}
CLIENT_COMMAND_TYPES = m.types_of(m.COMMAND)     # declared in records (``@message(code, COMMAND)``)
SCHEMAS: dict[type, tuple[int, ...]] = {kind: tuple(_S[f] for f in kind._fields) for kind in CLIENT_COMMAND_TYPES}

def valid_request_id(value) -> bool:
    kind = type(value)
    if kind is int:
        return 0 < value <= INT64_MAX
    if kind is str:
        return 0 < len(value) <= REQUEST_ID_MAX_CHARS and value.isascii() and value.isprintable()
    return False


def _int_reason(value) -> Reason | None:
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        return Reason.FIELD_NOT_AN_INTEGER
    if not INT64_MIN <= value <= INT64_MAX:
        return Reason.VALUE_OUT_OF_RANGE
    return None


def _name_reason(value) -> Reason | None:
    if type(value) is not str:
        return Reason.FIELD_NOT_A_STRING
    if len(value) > NAME_MAX_CHARS:
        return Reason.STRING_TOO_LONG
    if value and not (value.isascii() and value.isprintable()):
        return Reason.NAME_NOT_PRINTABLE_ASCII
    return None


def _text_reason(value) -> Reason | None:
    if type(value) is not str:
        return Reason.FIELD_NOT_A_STRING
    if len(value) > TEXT_MAX_CHARS:
        return Reason.STRING_TOO_LONG
    if value and not value.isprintable():
        return Reason.TEXT_NOT_PRINTABLE
    return None


def _prices_reason(value, assets: int) -> Reason | None:
    if type(value) not in (tuple, list) or len(value) != assets:
        return Reason.INVALID_PRICE_VECTOR
    for price in value:
        if type(price) is not int:
            return Reason.INVALID_PRICE_VECTOR
        if not 0 <= price <= INT64_MAX:
            return Reason.VALUE_OUT_OF_RANGE
    return None


def check_fields(command, assets: int) -> Reason | None:
    """The reason the first malformed field of a client command is refused, or None.
    ``assets`` is how many assets a price vector must price."""
    return admit_fields(command, assets)[0]


def admit_fields(command, assets: int) -> tuple[Reason | None, object]:
    """``(reason, command)``: the first failed field check (or None) and the command
    with plain values (``plain_command``) when it passed.

    A well-formed command of plain values (the usual case) is recognised by one
    expression compiled from its schema (``_compile``) and comes back as it is;
    anything else takes the full pass in field order, which finds the first
    failed check."""
    well_formed = _WELL_FORMED.get(type(command))
    if well_formed is None:
        return (Reason.MALFORMED_COMMAND if command is None else Reason.UNKNOWN_COMMAND), command
    if well_formed(command, assets):
        return None, command
    return _slow(command, assets)


def _slow(command, assets: int) -> tuple[Reason | None, object]:
    reason = _first_reason(command, assets)
    return reason, (plain_command(command) if reason is None else command)


def rid_text_ok(value: str) -> bool:
    return 0 < len(value) <= REQUEST_ID_MAX_CHARS and value.isascii() and value.isprintable()


def coid_ok(value) -> bool:
    return type(value) is str and _CLIENT_ORDER_ID.match(value) is not None


def _prices_ok(value, assets: int) -> bool:
    return type(value) is tuple and _prices_reason(value, assets) is None


_PLAIN_TESTS = {    # per field kind: the test that a plain, well-formed value of field V passes
    INT: f"type(V) is int and {INT64_MIN} <= V <= {INT64_MAX}",
    NAME: f"type(V) is str and len(V) <= {NAME_MAX_CHARS} and V.isascii() and V.isprintable()",
    RID: f"(type(V) is int and 0 < V <= {INT64_MAX}) or (type(V) is str and rid_text_ok(V))",
    COID: "V == '' or coid_ok(V)",
    FLAG: "type(V) is bool",
    PRICES: "_prices_ok(V, assets)",
    TEXT: f"type(V) is str and len(V) <= {TEXT_MAX_CHARS} and V.isprintable()",
}


def _compile(kind: type) -> callable:
    """One function testing every field of a ``kind`` command at once: the schema's
    per-kind tests joined with ``and`` over the unpacked fields (about three times
    faster than a loop over the fields; it runs on every command)."""
    fields = [f"f{i}" for i in range(len(SCHEMAS[kind]))]
    tests = [f"({_PLAIN_TESTS[k].replace('V', name)})" for k, name in zip(SCHEMAS[kind], fields)]
    source = (f"def well_formed(command, assets):\n    {', '.join(fields)}, = command\n"
              f"    return {' and '.join(tests)}\n")
    scope = {"rid_text_ok": rid_text_ok, "coid_ok": coid_ok, "_prices_ok": _prices_ok}
    exec(compile(source, f"<well_formed {kind.__name__}>", "exec"), scope)
    return scope["well_formed"]


_WELL_FORMED = {kind: _compile(kind) for kind in SCHEMAS}


def _first_reason(command, assets: int) -> Reason | None:
    for kind, value in zip(SCHEMAS[type(command)], command):
        reason = _reason(kind, value, assets)
        if reason is not None:
            return reason
    return None


def _reason(kind: int, value, assets: int) -> Reason | None:
    if kind == INT:
        return _int_reason(value)
    if kind == NAME:
        return _name_reason(value)
    if kind == RID:
        return None if valid_request_id(value) else Reason.INVALID_REQUEST_ID
    if kind == COID:
        return None if value == "" or (type(value) is str and _CLIENT_ORDER_ID.match(value)) \
            else Reason.INVALID_CLIENT_ORDER_ID
    if kind == FLAG:
        return None if type(value) is bool else Reason.FIELD_NOT_A_FLAG
    if kind == TEXT:
        return _text_reason(value)
    return _prices_reason(value, assets)


def plain_command(command):
    """The command with every ``IntEnum`` field as a plain int (and a price vector
    as a tuple), so state, digests and the journal only ever see plain values.
    Call after ``check_fields`` passed."""
    for value in command:
        kind = type(value)
        if kind is not int and kind is not str and kind is not bool and kind is not tuple:
            break
    else:
        return command
    return type(command)(*(int(v) if isinstance(v, int) and type(v) is not bool else
                           tuple(v) if type(v) is list else v for v in command))


def _journal_safe(value):
    kind = type(value)
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else 0
    if kind is str:
        return value if value.isascii() else ""
    if kind is tuple:
        return tuple(_journal_safe(v) for v in value)
    return value


def journal_safe(request):
    """A peer's request (shard -> market or pool) with every value the journal cannot
    hold replaced: ints beyond signed 64 bits by 0, non-ASCII strings by "". A
    market or pool that gets such a request answers the safe one (an order 0 is
    never found) instead of failing to journal it and having it sent again forever.
    Requests built from admitted commands never need it (issue 11, item 5)."""
    return type(request)(*(_journal_safe(v) for v in request))
