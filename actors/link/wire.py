"""The wire format between our own actors and clients: JSON batches as bytes.

Batches cross actor boundaries as one ``bytes`` object that Ray passes through
untouched (cheaper than letting Ray cloudpickle every message NamedTuple).
The bytes are orjson, with every message written as ``[type_code, *fields]``
(``exchange.messages.codec.encode_shallow``, the journal's vocabulary), never pickle:
decoding a batch can only build known messages from plain values, so bytes
from a caller cannot run code here. Each payload shape has its typed decoder:

- ``unpack_commands``: a list of commands (a client's or the liquidator's batch);
- ``unpack_results``: a list of per-command event lists (the answer to it);
- ``unpack_batch``: a market batch ``[[rseq, tag, request], ...]``;
- ``unpack_push``: a push ``[[entry_number, tag, [event, ...]], ...]``;
- ``unpack_submit_answer``: a market's answer to ``submit``: ``[last rseq
  applied, [best bid, best ask], push entries for the caller]``;
- ``unpack_plain``: plain JSON values (reads such as margin books).

Tags are ``(account, request_id)`` tuples or None. Anything that is not valid
raises ``WireError`` (bad JSON, wrong shape, unknown type code, wrong arity),
except one bad command inside a command batch, which becomes ``None`` so the
shard answers it with a ``MALFORMED_COMMAND`` rejection and runs the rest.
"""
from __future__ import annotations

import orjson

from exchange.messages.codec import TYPES_BY_CODE, encode_shallow, hashable


class WireError(ValueError):
    """Bytes that are not a valid payload of the expected shape."""


def pack(obj) -> bytes:
    return orjson.dumps(obj, default=encode_shallow)


def _load(data):
    if type(data) is not bytes:
        raise WireError(f"a payload is bytes, not {type(data).__name__}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not a wire payload: {exc}") from None


def _list(value, what: str) -> list:
    if type(value) is not list:
        raise WireError(f"{what} must be a list")
    return value


_MAKERS = {code: (kind, len(kind._fields) + 1) for code, kind in TYPES_BY_CODE.items()}


def message(data, _new=tuple.__new__):
    """One ``[type_code, *fields]`` to its message; raise ``WireError`` if it is not one.
    (Built with ``tuple.__new__`` once the arity is checked: ``_make`` without its frame.)"""
    if type(data) is list and data and type(data[0]) is int:
        maker = _MAKERS.get(data[0])
        if maker is not None and len(data) == maker[1]:
            fields = data[1:]
            if list in map(type, fields):      # JSON has no tuples: ids and price vectors come back as tuples
                fields = [hashable(v) for v in fields]
            return _new(maker[0], fields)
    raise WireError(_not_a_message(data))


def _not_a_message(data) -> str:
    if type(data) is not list or not data or type(data[0]) is not int:
        return "a message is [type_code, field, ...]"
    kind = TYPES_BY_CODE.get(data[0])
    if kind is None:
        return f"unknown message type code {data[0]}"
    return f"{kind.__name__} has {len(kind._fields)} fields, got {len(data) - 1}"


def _tag(value):
    if value is None:
        return None
    if type(value) is not list or len(value) != 2:
        raise WireError("a tag is [account, request_id] or null")
    return hashable(value)


def _number(value, what: str) -> int:
    if type(value) is not int:
        raise WireError(f"{what} must be an integer")
    return value


def unpack_commands(data) -> list:
    """A list of commands; a list given directly (an in-process call) is returned as is."""
    if type(data) is list:
        return data
    commands = []
    for item in _list(_load(data), "a command batch"):
        try:
            commands.append(message(item))
        except WireError:
            commands.append(None)          # answered MALFORMED_COMMAND by the shard, like any non-command
    return commands


def unpack_results(data) -> list[list]:
    """A list of per-command event lists."""
    return [[message(e) for e in _list(events, "a command's events")] for events in _list(_load(data), "results")]


def unpack_batch(data) -> list[tuple]:
    """A market batch: ``[(rseq, tag, request), ...]``."""
    out = []
    for entry in _list(_load(data), "a market batch"):
        if type(entry) is not list or len(entry) != 3:
            raise WireError("a batch entry is [rseq, tag, request]")
        out.append((_number(entry[0], "rseq"), _tag(entry[1]), message(entry[2])))
    return out


def unpack_push(data) -> list[tuple]:
    """A push: ``[(entry_number, tag, [event, ...]), ...]``."""
    return _push_entries(_load(data))


def unpack_submit_answer(data) -> tuple[int, tuple, list[tuple]]:
    """A market's answer to ``submit``: (last rseq applied, (best bid, best ask), push entries)."""
    answer = _load(data)
    if type(answer) is not list or len(answer) != 3 or type(answer[1]) is not list or len(answer[1]) != 2:
        raise WireError("a submit answer is [rseq, [bid, ask], entries]")
    bid, ask = answer[1]
    for price in (bid, ask):
        if price is not None and type(price) is not int:
            raise WireError("a best price is an int or null")
    return _number(answer[0], "rseq"), (bid, ask), _push_entries(answer[2])


def _push_entries(data) -> list[tuple]:
    out = []
    for entry in _list(data, "a push"):
        if type(entry) is not list or len(entry) != 3:
            raise WireError("a push entry is [entry_number, tag, events]")
        out.append((_number(entry[0], "entry number"), _tag(entry[1]),
                    [message(e) for e in _list(entry[2], "a push entry's events")]))
    return out


def unpack_plain(data):
    """Plain JSON values (margin-book reads and their answers)."""
    return _load(data)
