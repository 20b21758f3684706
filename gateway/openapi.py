"""The gateway's OpenAPI 3.1 document (issue 18), served at ``GET /api/v3/openapi.json``.

Built from one table, ``ENDPOINTS``: each endpoint's method, path, security type
(Binance's NONE, TRADE, USER_DATA), weight and parameters. A test checks that every
route the server has is in it and that it names nothing the server lacks, so the two
cannot drift apart.
"""
from __future__ import annotations

from gateway.limits import WEIGHTS
from gateway.sections import SECTIONS

DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
INTEGER = {"type": "integer", "minimum": 0}
SYMBOL = ("symbol", {"type": "string", "example": "BTCUSDT"})
SIGNED = [("timestamp", INTEGER), ("recvWindow", {"type": "integer", "maximum": 60_000}),
          ("signature", {"type": "string"})]

# (method, path, security, weight, summary, [(parameter, schema, required)])
ENDPOINTS = [
    ("get", "/api/v3/ping", "NONE", WEIGHTS["ping"], "Test connectivity", []),
    ("get", "/api/v3/time", "NONE", WEIGHTS["time"], "The server's clock (ms)", []),
    ("get", "/api/v3/exchangeInfo", "NONE", WEIGHTS["exchangeInfo"], "Markets and their filters", []),
    ("get", "/api/v3/depth", "NONE", "5-250 by limit", "The order book's levels",
     [(*SYMBOL, True), ("limit", {"type": "integer", "enum": [5, 10, 20, 50, 100, 500, 1000, 5000]}, False)]),
    ("get", "/api/v3/trades", "NONE", WEIGHTS["trades"], "Recent trades",
     [(*SYMBOL, True), ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False)]),
    ("get", "/api/v3/ticker/price", "NONE", "2, or 4 for all", "Last price", [(*SYMBOL, False)]),
    ("get", "/api/v3/ticker/bookTicker", "NONE", "2, or 4 for all", "Best bid and ask", [(*SYMBOL, False)]),
    ("get", "/api/v3/ticker/24hr", "NONE", "2, or 80 for all", "The rolling 24-hour statistics",
     [(*SYMBOL, False)]),
    ("post", "/api/v3/order", "TRADE", WEIGHTS["order"], "Place an order", [
        (*SYMBOL, True), ("side", {"type": "string", "enum": ["BUY", "SELL"]}, True),
        ("type", {"type": "string", "enum": ["LIMIT", "MARKET", "LIMIT_MAKER"]}, True),
        ("timeInForce", {"type": "string", "enum": ["GTC", "IOC", "FOK"]}, False),
        ("quantity", DECIMAL, True), ("price", DECIMAL, False),
        ("newClientOrderId", {"type": "string", "maxLength": 36}, False)]),
    ("post", "/api/v3/order/test", "TRADE", WEIGHTS["order.test"], "Check an order without placing it",
     [(*SYMBOL, True), ("side", {"type": "string"}, True), ("type", {"type": "string"}, True),
      ("quantity", DECIMAL, True), ("price", DECIMAL, False)]),
    ("delete", "/api/v3/order", "TRADE", WEIGHTS["cancel"], "Cancel an order",
     [(*SYMBOL, True), ("orderId", INTEGER, False), ("origClientOrderId", {"type": "string"}, False)]),
    ("get", "/api/v3/order", "USER_DATA", WEIGHTS["query"], "An order, open or closed", [(*SYMBOL, True), ("orderId", INTEGER, True)]),
    ("get", "/api/v3/openOrders", "USER_DATA", "6, or 80 for all", "The account's resting orders", [(*SYMBOL, False)]),
    ("get", "/api/v3/allOrders", "USER_DATA", WEIGHTS["allOrders"], "The account's orders, open and closed",
     [(*SYMBOL, True), ("orderId", INTEGER, False), ("startTime", INTEGER, False), ("endTime", INTEGER, False),
      ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False)]),
    ("get", "/api/v3/myTrades", "USER_DATA", WEIGHTS["myTrades"], "The account's trades",
     [(*SYMBOL, True), ("orderId", INTEGER, False), ("fromId", INTEGER, False), ("startTime", INTEGER, False),
      ("endTime", INTEGER, False), ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False)]),
    ("get", "/api/v3/account", "USER_DATA", WEIGHTS["account"], "Free and locked balances", []),
]
STREAMS = ("/ws/{streams}", "/stream")


def document() -> dict:
    """The OpenAPI document of every endpoint in ``ENDPOINTS``, with the signing scheme and
    the error shape; the WebSocket streams are described in ``info.description``."""
    paths: dict = {}
    for method, path, security, weight, summary, params in ENDPOINTS + [row for s in SECTIONS for row in s.ENDPOINTS]:
        keyed, signed = security != "NONE", security not in ("NONE", "USER_STREAM")    # USER_STREAM: the key only
        parameters = [{"name": name, "in": "query", "required": required, "schema": schema}
                      for name, schema, required in params]
        parameters += [{"name": name, "in": "query", "required": name != "recvWindow", "schema": schema}
                       for name, schema in (SIGNED if signed else [])]
        paths.setdefault(path, {})[method] = {
            "summary": summary, "x-security-type": security, "x-weight": weight, "parameters": parameters,
            **({"security": [{"apiKey": []}]} if keyed else {}),
            "responses": {"200": {"description": "Binance's answer for this endpoint"},
                          "4XX": {"description": "A refusal", "content": {"application/json": {
                              "schema": {"$ref": "#/components/schemas/Error"}}}}}}
    return {"openapi": "3.1.0",
            "info": {"title": "exchange-core gateway", "version": "1",
                     "description": "Binance Spot REST API v3 shapes and signing (docs/API.md). SIGNED endpoints "
                                    "take timestamp, recvWindow and an HMAC-SHA256 (hex) or Ed25519 (base64) "
                                    "signature of the query then the body. WebSocket: " + ", ".join(STREAMS) +
                                    " with <symbol>@trade, @depth, @depth@100ms, @bookTicker, "
                                    "<perpetual>@markPrice(@1s); "
                                    "/ws/<listenKey>: the user-data stream."},
            "paths": paths,
            "components": {"securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-MBX-APIKEY"}},
                           "schemas": {"Error": {"type": "object", "required": ["code", "msg"],
                                                 "properties": {"code": {"type": "integer"},
                                                                "msg": {"type": "string"}}}}}}
