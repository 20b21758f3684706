"""What every gateway handler shares (issue 18): the Binance error a request is refused
with (``Refused``), JSON answers, and reading a request's parameters.

A request's parameters come from its query string and, for POST, PUT and DELETE, its
form-encoded body (Binance's rule); a name given twice is refused (-1101). ``required``
and ``integer`` read one parameter or refuse with Binance's code for it.

A **section** of the API (``gateway/sections.py`` lists them) is a module with
``ENDPOINTS`` (its rows of the OpenAPI table, ``gateway/openapi.py``), ``WEIGHTS`` (its
routes' request weights, by route name) and ``routes(gateway)``: its aiohttp routes,
whose handlers use the gateway's ``signed``, ``params`` and ``market``.
"""
from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from aiohttp import web

BODY_METHODS = ("POST", "PUT", "DELETE")


class Refused(Exception):
    """A request answered with a Binance error body."""

    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.body = status, {"code": code, "msg": msg}


def json_response(body, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def params(request: web.Request) -> tuple[dict[str, str], str, str]:
    """The request's parameters, its query string exactly as sent (what a signature covers:
    aiohttp's ``query_string`` is already percent-decoded) and its body."""
    query = request.raw_path.partition("?")[2]
    body = await request.text() if request.method in BODY_METHODS and request.can_read_body else ""
    out: dict[str, str] = {}
    for part in (query, body):
        try:
            pairs = parse_qsl(part, keep_blank_values=True, strict_parsing=bool(part))
        except ValueError:
            raise Refused(400, -1100, "Illegal characters found in the parameters.") from None
        for name, value in pairs:
            if name in out:
                raise Refused(400, -1101, f"Duplicate values for parameter '{name}'.")
            out[name] = value
    return out, query, body


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise Refused(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def integer(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 18:
        raise Refused(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,18}}$'.")
    return int(value)
