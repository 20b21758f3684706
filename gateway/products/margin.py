"""Margin endpoints in the shapes of Binance's ``/sapi/v1/margin/...`` (issue 18): borrow,
repay, transfers between the spot account and a margin book, the margin books, and
orders funded from them. The rules (borrow limits, the initial line, interest) are the
margin desk's (``exchange/margin``); this module reads parameters and shapes answers.

- The **cross** book is the account's margin book (``market=""``); an **isolated** book
  is a market's (``isIsolated=TRUE`` with its ``symbol``).
- ``tranId`` is the request id the command was sent with.
- ``marginLevel`` is assets / liabilities at the index ("999" without liabilities, as
  Binance shows it); ``borrowed`` is the principal, ``interest`` what is owed beyond it,
  ``locked`` what orders hold plus repayments on their way to the pool.
- Margin must be enabled for the account first (``EnableMargin``: the operator's or the
  client handle's ``enable_margin``); until then, -3003.
"""
from __future__ import annotations

from aiohttp import web

from actors.client.results import order_result
from exchange.core.money import format_decimal
from exchange.messages.records import Borrow, Borrowed, PlaceMarginOrder, Repay, TransferMargin
from gateway import binance
from gateway.auth import Permission
from gateway.http import Refused, json_response, required
from gateway.products.common import asset, command, decimal, flag, order_terms, refused

DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
TEXT = {"type": "string"}
BOOLEAN = {"type": "string", "enum": ["TRUE", "FALSE"]}
SIDE_EFFECTS = {"NO_SIDE_EFFECT": (False, False), "MARGIN_BUY": (True, False), "AUTO_REPAY": (False, True),
                "AUTO_BORROW_REPAY": (True, True)}               # -> (auto_borrow, auto_repay)
BOOK = [("isIsolated", BOOLEAN, False), ("symbol", TEXT, False)]
LEVEL_WITHOUT_DEBT = "999"

ENDPOINTS = [
    ("post", "/sapi/v1/margin/loan", "TRADE", 10, "Borrow into a margin book",
     [("asset", TEXT, True), ("amount", DECIMAL, True), *BOOK]),
    ("post", "/sapi/v1/margin/repay", "TRADE", 10, "Repay a margin loan (interest first)",
     [("asset", TEXT, True), ("amount", DECIMAL, True), *BOOK]),
    ("post", "/sapi/v1/margin/transfer", "TRADE", 10, "Move funds spot <-> cross margin (type 1: in, 2: out)",
     [("asset", TEXT, True), ("amount", DECIMAL, True), ("type", {"type": "integer", "enum": [1, 2]}, True)]),
    ("post", "/sapi/v1/margin/isolated/transfer", "TRADE", 10, "Move funds spot <-> an isolated margin book",
     [("asset", TEXT, True), ("symbol", TEXT, True), ("amount", DECIMAL, True),
      ("transFrom", {"type": "string", "enum": ["SPOT", "ISOLATED_MARGIN"]}, True),
      ("transTo", {"type": "string", "enum": ["SPOT", "ISOLATED_MARGIN"]}, True)]),
    ("get", "/sapi/v1/margin/account", "USER_DATA", 10, "The cross margin book", []),
    ("get", "/sapi/v1/margin/isolated/account", "USER_DATA", 10, "Isolated margin books",
     [("symbols", {"type": "string", "example": "BTCUSDT,ETHUSDT"}, True)]),
    ("post", "/sapi/v1/margin/order", "TRADE", 6, "Place an order funded from a margin book", [
        ("symbol", TEXT, True), ("isIsolated", BOOLEAN, False),
        ("side", {"type": "string", "enum": ["BUY", "SELL"]}, True),
        ("type", {"type": "string", "enum": ["LIMIT", "MARKET", "LIMIT_MAKER"]}, True),
        ("timeInForce", {"type": "string", "enum": ["GTC", "IOC", "FOK"]}, False), ("quantity", DECIMAL, True),
        ("price", DECIMAL, False), ("newClientOrderId", {"type": "string", "maxLength": 36}, False),
        ("sideEffectType", {"type": "string", "enum": list(SIDE_EFFECTS)}, False)]),
]
WEIGHTS = {"margin.loan": 10, "margin.repay": 10, "margin.transfer": 10, "margin.isolatedTransfer": 10,
           "margin.account": 10, "margin.isolatedAccount": 10, "margin.order": 6}


def routes(gateway) -> list:
    margin = Margin(gateway)
    return [web.post("/sapi/v1/margin/loan", margin.borrow, name="margin.loan"),
            web.post("/sapi/v1/margin/repay", margin.repay, name="margin.repay"),
            web.post("/sapi/v1/margin/transfer", margin.transfer, name="margin.transfer"),
            web.post("/sapi/v1/margin/isolated/transfer", margin.isolated_transfer, name="margin.isolatedTransfer"),
            web.get("/sapi/v1/margin/account", margin.account, name="margin.account"),
            web.get("/sapi/v1/margin/isolated/account", margin.isolated_account, name="margin.isolatedAccount"),
            web.post("/sapi/v1/margin/order", margin.order, name="margin.order")]


