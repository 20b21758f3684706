"""Request weights, rate limits and escalating bans (issue 18), as Binance applies them.

Every endpoint has a **weight** (``WEIGHTS``; the depth's grows with its ``limit``). Each
client address, and each API key, may spend ``weight_per_minute`` in a minute (a fixed
window, as Binance's ``X-MBX-USED-WEIGHT-1M``). Past it, a request is refused **429**
(-1003) with ``Retry-After``: the seconds left in the window. A client that goes on
sending while refused is **banned**: after ``strikes_to_ban`` refused requests in one
window, every request is refused **418** (-1003) for ``ban_s``, doubled for each later ban
up to ``ban_s_max`` (Binance's "from 2 minutes to 3 days").

Pure: the clock comes from the caller. Bounded: at most ``tracked_max`` clients are
remembered; past it, the ones not seen for longest are forgotten (a banned one is kept
until its ban ends).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

WINDOW_MS = 60_000
WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 20, "order": 1, "order.test": 1, "cancel": 1, "query": 4,
           "openOrders": 6, "openOrders:all": 80, "account": 20, "trades": 25, "ticker.price": 2,
           "ticker.bookTicker": 2, "ticker.day": 2, "ticker.day:all": 80, "allOrders": 20, "myTrades": 20}
DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))


def depth_weight(limit: int) -> int:
    """The weight of a depth request for ``limit`` levels."""
    return next(weight for most, weight in DEPTH_WEIGHTS if limit <= most)


@dataclass(slots=True)
class _Client:
    window: int = -1            # the minute (ms // WINDOW_MS) the counts are for
    used: int = 0
    strikes: int = 0            # refused requests in this window
    bans: int = 0               # bans so far: each doubles the next
    banned_until_ms: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """``status`` 200 (go on), 429 (over the limit) or 418 (banned); ``retry_after_s`` with
    a refusal; ``used`` the weight spent in this window."""
    status: int
    used: int
    retry_after_s: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 200


class RateLimiter:
    def __init__(self, weight_per_minute: int = 6_000, strikes_to_ban: int = 10, ban_s: int = 120,
                 ban_s_max: int = 3 * 86_400, tracked_max: int = 100_000):
        self.weight_per_minute, self.strikes_to_ban = weight_per_minute, strikes_to_ban
        self.ban_s, self.ban_s_max, self.tracked_max = ban_s, ban_s_max, tracked_max
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def spend(self, who: str, weight: int, now_ms: int) -> Verdict:
        """Charge ``weight`` to ``who`` (an address or a key) now; what to answer."""
        client = self._client(who, now_ms)
        if now_ms < client.banned_until_ms:
            return Verdict(418, client.used, -(-(client.banned_until_ms - now_ms) // 1000))
        window = now_ms // WINDOW_MS
        if window != client.window:
            client.window, client.used, client.strikes = window, 0, 0
        retry_s = -(-((window + 1) * WINDOW_MS - now_ms) // 1000)
        if client.used + weight > self.weight_per_minute:
            client.strikes += 1
            if client.strikes >= self.strikes_to_ban:
                ban_s = min(self.ban_s << client.bans, self.ban_s_max)
                client.bans += 1
                client.banned_until_ms = now_ms + ban_s * 1000
                return Verdict(418, client.used, ban_s)
            return Verdict(429, client.used, retry_s)
        client.used += weight
        return Verdict(200, client.used)

    def _client(self, who: str, now_ms: int) -> _Client:
        client = self._clients.get(who)
        if client is None:
            self._evict(now_ms)
            client = self._clients[who] = _Client()
        else:
            self._clients.move_to_end(who)
        return client

    def _evict(self, now_ms: int) -> None:
        """Forget the clients not seen for longest until there is room, keeping those still
        banned (when every one is, the memory grows past the bound rather than lift a ban)."""
        for _ in range(len(self._clients)):
            if len(self._clients) < self.tracked_max:
                return
            who, client = next(iter(self._clients.items()))
            if client.banned_until_ms > now_ms:
                self._clients.move_to_end(who)
            else:
                del self._clients[who]

    def __len__(self) -> int:
        return len(self._clients)
