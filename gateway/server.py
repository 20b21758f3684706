"""The gateway's HTTP server (issue 18, first part): Binance Spot API v3 endpoints over
aiohttp, talking to the exchange through the Python client (``actors/client``).

Built so far:

| endpoint | security | what |
|---|---|---|
| ``GET /api/v3/ping`` | NONE | ``{}`` |
| ``GET /api/v3/openapi.json`` | NONE | this API's OpenAPI document (``gateway/openapi.py``) |
| ``GET /api/v3/time`` | NONE | the server's clock, ms |
| ``GET /api/v3/exchangeInfo`` | NONE | every spot market and its filters |
| ``GET /api/v3/depth`` | NONE | the book's levels, ``lastUpdateId`` the market's sequence |
| ``GET /api/v3/trades`` | NONE | the last trades (up to 1,000) |
| ``GET /api/v3/ticker/price``, ``ticker/bookTicker`` | NONE | last price; best bid and ask (one symbol or all) |
| ``GET /api/v3/ticker/24hr`` | NONE | the rolling 24 hours (``exchange/matching/ticker.py``) |
| ``POST /api/v3/order`` | TRADE | LIMIT, MARKET, LIMIT_MAKER; GTC, IOC, FOK |
| ``POST /api/v3/order/test`` | TRADE | the same checks at the gateway, nothing placed |
| ``DELETE /api/v3/order`` | TRADE | by ``orderId`` or ``origClientOrderId`` |
| ``GET /api/v3/order`` | USER_DATA | an order, open or closed (the shard's history) |
| ``GET /api/v3/openOrders`` | USER_DATA | the account's resting orders (of a symbol) |
| ``GET /api/v3/allOrders``, ``myTrades`` | USER_DATA | the account's orders and trades in a symbol (``exchange/accounts/history.py``) |
| ``GET /api/v3/account`` | USER_DATA | free and locked per asset |
| ``/ws/<streams>``, ``/stream?streams=`` | NONE | WebSocket: trades, depth diffs, book ticker (``gateway/streams.py``) |

The other sections of the API (margin, perpetuals, OTC, withdrawals, the public
transparency data, ...) are modules of their own, listed in ``gateway/sections.py``.

A request's parameters come from its query string and, for POST, PUT and DELETE, its
form-encoded body (``gateway/http.py``); a name given twice is refused (-1101). Signed
endpoints check the key, its permission, its address allowlist, the window and the
signature (``gateway/auth.py``) before anything else. Every request first spends its
weight from its address's minute and, with a known key, the key's (``gateway/limits.py``):
429 with ``Retry-After`` past it, 418 once banned; every answer says the weight used in
``X-MBX-USED-WEIGHT-1M``. Every refusal is a Binance error body (``gateway/errors.py``
for the exchange's reasons); no exception escapes as an HTML page. Bodies are limited
to ``BODY_BYTES_MAX``; a kept-alive connection idle for ``IDLE_S`` is closed (WebSockets:
``gateway/streams.py``, a heartbeat and a 24-hour life).
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from actors.client.results import order_result
from exchange.core.money import MoneyFormatError
from exchange.core.reasons import Reason
from exchange.messages.records import CancelOrder
from gateway import binance, openapi
from gateway.auth import AuthError, Permission, verify
from gateway.errors import error
from gateway.http import Refused, integer, json_response, required
from gateway.http import params as read_params
from gateway.keys import KeyStore
from gateway.limits import WEIGHTS, RateLimiter, depth_weight
from gateway.sections import SECTIONS
from gateway.streams import Streams

BODY_BYTES_MAX = 64 << 10
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
TRADES_MAX = 1_000                  # the market actor keeps its last 1,000 trades
HISTORY_MAX = 1_000                 # allOrders and myTrades answer at most this many
IDLE_S = 75.0                       # a kept-alive HTTP connection idle this long is closed
RATE_LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}]


class Gateway:
    """The HTTP front of one exchange client; ``clock_ms`` is the server's clock."""

    def __init__(self, client, keys: KeyStore, clock_ms=lambda: time.time_ns() // 1_000_000,
                 per_address: RateLimiter | None = None, per_key: RateLimiter | None = None):
        self.client, self.keys, self.clock_ms = client, keys, clock_ms
        self.per_address = RateLimiter() if per_address is None else per_address    # (an empty one is falsy)
        self.per_key = RateLimiter() if per_key is None else per_key
        self.symbols = binance.symbols(client.config)
        self.streams = Streams(client, self.symbols)
        self._openapi = openapi.document()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=BODY_BYTES_MAX, middlewares=[self._errors, self._limits])
        app.add_routes([web.get("/api/v3/ping", self.ping, name="ping"),
                        web.get("/api/v3/openapi.json", self.openapi, name="openapi"),
                        web.get("/api/v3/time", self.time, name="time"),
                        web.get("/api/v3/exchangeInfo", self.exchange_info, name="exchangeInfo"),
                        web.get("/api/v3/depth", self.depth, name="depth"),
                        web.get("/api/v3/trades", self.trades, name="trades"),
                        web.get("/api/v3/ticker/price", self.price_ticker, name="ticker.price"),
                        web.get("/api/v3/ticker/bookTicker", self.book_ticker, name="ticker.bookTicker"),
                        web.get("/api/v3/ticker/24hr", self.ticker_24h, name="ticker.day"),
                        web.post("/api/v3/order", self.new_order, name="order"),
                        web.post("/api/v3/order/test", self.test_order, name="order.test"),
                        web.delete("/api/v3/order", self.cancel_order, name="cancel"),
                        web.get("/api/v3/order", self.query_order, name="query"),
                        web.get("/api/v3/openOrders", self.open_orders, name="openOrders"),
                        web.get("/api/v3/allOrders", self.all_orders, name="allOrders"),
                        web.get("/api/v3/myTrades", self.my_trades, name="myTrades"),
                        web.get("/api/v3/account", self.account, name="account"),
                        web.get("/ws/{streams:.+}", self.streams.handle, name="ws"),
                        web.get("/stream", self.streams.handle, name="stream")])
        for section in SECTIONS:
            app.add_routes(section.routes(self))
        app.on_startup.append(self._start_streams)
        app.on_cleanup.append(self._stop_streams)
        return app

    async def _start_streams(self, app: web.Application) -> None:
        self.streams.start()

    async def _stop_streams(self, app: web.Application) -> None:
        await self.streams.stop()

    @web.middleware
    async def _limits(self, request: web.Request, handler):
        """Spend the request's weight from its address and its key (if known) before anything else."""
        weight = _weight(request)
        now = self.clock_ms()
        verdict = self.per_address.spend(request.remote or "", weight, now)
        key = request.headers.get("X-MBX-APIKEY")
        if verdict.ok and key and self.keys.known(key):
            verdict = self.per_key.spend(key, weight, now)
        if not verdict.ok:
            banned = verdict.status == 418
            msg = (f"Way too much request weight used; banned for {verdict.retry_after_s} s." if banned else
                   f"Too much request weight used; current limit is {self.per_address.weight_per_minute} request "
                   "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.")
            response = json_response({"code": -1003, "msg": msg}, verdict.status)
            response.headers["Retry-After"] = str(verdict.retry_after_s)
        else:
            response = await handler(request)
        if not response.prepared:                          # (a WebSocket's headers went out at its start)
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(verdict.used)
        return response

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except Refused as refused:
            return json_response(refused.body, refused.status)
        except AuthError as refused:
            return json_response({"code": refused.code, "msg": refused.msg}, refused.status)
        except web.HTTPRequestEntityTooLarge:
            return json_response({"code": -1102, "msg": f"Request body larger than {BODY_BYTES_MAX} bytes."}, 413)
        except web.HTTPNotFound:
            return json_response({"code": -1000, "msg": "Unknown endpoint."}, 404)
        except web.HTTPMethodNotAllowed:
            return json_response({"code": -1000, "msg": "Method not allowed."}, 405)

    # ---- parameters and signatures ------------------------------------------------------
    async def params(self, request: web.Request) -> tuple[dict[str, str], str, str]:
        return await read_params(request)

    async def signed(self, request: web.Request, needs: Permission):
        params, query, body = await self.params(request)
        key = self.keys.get(request.headers.get("X-MBX-APIKEY", ""))
        verify(key, needs, params, query, body, request.remote or "", self.clock_ms())
        return key, params

    def market(self, params: dict[str, str]):
        symbol = required(params, "symbol")
        spec = self.symbols.get(symbol)
        if spec is None:
            raise Refused(400, -1121, "Invalid symbol.")
        return symbol, spec

    # ---- public ---------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(self._openapi)

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.clock_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return json_response(binance.exchange_info(self.client.config, self.clock_ms(), RATE_LIMITS))

    async def depth(self, request: web.Request) -> web.Response:
        params, _, _ = await self.params(request)
        symbol, spec = self.market(params)
        limit = integer(params, "limit", 100)
        if limit not in DEPTH_LIMITS:
            raise Refused(400, -1100, f"'limit' must be one of {', '.join(map(str, DEPTH_LIMITS))}.")
        view = await self.client.handles.markets[spec.name].depth.remote(limit)
        return json_response(binance.depth(spec, view))

    async def trades(self, request: web.Request) -> web.Response:
        params, _, _ = await self.params(request)
        symbol, spec = self.market(params)
        limit = integer(params, "limit", 500)
        if not 1 <= limit <= TRADES_MAX:
            raise Refused(400, -1100, f"'limit' must be between 1 and {TRADES_MAX}.")
        fills = await self.client.handles.markets[spec.name].trades.remote(limit)
        return json_response(binance.trades(spec, fills))

    async def price_ticker(self, request: web.Request) -> web.Response:
        return await self._tickers(request, binance.price_ticker)

    async def book_ticker(self, request: web.Request) -> web.Response:
        return await self._tickers(request, binance.book_ticker)

    async def ticker_24h(self, request: web.Request) -> web.Response:
        return await self._tickers(request, binance.ticker_24h, "ticker_24h")

    async def _tickers(self, request: web.Request, shape, view: str = "depth") -> web.Response:
        """One symbol's ticker (``symbol``), or every one's, from the markets' ``view`` (their
        depth, or their rolling 24 hours)."""
        params, _, _ = await self.params(request)
        chosen = [self.market(params)] if "symbol" in params else list(self.symbols.items())
        views = await asyncio.gather(*(getattr(self.client.handles.markets[spec.name], view).remote(1)
                                       for _, spec in chosen))
        shaped = [shape(symbol, spec, view) for (symbol, spec), view in zip(chosen, views)]
        return json_response(shaped[0] if "symbol" in params else shaped)

    # ---- orders ---------------------------------------------------------------------------
    def _order(self, account_id: int, params: dict[str, str]):
        """The ``PlaceOrder`` a new-order request asks for, or ``Refused``."""
        symbol, spec = self.market(params)
        side = binance.SIDES.get(required(params, "side"))
        if side is None:
            raise Refused(400, -1117, "Invalid side.")
        kind = required(params, "type")
        if kind not in binance.ORDER_TYPES:
            raise Refused(400, -1116, "Invalid orderType.")
        tif = "post_only" if kind == "LIMIT_MAKER" else binance.TIME_IN_FORCE.get(params.get("timeInForce", "GTC"))
        if tif is None:
            raise Refused(400, -1115, "Invalid timeInForce.")
        price = required(params, "price") if kind != "MARKET" else params.get("price")
        try:
            return symbol, spec, self.client.order(
                account_id, spec.name, side, required(params, "quantity"), price,
                order_type="market" if kind == "MARKET" else "limit", tif="gtc" if kind == "MARKET" else tif,
                client_order_id=params.get("newClientOrderId", ""))
        except MoneyFormatError as exc:
            code = -1111 if "decimal places" in str(exc) else -1100
            raise Refused(400, code, f"Parameter has too much precision or is not a number: {exc}.") from None

    async def new_order(self, request: web.Request) -> web.Response:
        key, params = await self.signed(request, Permission.TRADE)
        symbol, spec, cmd = self._order(key.account_id, params)
        result = (await self.client.place_orders_async([cmd]))[0]
        if result.reason is not None and not result.order_id:
            status, body = error(result.reason)
            return json_response(body, status)
        return json_response(binance.order(symbol, spec, result, params, self.clock_ms()))

    async def test_order(self, request: web.Request) -> web.Response:
        key, params = await self.signed(request, Permission.TRADE)
        self._order(key.account_id, params)
        return json_response({})

    async def cancel_order(self, request: web.Request) -> web.Response:
        key, params = await self.signed(request, Permission.TRADE)
        symbol, spec = self.market(params)
        order_id = integer(params, "orderId", 0)
        client_id = params.get("origClientOrderId", "")
        if not order_id and not client_id:
            raise Refused(400, -1102, "Either orderId or origClientOrderId must be sent.")
        cmd = CancelOrder(self.client.next_request_id(), 0, key.account_id, spec.name, order_id, client_id)
        events = (await self.client.execute_async([cmd]))[0]
        result = order_result(cmd.request_id, events, key.account_id)
        if result.reason is not None:
            status, body = error(result.reason, cancel=True)
            return json_response(body, status)
        return json_response({"symbol": symbol, "origClientOrderId": client_id or f"x-{result.order_id}",
                      "orderId": result.order_id, "orderListId": -1, "status": "CANCELED",
                      "transactTime": self.clock_ms()})

    async def query_order(self, request: web.Request) -> web.Response:
        key, params = await self.signed(request, Permission.READ)
        symbol, spec = self.market(params)
        shard = self.client.account_shard(key.account_id)
        view = await shard.get_order.remote(key.account_id, integer(params, "orderId", 0))
        if view is None or view["market"] != spec.name:
            status, body = error(Reason.ORDER_NOT_FOUND)
            return json_response(body, status)
        shape = binance.past_order if "executed" in view else binance.open_order       # closed: the history's
        return json_response(shape(symbol, spec, view))

    async def all_orders(self, request: web.Request) -> web.Response:
        """The account's orders in a symbol, open and closed, as far back as the shard's history
        keeps them (``exchange.accounts.history``): from ``orderId`` on, else the newest ``limit``."""
        key, params = await self.signed(request, Permission.READ)
        symbol, spec = self.market(params)
        limit = _history_limit(params)
        views = await self.client.account_shard(key.account_id).order_history.remote(
            key.account_id, spec.name, integer(params, "orderId", 0), limit if _window(params) is None else 10**9)
        return json_response([binance.past_order(symbol, spec, v)
                              for v in _in_window(views, params, "time_ns", limit)])

    async def my_trades(self, request: web.Request) -> web.Response:
        """The account's trades in a symbol (of one ``orderId``, or from ``fromId`` on, else the newest)."""
        key, params = await self.signed(request, Permission.READ)
        symbol, spec = self.market(params)
        limit = _history_limit(params)
        if "fromId" in params and "orderId" in params:
            raise Refused(400, -1106, "Parameter 'fromId' sent when not required.")
        views = await self.client.account_shard(key.account_id).trade_history.remote(
            key.account_id, spec.name, integer(params, "fromId", 0), integer(params, "orderId", 0),
            limit if _window(params) is None else 10**9)
        return json_response([binance.my_trade(symbol, spec, t) for t in _in_window(views, params, "time_ns", limit)])

    async def open_orders(self, request: web.Request) -> web.Response:
        key, params = await self.signed(request, Permission.READ)
        wanted = self.market(params)[1].name if "symbol" in params else None
        views = await self.client.account_shard(key.account_id).open_orders.remote(key.account_id)
        names = {spec.name: symbol for symbol, spec in self.symbols.items()}
        return json_response([binance.open_order(names[v["market"]], self.client.config.markets[v["market"]], v)
                      for v in views if v["market"] in names and wanted in (None, v["market"])])

    async def account(self, request: web.Request) -> web.Response:
        key, _ = await self.signed(request, Permission.READ)
        balances = await self.client.account_shard(key.account_id).balances.remote(key.account_id) or {}
        return json_response(binance.account(self.client.config, balances, sorted(p.value for p in key.permissions),
                                     self.clock_ms()))