class Margin:
    def __init__(self, gateway):
        self.gateway = gateway
        self.config = gateway.client.config

    def _asset(self, params):
        return asset(self.config, params, "asset", -3027, "Not a valid margin asset.")

    def _book(self, params) -> str:
        """The margin book a request names: "" (cross) or an isolated market."""
        if not flag(params, "isIsolated"):
            return ""
        return self.gateway.market(params)[1].name

    async def borrow(self, request: web.Request) -> web.Response:
        return await self._loan(request, Borrow)

    async def repay(self, request: web.Request) -> web.Response:
        return await self._loan(request, Repay)

    async def _loan(self, request: web.Request, kind) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        spec = self._asset(params)
        amount, book = decimal(params, "amount", spec.scale), self._book(params)
        cmd = kind(self.gateway.client.next_request_id(), 0, key.account_id, spec.name, amount, book)
        await command(self.gateway, cmd)
        return json_response({"tranId": cmd.request_id, "clientTag": ""})

    async def transfer(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        spec = self._asset(params)
        amount = decimal(params, "amount", spec.scale)
        direction = required(params, "type")
        if direction not in ("1", "2"):
            raise Refused(400, -1130, "Data sent for parameter 'type' is not valid.")
        return await self._transfer(key.account_id, spec.name, amount, direction == "1", "")

    async def isolated_transfer(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        spec = self._asset(params)
        _, market = self.gateway.market(params)
        amount = decimal(params, "amount", spec.scale)
        route = (required(params, "transFrom"), required(params, "transTo"))
        if route not in (("SPOT", "ISOLATED_MARGIN"), ("ISOLATED_MARGIN", "SPOT")):
            raise Refused(400, -1130, "Data sent for parameter 'transFrom' or 'transTo' is not valid.")
        return await self._transfer(key.account_id, spec.name, amount, route[0] == "SPOT", market.name)

    async def _transfer(self, account_id: int, asset_name: str, amount: int, to_margin: bool,
                        market: str) -> web.Response:
        cmd = TransferMargin(self.gateway.client.next_request_id(), 0, account_id, asset_name, amount, to_margin,
                             market)
        await command(self.gateway, cmd)
        return json_response({"tranId": cmd.request_id})

    async def account(self, request: web.Request) -> web.Response:
        key, _ = await self.gateway.signed(request, Permission.READ)
        view = await self.gateway.client.account_shard(key.account_id).margin_book.remote(key.account_id, "")
        if view is None:
            raise Refused(400, -3003, "Margin account does not exist.")
        return json_response({"borrowEnabled": not view["liquidating"], "tradeEnabled": not view["liquidating"],
                              "transferEnabled": not view["liquidating"], "marginLevel": _level(view["level_ppm"]),
                              "marginZone": view["zone"], "liquidating": view["liquidating"],
                              "userAssets": [_asset_row(self.config.assets[name], view) for name in view["available"]]})

    async def isolated_account(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.READ)
        symbols = required(params, "symbols").split(",")
        if len(symbols) > 5:
            raise Refused(400, -1130, "Data sent for parameter 'symbols' is not valid: at most 5.")
        chosen = [self.gateway.market({"symbol": symbol}) for symbol in symbols]
        shard = self.gateway.client.account_shard(key.account_id)
        rows = []
        for symbol, spec in chosen:
            view = await shard.margin_book.remote(key.account_id, spec.name)
            if view is not None:
                rows.append({"symbol": symbol, "baseAsset": _asset_row(spec.base, view),
                             "quoteAsset": _asset_row(spec.quote, view), "marginLevel": _level(view["level_ppm"]),
                             "marginZone": view["zone"], "liquidating": view["liquidating"],
                             "enabled": True, "tradeEnabled": not view["liquidating"]})
        return json_response({"assets": rows})

    async def order(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        symbol, spec = self.gateway.market(params)
        isolated = flag(params, "isIsolated")
        side, kind, tif, quantity, price = order_terms(params, spec, ("LIMIT", "MARKET", "LIMIT_MAKER"))
        effect = params.get("sideEffectType", "NO_SIDE_EFFECT")
        if effect not in SIDE_EFFECTS:
            raise Refused(400, -1130, "Data sent for parameter 'sideEffectType' is not valid.")
        auto_borrow, auto_repay = SIDE_EFFECTS[effect]
        cmd = PlaceMarginOrder(self.gateway.client.next_request_id(), 0, key.account_id, spec.name, side, kind, price,
                               quantity, tif, isolated, auto_borrow, auto_repay, params.get("newClientOrderId", ""))
        result = order_result(cmd.request_id, (await self.gateway.client.execute_async([cmd]))[0], key.account_id)
        if result.reason is not None and not result.order_id:
            raise refused(result.reason)
        body = binance.order(symbol, spec, result, params, self.gateway.clock_ms())
        borrowed = [e for e in result.events if type(e) is Borrowed and e.account_id == key.account_id]
        if borrowed:
            scale = self.config.assets[borrowed[0].asset].scale
            body.update(marginBuyBorrowAsset=borrowed[0].asset,
                        marginBuyBorrowAmount=format_decimal(sum(e.amount for e in borrowed), scale))
        return json_response({**body, "isIsolated": isolated})


def _level(level_ppm: int | None) -> str:
    return LEVEL_WITHOUT_DEBT if level_ppm is None else format_decimal(level_ppm, 6)


def _asset_row(spec, view: dict) -> dict:
    """One asset of a margin book view (minor units) as Binance's ``userAssets`` row."""
    name, scale = spec.name, spec.scale
    free, locked = view["available"][name], view["held"][name] + view["pending"][name]
    debt, principal = view["debt"][name], view["principal"][name]
    return {"asset": name, "free": format_decimal(free, scale), "locked": format_decimal(locked, scale),
            "borrowed": format_decimal(principal, scale), "interest": format_decimal(debt - principal, scale),
            "netAsset": format_decimal(free + locked - debt, scale)}
