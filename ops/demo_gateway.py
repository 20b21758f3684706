"""A bot trading through the gateway for ``exchange up`` (issue 18): what a Binance bot
pointed at this exchange does, over HTTP and WebSocket on loopback.

Its account opens with the demo's others; ``exchange up`` gives it an API key (read and
trade, HMAC), prints the key and its secret once at start, so a user can sign requests
of their own, and revokes it at stop. At its first round it opens a user-data stream (a
listen key, ``POST /api/v3/userDataStream``, read at ``/ws/<listenKey>`` by a task that
counts the events by type), loads the transparency page and its fund's JSON, and moves
a little of the settlement asset to the perpetual wallet and back (two ``balanceUpdate``
events). Each of its rounds it places a limit buy well under the index
(``POST /api/v3/order``), reads its open orders and cancels the order it placed. Every
``READ_EVERY_S`` it sends a small market order (alternately buying and selling, so it
trades) and reads its account, the book, the 24 h ticker, its orders and trades of this
run (``allOrders``, ``myTrades``, from the first of the run on) and the perpetual's premium
index. At stop it closes its listen key.

The summary: requests sent and answered, by endpoint group; orders placed and cancelled;
refusals by Binance code and our reason; the weight used this minute; the stream's
events by type; the 24 h ticker of its symbol; its orders by final status and by type
and time in force, and its trades;
the premium index; the transparency page's address and answer.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import aiohttp
import orjson

from actors.client.exchange_client import ExchangeClient
from exchange.core.money import format_decimal
from exchange.messages.records import Deposit, OpenAccount
from exchange.perp.rules import perp_markets
from gateway import binance
from gateway.auth import hmac_query

BOT = 7_600_001
EVERY_ROUNDS = 2                 # a round of HTTP every this many demo rounds
READ_EVERY_S = 4.0               # the reads and a market order every this many seconds
KEEP_ALIVE_S = 30 * 60           # the listen key lives 60 minutes past its last keep-alive
HISTORY_LIMIT = 100              # allOrders and myTrades: at most this many new rows a read
OPEN = ("NEW", "PARTIALLY_FILLED")
GROUPS = (("/api/v3/order", "order"), ("/api/v3/openOrders", "account"), ("/api/v3/account", "account"),
          ("/api/v3/allOrders", "history"), ("/api/v3/myTrades", "history"), ("/api/v3/depth", "market"),
          ("/api/v3/ticker", "market"), ("/api/v3/userDataStream", "userStream"), ("/fapi/", "perp"),
          ("/sapi/v1/futures/", "perp"), ("/api/v1/public/", "transparency"), ("/transparency", "transparency"))


class GatewayDemo:
    def __init__(self, client: ExchangeClient, url: str | None = None, key: str = "", secret: str = ""):
        self.client, self.url, self.key, self.secret = client, url, key, secret
        self.session: aiohttp.ClientSession | None = None
        self.rounds = self.requests = self.answered = self.orders = self.cancels = 0
        self.by_group: Counter = Counter()
        self.refused: Counter = Counter()
        self.used_weight = 0
        self.listen_key = ""
        self.listen_key_at = 0.0
        self.reader: asyncio.Task | None = None
        self.events: Counter = Counter()              # user-data stream events by type
        self.executions: Counter = Counter()          # executionReport by execution type
        self.last_read = 0.0
        self.buys = True
        self.next_order_id = self.next_trade_id = 0   # the run's history read so far: from these on
        self.statuses: Counter = Counter()            # the run's closed orders by status (allOrders)
        self.kinds: Counter = Counter()               # ... and by type/timeInForce, as placed
        self.trades = 0                               # the run's trades (myTrades)
        self.ticker: dict = {}
        self.premium: dict = {}
        self.transparency = {"url": f"{url}/transparency"}

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def fund(self) -> None:
        """Open the bot's account and fund it."""
        if not self.enabled:
            return
        tiers = self.client.config.fee_tiers          # it places and cancels all day, as a market maker does:
        tier = "market_maker" if "market_maker" in tiers else ""      # the rulebook's cancel ladder exempts it
        commands = [OpenAccount(f"demo-gw-open:{BOT}", 0, BOT, tier)]
        commands += [Deposit(f"demo-gw-fund:{BOT}:{a.name}", 0, BOT, a.name, 10 ** (a.scale + 6))
                     for a in self.client.config.asset_list]
        self.client.execute(commands)

    async def round(self, index_prices: dict[str, int]) -> None:
        """One demo round: every ``EVERY_ROUNDS``, an order placed and cancelled over HTTP (and, when
        due, a market order and the reads); the stream reopened if it closed."""
        if not self.enabled:
            return
        self.rounds += 1
        spec = self.client.config.market_list[0]
        index = index_prices.get(spec.base.name)
        if self.rounds % EVERY_ROUNDS or not index:
            return
        first = self.session is None
        if first:
            self.session = aiohttp.ClientSession(headers={"X-MBX-APIKEY": self.key})
        await self._stream()
        if first:
            await self._first_round()
        symbol = binance.symbol(spec.name)
        quantity = format_decimal(spec.min_lots * spec.lot_minor, spec.base.scale)
        price = index * 9 // 10 // spec.tick_minor * spec.tick_minor          # well under the market: it rests
        placed = await self._call("POST", "/api/v3/order", symbol=symbol, side="BUY", type="LIMIT",
                                  timeInForce="GTC", quantity=quantity, price=format_decimal(price, spec.quote.scale))
        if placed is not None:
            self.orders += 1
            self.next_order_id = self.next_order_id or placed["orderId"]
            await self._call("GET", "/api/v3/openOrders", symbol=symbol)
            if await self._call("DELETE", "/api/v3/order", symbol=symbol, orderId=placed["orderId"]) is not None:
                self.cancels += 1
        if time.monotonic() - self.last_read >= READ_EVERY_S:
            self.last_read = time.monotonic()
            await self._trade(symbol, quantity)
            await self._read(symbol)

    async def _first_round(self) -> None:
        """What the bot does once: the transparency page, and the perpetual wallet there and back."""
        page = await self._call("GET", "/transparency", signed=False, as_json=False)
        fund = await self._call("GET", "/api/v1/public/insuranceFund", signed=False)
        self.transparency.update(page=page, chain_verified=None if fund is None else fund["chain"]["verified"])
        perps = list(perp_markets(self.client.config).values())
        if perps:
            settle = perps[0].spec.quote
            amount = format_decimal(10 ** settle.scale, settle.scale)       # 1 unit
            if await self._call("POST", "/sapi/v1/futures/transfer", asset=settle.name, amount=amount,
                                type=1) is not None:
                await self._call("GET", "/fapi/v2/balance")
                await self._call("POST", "/sapi/v1/futures/transfer", asset=settle.name, amount=amount, type=2)

    async def _stream(self) -> None:
        """Keep a user-data stream open: a listen key (kept alive) and a task reading it."""
        if self.listen_key and time.monotonic() - self.listen_key_at >= KEEP_ALIVE_S:
            if await self._call("PUT", "/api/v3/userDataStream", signed=False, listenKey=self.listen_key) is not None:
                self.listen_key_at = time.monotonic()
        if self.reader is not None and not self.reader.done():
            return
        answer = await self._call("POST", "/api/v3/userDataStream", signed=False)      # new, or the live one
        if answer is None:
            return
        self.listen_key, self.listen_key_at = answer["listenKey"], time.monotonic()
        try:
            ws = await self.session.ws_connect(f"{self.url.replace('http', 'ws', 1)}/ws/{self.listen_key}")
        except aiohttp.ClientError as exc:
            self.refused[type(exc).__name__] += 1
            return
        self.reader = asyncio.create_task(self._count_events(ws))

    async def _count_events(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async with ws:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    event = orjson.loads(message.data)
                    self.events[event.get("e", "?")] += 1
                    if event.get("e") == "executionReport":
                        self.executions[event["x"]] += 1

    async def _trade(self, symbol: str, quantity: str) -> None:
        """A small market order, buying and selling in turn: a trade for ``myTrades`` and the stream."""
        side, self.buys = ("BUY" if self.buys else "SELL"), not self.buys
        placed = await self._call("POST", "/api/v3/order", symbol=symbol, side=side, type="MARKET", quantity=quantity)
        if placed is not None and placed["fills"]:
            self.next_trade_id = self.next_trade_id or placed["fills"][0]["tradeId"]

    async def _read(self, symbol: str) -> None:
        """The account, the book, the 24 h ticker, the run's orders and trades, the premium index."""
        _, _, ticker, premium, orders, trades = await asyncio.gather(
            self._call("GET", "/api/v3/account"),
            self._call("GET", "/api/v3/depth", signed=False, symbol=symbol, limit=5),
            self._call("GET", "/api/v3/ticker/24hr", signed=False, symbol=symbol),
            self._call("GET", "/fapi/v1/premiumIndex", signed=False),
            self._call("GET", "/api/v3/allOrders", symbol=symbol, orderId=self.next_order_id, limit=HISTORY_LIMIT)
            if self.next_order_id else asyncio.sleep(0),            # (none yet: nothing to read, None)
            self._call("GET", "/api/v3/myTrades", symbol=symbol, fromId=self.next_trade_id, limit=HISTORY_LIMIT)
            if self.next_trade_id else asyncio.sleep(0))
        if ticker is not None:
            self.ticker = {"symbol": symbol, "last": ticker["lastPrice"], "change_pct": ticker["priceChangePercent"],
                           "volume": ticker["volume"], "count": ticker["count"]}
        if premium:
            self.premium = {k: premium[0][k] for k in ("symbol", "markPrice", "indexPrice", "lastFundingRate")}
        for order in orders or ():
            if order["status"] in OPEN:                      # read again from here once it is closed
                break
            self.statuses[order["status"]] += 1
            self.kinds[f"{order['type']}/{order['timeInForce']}"] += 1
            self.next_order_id = order["orderId"] + 1
        if trades:
            self.trades += len(trades)
            self.next_trade_id = trades[-1]["id"] + 1

    async def _call(self, method: str, path: str, signed: bool = True, as_json: bool = True, **params):
        """One request; its answer (JSON, or the status of a page), or None (counted by Binance
        code) if refused."""
        if signed:
            params["timestamp"] = time.time_ns() // 1_000_000
        query = hmac_query(self.secret, params) if signed else "&".join(f"{k}={v}" for k, v in params.items())
        self.requests += 1
        self.by_group[next((group for prefix, group in GROUPS if path.startswith(prefix)), "other")] += 1
        try:
            async with self.session.request(method, f"{self.url}{path}?{query}") as response:
                body = await response.json() if as_json or response.status != 200 else response.status
                self.used_weight = int(response.headers.get("X-MBX-USED-WEIGHT-1M", self.used_weight))
        except (aiohttp.ClientError, ValueError) as exc:
            self.refused[type(exc).__name__] += 1
            return None
        self.answered += 1
        if response.status != 200:
            msg = str(body.get("msg", ""))
            reason = msg[msg.rfind("(") + 1:-1] if msg.endswith(")") else ""     # our reason, in the brackets
            self.refused[f"{body.get('code')} {reason}".strip()] += 1
            return None
        return body

    async def close(self) -> None:
        """Close the stream and its listen key, then the session; quietly, the gateway may be gone."""
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        if self.session is not None:
            if self.listen_key:
                with contextlib.suppress(Exception):
                    await self._call("DELETE", "/api/v3/userDataStream", signed=False, listenKey=self.listen_key)
            await self.session.close()

    def summary(self) -> dict:
        if not self.enabled:
            return {}
        groups = dict.fromkeys(group for _, group in GROUPS)
        return {"url": self.url, "requests": self.requests, "answered": self.answered,
                "by_group": {g: self.by_group[g] for g in groups if self.by_group[g]},
                "orders": self.orders, "cancels": self.cancels,
                "refused": dict(self.refused), "used_weight": self.used_weight,
                "user_stream": {"events": dict(self.events.most_common()),
                                "executions": dict(self.executions.most_common())},
                "ticker": dict(self.ticker),
                "history": {"orders": dict(self.statuses), "kinds": dict(self.kinds), "trades": self.trades},
                "premium_index": dict(self.premium), "transparency": dict(self.transparency)}