ROUTE_WEIGHTS = {**WEIGHTS, **{route: w for section in SECTIONS for route, w in section.WEIGHTS.items()}}


def _weight(request: web.Request) -> int:
    """The request's weight (``gateway.limits.WEIGHTS``): the depth's by its ``limit``, the open
    orders' of every symbol heavier; an unknown endpoint weighs 1."""
    route = request.match_info.route.name
    if route == "depth":
        limit = request.query.get("limit", "100")
        return depth_weight(int(limit)) if limit.isdigit() and int(limit) <= 5000 else 1
    if route == "openOrders" and "symbol" not in request.query:
        return WEIGHTS["openOrders:all"]
    if route == "ticker.day" and "symbol" not in request.query:
        return WEIGHTS["ticker.day:all"]
    if route in ("ticker.price", "ticker.bookTicker") and "symbol" not in request.query:
        return 2 * WEIGHTS[route]                                  # every symbol's
    return ROUTE_WEIGHTS.get(route, 1)


def _history_limit(params: dict[str, str]) -> int:
    limit = integer(params, "limit", 500)
    if not 1 <= limit <= HISTORY_MAX:
        raise Refused(400, -1100, f"'limit' must be between 1 and {HISTORY_MAX}.")
    return limit


def _window(params: dict[str, str]) -> tuple[int, int] | None:
    """``startTime``..``endTime`` (ms, both optional), or None when neither is given; at most 24 hours
    apart as Binance's (-1127)."""
    if "startTime" not in params and "endTime" not in params:
        return None
    start, end = integer(params, "startTime", 0), integer(params, "endTime", 0)
    if start and end and not 0 <= end - start <= 86_400_000:
        raise Refused(400, -1127, "More than 24 hours between startTime and endTime.")
    return start, end or 2**63


def _in_window(views: list[dict], params: dict[str, str], field: str, limit: int) -> list[dict]:
    """The views inside the request's time window, the first ``limit`` of them."""
    window = _window(params)
    if window is None:
        return views
    start, end = window
    return [v for v in views if start <= v[field] // 1_000_000 <= end][:limit]


async def serve(gateway: Gateway, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False,
                idle_s: float = IDLE_S) -> tuple[web.AppRunner, int]:
    """Start serving ``gateway`` on ``host``:``port`` (0: any free port); the runner (``cleanup()``
    stops it) and the port bound. ``reuse_port``: other processes may listen there too;
    ``idle_s``: a kept-alive HTTP connection with no request for that long is closed."""
    runner = web.AppRunner(gateway.app(), access_log=None, keepalive_timeout=idle_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]
