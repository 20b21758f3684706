"""Perpetual-futures endpoints in the shapes of Binance's USD-M futures (``/fapi/...``,
issue 18): positions, leverage, risk limit brackets, margin type, orders, the perpetual
wallet, transfers into and out of it, and the mark price with the funding rate. The
perpetual desk (``exchange/perp``) holds every rule; this module reads parameters and
shapes answers.

- A **symbol** is the perpetual market's name without its dashes (``BTC-USDT-PERP`` ->
  ``BTCUSDTPERP``). One position per market (``positionSide`` is always ``BOTH``).
- **Brackets** are the market's risk tiers (rulebook 4.3.2) numbered from 1: bracket
  ``n`` is tier ``n - 1``. ``POST /fapi/v1/riskLimit`` (not a Binance endpoint: Binance
  picks the bracket from the position) chooses the account's risk limit.
- Rates (``lastFundingRate``, ``interestRate``, ``maintMarginRatio``) are decimal strings.
- **Funding history**: ``fundingRate`` shows the market's last settlements (each market
  actor keeps ``[limits] history_fundings_max``, 1,000 by default), ``income`` the
  account's funding payments, realized PnL and commissions as its shard keeps them
  (``exchange/accounts/income.py``, ``[limits] history_income_max`` per shard). Both take
  ``startTime``/``endTime`` (ms, inclusive) and ``limit`` (default 100, at most 1,000):
  the first ``limit`` from ``startTime`` if it is sent, else the newest. ``incomeType`` is
  one of the kinds kept (``FUNDING_FEE``, ``REALIZED_PNL``, ``COMMISSION``); ``tranId`` is
  the entry's number on its shard, ``tradeId`` the fill's (as ``myTrades``').
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from actors.client.results import order_result
from exchange.core.money import PPM, format_decimal, mul_div_floor
from exchange.messages.records import (CancelPerpOrder, PerpSettingsChanged, PlacePerpOrder, SetMarginMode,
                                       SetPerpLeverage, SetRiskLimit, TransferPerp)
from exchange.accounts.income import IncomeKind
from exchange.perp.funding import FUNDING_ONE
from gateway import binance
from gateway.auth import Permission
from gateway.http import Refused, integer, json_response, required
from gateway.products.common import asset, choice, command, decimal, flag, order_terms, refused

DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
SYMBOL = ("symbol", {"type": "string", "example": "BTCUSDTPERP"})
FUNDING_DECIMALS = len(str(FUNDING_ONE)) - 1
STATUS = {"open": "NEW", "filled": "FILLED", "cancelled": "CANCELED", "expired": "EXPIRED"}
MARGIN_TYPES = {"ISOLATED": True, "CROSSED": False}
INCOME_TYPES = {kind.name: kind for kind in IncomeKind}
HISTORY_LIMIT_MAX = 1_000
MS = 1_000_000                                         # ns per ms
WINDOW = [("startTime", {"type": "integer", "minimum": 0}, False),
          ("endTime", {"type": "integer", "minimum": 0}, False),
          ("limit", {"type": "integer", "minimum": 1, "maximum": HISTORY_LIMIT_MAX}, False)]

ENDPOINTS = [
    ("get", "/fapi/v1/premiumIndex", "NONE", 1, "Mark price, index price and funding rate", [(*SYMBOL, False)]),
    ("get", "/fapi/v1/fundingRate", "NONE", 1, "Funding rate history: the market's last settlements",
     [(*SYMBOL, False), *WINDOW]),
    ("get", "/fapi/v1/income", "USER_DATA", 30, "Income: funding fees, realized PnL and commissions",
     [(*SYMBOL, False), ("incomeType", {"type": "string", "enum": list(INCOME_TYPES)}, False), *WINDOW]),
    ("get", "/fapi/v1/leverageBracket", "USER_DATA", 1, "The risk limit brackets", [(*SYMBOL, False)]),
    ("get", "/fapi/v2/positionRisk", "USER_DATA", 5, "Positions at the mark", [(*SYMBOL, False)]),
    ("get", "/fapi/v2/balance", "USER_DATA", 5, "The perpetual wallet", []),
    ("post", "/fapi/v1/leverage", "TRADE", 1, "Set the leverage new orders open at",
     [(*SYMBOL, True), ("leverage", {"type": "integer", "minimum": 1}, True)]),
    ("post", "/fapi/v1/riskLimit", "TRADE", 1, "Choose the risk limit bracket (not a Binance endpoint)",
     [(*SYMBOL, True), ("bracket", {"type": "integer", "minimum": 1}, True)]),
    ("post", "/fapi/v1/marginType", "TRADE", 1, "Isolated or cross margin for a market",
     [(*SYMBOL, True), ("marginType", {"type": "string", "enum": list(MARGIN_TYPES)}, True)]),
    ("post", "/fapi/v1/order", "TRADE", 1, "Place a perpetual order", [
        (*SYMBOL, True), ("side", {"type": "string", "enum": ["BUY", "SELL"]}, True),
        ("type", {"type": "string", "enum": ["LIMIT", "MARKET"]}, True),
        ("timeInForce", {"type": "string", "enum": ["GTC", "IOC", "FOK", "GTX"]}, False),
        ("quantity", DECIMAL, True), ("price", DECIMAL, False),
        ("reduceOnly", {"type": "string", "enum": ["true", "false"]}, False),
        ("newClientOrderId", {"type": "string", "maxLength": 36}, False)]),
    ("delete", "/fapi/v1/order", "TRADE", 1, "Cancel a perpetual order",
     [(*SYMBOL, True), ("orderId", {"type": "integer", "minimum": 1}, True)]),
    ("post", "/sapi/v1/futures/transfer", "TRADE", 1, "Move funds spot <-> perpetual wallet (type 1: in, 2: out)",
     [("asset", {"type": "string"}, True), ("amount", DECIMAL, True),
      ("type", {"type": "integer", "enum": [1, 2]}, True)]),
]
WEIGHTS = {"fapi.premiumIndex": 1, "fapi.fundingRate": 1, "fapi.income": 30, "fapi.leverageBracket": 1,
           "fapi.positionRisk": 5, "fapi.balance": 5, "fapi.leverage": 1, "fapi.riskLimit": 1, "fapi.marginType": 1,
           "fapi.order": 1, "fapi.cancel": 1, "futures.transfer": 1}


def routes(gateway) -> list:
    perp = Perp(gateway)
    return [web.get("/fapi/v1/premiumIndex", perp.premium_index, name="fapi.premiumIndex"),
            web.get("/fapi/v1/fundingRate", perp.funding_rate, name="fapi.fundingRate"),
            web.get("/fapi/v1/income", perp.income, name="fapi.income"),
            web.get("/fapi/v1/leverageBracket", perp.leverage_bracket, name="fapi.leverageBracket"),
            web.get("/fapi/v2/positionRisk", perp.position_risk, name="fapi.positionRisk"),
            web.get("/fapi/v2/balance", perp.balance, name="fapi.balance"),
            web.post("/fapi/v1/leverage", perp.leverage, name="fapi.leverage"),
            web.post("/fapi/v1/riskLimit", perp.risk_limit, name="fapi.riskLimit"),
            web.post("/fapi/v1/marginType", perp.margin_type, name="fapi.marginType"),
            web.post("/fapi/v1/order", perp.order, name="fapi.order"),
            web.delete("/fapi/v1/order", perp.cancel, name="fapi.cancel"),
            web.post("/sapi/v1/futures/transfer", perp.transfer, name="futures.transfer")]


class Perp:
    def __init__(self, gateway):
        self.gateway = gateway
        self.config = gateway.client.config
        self.symbols = binance.perp_symbols(self.config)
        self.by_name = {perp.name: (symbol, perp) for symbol, perp in self.symbols.items()}

    def _market(self, params: dict[str, str]):
        perp = self.symbols.get(required(params, "symbol"))
        if perp is None:
            raise Refused(400, -1121, "Invalid symbol.")
        return params["symbol"], perp

    def _chosen(self, params: dict[str, str]) -> list:
        return [self._market(params)] if "symbol" in params else sorted(self.symbols.items())

    # ---- public ---------------------------------------------------------------------------
    async def premium_index(self, request: web.Request) -> web.Response:
        params, _, _ = await self.gateway.params(request)
        chosen = self._chosen(params)
        handles = self.gateway.client.handles
        index, *views = await asyncio.gather(handles.index.index_prices.remote(),
                                             *(handles.markets[perp.name].price_view.remote() for _, perp in chosen))
        now = self.gateway.clock_ms()
        rows = [_premium(symbol, perp, view, index.get(perp.spec.base.name), now)
                for (symbol, perp), view in zip(chosen, views)]
        return json_response(rows[0] if "symbol" in params else rows)

    async def funding_rate(self, request: web.Request) -> web.Response:
        params, _, _ = await self.gateway.params(request)
        chosen = self._chosen(params)
        start_ns, end_ns, limit = _window(params)
        markets = self.gateway.client.handles.markets
        settled = await asyncio.gather(*(markets[perp.name].funding_history.remote(start_ns, end_ns, limit)
                                         for _, perp in chosen))
        rows = sorted(((ts_ns, symbol, perp, rate, mark) for (symbol, perp), kept in zip(chosen, settled)
                       for ts_ns, rate, mark in kept), key=lambda row: row[:2])
        rows = rows[:limit] if start_ns is not None else rows[-limit:]       # several markets: one window
        return json_response([{"symbol": symbol, "fundingRate": format_decimal(rate, FUNDING_DECIMALS),
                               "fundingTime": ts_ns // MS, "markPrice": _price(perp, mark)}
                              for ts_ns, symbol, perp, rate, mark in rows])

    # ---- reads ----------------------------------------------------------------------------
    async def income(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.READ)
        market = self._market(params)[1].name if "symbol" in params else None
        kind = choice(params, "incomeType", INCOME_TYPES) if "incomeType" in params else None
        start_ns, end_ns, limit = _window(params)
        shard = self.gateway.client.account_shard(key.account_id)
        kept = await shard.income_history.remote(key.account_id, market, kind, start_ns, end_ns, limit)
        return json_response([_income(*self.by_name[entry["market"]], entry) for entry in kept])

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        _, params = await self.gateway.signed(request, Permission.READ)
        rows = [{"symbol": symbol, "brackets": _brackets(perp)} for symbol, perp in self._chosen(params)]
        return json_response(rows[0] if "symbol" in params else rows)

    async def position_risk(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.READ)
        chosen = self._chosen(params)
        shard = self.gateway.client.account_shard(key.account_id)
        views = await asyncio.gather(*(shard.perp_position.remote(key.account_id, perp.name) for _, perp in chosen))
        now = self.gateway.clock_ms()
        return json_response([_position(symbol, perp, view, now) for (symbol, perp), view in zip(chosen, views)
                              if view is not None])

    async def balance(self, request: web.Request) -> web.Response:
        key, _ = await self.gateway.signed(request, Permission.READ)
        wallet = await self.gateway.client.account_shard(key.account_id).perp_wallet.remote(key.account_id) or {}
        now = self.gateway.clock_ms()
        rows = []
        for name, row in wallet.items():
            scale = self.config.assets[name].scale
            rows.append({"accountAlias": "", "asset": name, "balance": format_decimal(row["cash"], scale),
                         "locked": format_decimal(row["held"], scale),
                         "availableBalance": format_decimal(row["available"], scale),
                         "maxWithdrawAmount": format_decimal(row["withdrawable"], scale), "updateTime": now})
        return json_response(rows)

    # ---- settings -------------------------------------------------------------------------
    async def leverage(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        symbol, perp = self._market(params)
        leverage = integer(params, "leverage", 0)
        changed = await self._setting(SetPerpLeverage(self.gateway.client.next_request_id(), 0, key.account_id,
                                                      perp.name, leverage))
        return json_response({"symbol": symbol, "leverage": changed.leverage,
                              "maxNotionalValue": _quote(perp, perp.tiers.ceiling(changed.risk_tier))})

    async def risk_limit(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        symbol, perp = self._market(params)
        bracket = integer(params, "bracket", 0)
        if bracket < 1:
            raise Refused(400, -1130, "Data sent for parameter 'bracket' is not valid.")
        changed = await self._setting(SetRiskLimit(self.gateway.client.next_request_id(), 0, key.account_id,
                                                   perp.name, bracket - 1))
        return json_response({"symbol": symbol, "bracket": changed.risk_tier + 1, "leverage": changed.leverage,
                              "notionalCap": _quote(perp, perp.tiers.ceiling(changed.risk_tier))})

    async def margin_type(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        _, perp = self._market(params)
        isolated = choice(params, "marginType", MARGIN_TYPES)
        await self._setting(SetMarginMode(self.gateway.client.next_request_id(), 0, key.account_id, perp.name,
                                          isolated))
        return json_response({"code": 200, "msg": "success"})

    async def _setting(self, cmd) -> PerpSettingsChanged:
        result = await command(self.gateway, cmd)
        return next(e for e in result.events if type(e) is PerpSettingsChanged)

    # ---- orders and transfers -------------------------------------------------------------
    async def order(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        symbol, perp = self._market(params)
        side, kind, tif, quantity, price = order_terms(params, perp.spec, ("LIMIT", "MARKET"))
        cmd = PlacePerpOrder(self.gateway.client.next_request_id(), 0, key.account_id, perp.name, side, kind, price,
                             quantity, tif, flag(params, "reduceOnly"), params.get("newClientOrderId", ""))
        result = order_result(cmd.request_id, (await self.gateway.client.execute_async([cmd]))[0], key.account_id)
        if result.reason is not None and not result.order_id:
            raise refused(result.reason)
        return json_response(_order(symbol, perp, result, params, self.gateway.clock_ms()))

    async def cancel(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        symbol, perp = self._market(params)
        order_id = integer(params, "orderId", 0)
        if not order_id:
            raise Refused(400, -1102, "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed.")
        cmd = CancelPerpOrder(self.gateway.client.next_request_id(), 0, key.account_id, perp.name, order_id)
        result = order_result(cmd.request_id, (await self.gateway.client.execute_async([cmd]))[0], key.account_id)
        if result.reason is not None:
            raise refused(result.reason, cancel=True)
        return json_response({"symbol": symbol, "orderId": result.order_id, "status": "CANCELED",
                              "positionSide": "BOTH", "updateTime": self.gateway.clock_ms()})

    async def transfer(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        spec = asset(self.config, params, "asset", -1130, "Data sent for parameter 'asset' is not valid.")
        amount = decimal(params, "amount", spec.scale)
        to_perp = choice(params, "type", {"1": True, "2": False})
        cmd = TransferPerp(self.gateway.client.next_request_id(), 0, key.account_id, spec.name, amount, to_perp)
        await command(self.gateway, cmd)
        return json_response({"tranId": cmd.request_id})


def _window(params: dict[str, str]) -> tuple[int | None, int | None, int]:
    """(``startTime``, ``endTime`` to its last nanosecond, both ns or None; ``limit``) of a history request."""
    start, end = integer(params, "startTime", -1), integer(params, "endTime", -1)
    limit = integer(params, "limit", 100)
    if not 1 <= limit <= HISTORY_LIMIT_MAX:
        raise Refused(400, -1100, f"'limit' must be between 1 and {HISTORY_LIMIT_MAX}.")
    return None if start < 0 else start * MS, None if end < 0 else end * MS + MS - 1, limit


def _income(symbol: str, perp, entry: dict) -> dict:
    """An income entry (``exchange.accounts.income``) as ``GET /fapi/v1/income`` shows it."""
    kind = IncomeKind(entry["kind"]).name
    return {"symbol": symbol, "incomeType": kind, "income": _quote(perp, entry["amount"]),
            "asset": perp.spec.quote.name, "info": kind, "time": entry["ts_ns"] // MS, "tranId": entry["tran_id"],
            "tradeId": str(entry["trade_id"]) if entry["trade_id"] else ""}


def _quote(perp, minor: int) -> str:
    return format_decimal(minor, perp.spec.quote.scale)


def _price(perp, ticks: int | None) -> str | None:
    return None if ticks is None else _quote(perp, ticks * perp.spec.tick_minor)


def _premium(symbol: str, perp, view: dict, index: int | None, now_ms: int) -> dict:
    """``GET /fapi/v1/premiumIndex`` from the market's price view and the underlying's index."""
    next_ns = view["next_funding_ns"]
    return {"symbol": symbol, "markPrice": _price(perp, view["mark"]),
            "indexPrice": None if index is None else _quote(perp, index),
            "lastFundingRate": format_decimal(view["funding_rate"], FUNDING_DECIMALS),
            "interestRate": format_decimal(perp.funding.interest, FUNDING_DECIMALS),
            "nextFundingTime": 0 if next_ns is None else next_ns // 1_000_000, "time": now_ms}


def _brackets(perp) -> list[dict]:
    """The market's risk tiers as Binance's leverage brackets (bracket = tier + 1)."""
    tiers, scale = perp.tiers, perp.spec.quote.scale
    return [{"bracket": tier + 1, "initialLeverage": tiers.max_leverage(tier),
             "notionalCap": _quote(perp, tiers.ceiling(tier)),
             "notionalFloor": _quote(perp, tiers.ceiling(tier - 1) if tier else 0),
             "maintMarginRatio": format_decimal(tiers.maintenance_ppm(tier), 6),
             "initialMarginRatio": format_decimal(tiers.initial_ppm(tier), 6),
             "cum": format_decimal(tiers.deduction(tier), scale + len(str(PPM)) - 1)}
            for tier in range(tiers.steps + 1)]


def _position(symbol: str, perp, view: dict, now_ms: int) -> dict:
    """A position view (``PerpDesk.position_view``) as ``GET /fapi/v2/positionRisk`` shows it."""
    spec, lots = perp.spec, view["lots"]
    entry = mul_div_floor(abs(view["entry_notional"]), spec.tick_minor, abs(lots) * perp.k) if lots else 0
    mark_notional = lots * (view["mark"] or 0) * perp.k
    return {"symbol": symbol, "positionAmt": format_decimal(view["size"], spec.base.scale),
            "entryPrice": _quote(perp, entry), "markPrice": _price(perp, view["mark"]),
            "unRealizedProfit": _quote(perp, view["unrealized"]), "realizedProfit": _quote(perp, view["realized"]),
            "funding": _quote(perp, view["funding"]), "fees": _quote(perp, view["fees"]),
            "liquidationPrice": _price(perp, view["liquidation_price"]) or "0",
            "bankruptcyPrice": _price(perp, view["bankruptcy_price"]) or "0",
            "leverage": str(view["leverage"]), "bracket": view["risk_tier"] + 1,
            "maxNotionalValue": _quote(perp, perp.tiers.ceiling(view["risk_tier"])),
            "marginType": "isolated" if view["isolated"] else "cross",
            "isolatedMargin": _quote(perp, view["margin"] if view["isolated"] else 0),
            "maintMargin": _quote(perp, view["maintenance"]), "notional": _quote(perp, mark_notional),
            "isAutoAddMargin": "false", "positionSide": "BOTH", "adlQuantile": view["adl_quintile"] or 0,
            "updateTime": now_ms}


def _order(symbol: str, perp, result, request: dict, now_ms: int) -> dict:
    """A placed perpetual order's answer (Binance's ``POST /fapi/v1/order`` fields)."""
    spec = perp.spec
    filled = result.filled_quantity
    quote = sum(f.price // spec.tick_minor * (f.quantity // spec.lot_minor) * perp.k for f in result.fills)
    average = mul_div_floor(quote, 10 ** spec.base.scale, filled) if filled else 0
    status = STATUS.get(result.status, "REJECTED")
    if status == "NEW" and filled:
        status = "PARTIALLY_FILLED"
    return {"symbol": symbol, "orderId": result.order_id,
            "clientOrderId": request.get("newClientOrderId") or f"x-{result.order_id}",
            "price": request.get("price", "0"), "origQty": request["quantity"],
            "executedQty": format_decimal(filled, spec.base.scale), "cumQty": format_decimal(filled, spec.base.scale),
            "cumQuote": _quote(perp, quote), "avgPrice": _quote(perp, average), "status": status,
            "timeInForce": request.get("timeInForce", "GTC"), "type": request["type"], "origType": request["type"],
            "side": request["side"], "positionSide": "BOTH", "reduceOnly": request.get("reduceOnly", "false") == "true",
            "closePosition": False, "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "updateTime": now_ms}
