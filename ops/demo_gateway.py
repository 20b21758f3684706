"""A bot trading through the gateway for ``exchange up`` (issue 18): what a Binance bot
pointed at this exchange does, over HTTP on loopback.

Its account opens with the demo's others; ``exchange up`` gives it an API key (read and
trade, HMAC) and prints the key and its secret once at start, so a user can sign
requests of their own. Each
round it places a limit buy well under the index (``POST /api/v3/order``), reads its open
orders, and cancels the order it placed; every few rounds it reads its account and the
book. The summary shows the gateway's address, the requests sent and answered, orders
placed and cancelled over HTTP, refusals by Binance code and our reason, and the weight used this
minute.
"""
from __future__ import annotations

import time

import aiohttp

from actors.client.exchange_client import ExchangeClient
from exchange.core.money import format_decimal
from exchange.messages.records import Deposit, OpenAccount
from gateway.auth import hmac_query

BOT = 7_600_001
EVERY_ROUNDS = 2                 # a round of HTTP every this many demo rounds
READ_EVERY = 5                   # the account and the book every this many of its rounds


class GatewayDemo:
    def __init__(self, client: ExchangeClient, url: str | None = None, key: str = "", secret: str = ""):
        self.client, self.url, self.key, self.secret = client, url, key, secret
        self.session: aiohttp.ClientSession | None = None
        self.rounds = self.requests = self.answered = self.orders = self.cancels = 0
        self.refused: dict[str, int] = {}
        self.used_weight = 0

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
        if not self.enabled:
            return
        self.rounds += 1
        spec = self.client.config.market_list[0]
        index = index_prices.get(spec.base.name)
        if self.rounds % EVERY_ROUNDS or not index:
            return
        if self.session is None:
            self.session = aiohttp.ClientSession(headers={"X-MBX-APIKEY": self.key})
        symbol = spec.name.replace("-", "")
        price = index * 9 // 10 // spec.tick_minor * spec.tick_minor          # well under the market: it rests
        placed = await self._call("POST", "/api/v3/order", symbol=symbol, side="BUY", type="LIMIT",
                                  timeInForce="GTC", quantity=format_decimal(spec.min_lots * spec.lot_minor,
                                                                             spec.base.scale),
                                  price=format_decimal(price, spec.quote.scale))
        if placed is not None:
            self.orders += 1
            await self._call("GET", "/api/v3/openOrders", symbol=symbol)
            if await self._call("DELETE", "/api/v3/order", symbol=symbol, orderId=placed["orderId"]) is not None:
                self.cancels += 1
        if self.rounds // EVERY_ROUNDS % READ_EVERY == 0:
            await self._call("GET", "/api/v3/account")
            await self._call("GET", "/api/v3/depth", signed=False, symbol=symbol, limit=5)

    async def _call(self, method: str, path: str, signed: bool = True, **params):
        """One request; its JSON answer, or None (counted by Binance code) if refused."""
        if signed:
            params["timestamp"] = time.time_ns() // 1_000_000
        query = hmac_query(self.secret, params) if signed else "&".join(f"{k}={v}" for k, v in params.items())
        self.requests += 1
        try:
            async with self.session.request(method, f"{self.url}{path}?{query}") as response:
                body = await response.json()
                self.used_weight = int(response.headers.get("X-MBX-USED-WEIGHT-1M", self.used_weight))
        except (aiohttp.ClientError, ValueError) as exc:
            self.refused[type(exc).__name__] = self.refused.get(type(exc).__name__, 0) + 1
            return None
        self.answered += 1
        if response.status != 200:
            msg = str(body.get("msg", ""))
            reason = msg[msg.rfind("(") + 1:-1] if msg.endswith(")") else ""     # our reason, in the brackets
            refusal = f"{body.get('code')} {reason}".strip()
            self.refused[refusal] = self.refused.get(refusal, 0) + 1
            return None
        return body

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def summary(self) -> dict:
        if not self.enabled:
            return {}
        return {"url": self.url, "requests": self.requests, "answered": self.answered, "orders": self.orders,
                "cancels": self.cancels, "refused": dict(self.refused), "used_weight": self.used_weight}
