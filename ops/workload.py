"""The load test's workload model (issue 17): who trades, where, and how.

Activity is **Zipf-distributed** (exponent ``--zipf``, 0.6 by default; 0: uniform):
account k of N is the sender with weight 1/k^s, market j of M with weight 1/j^s, so a
few accounts and the first markets carry most of the traffic, as on a real venue.

**Market makers** are their own accounts: the first ``makers(N)`` (1%, at least 2) open
with the ``market_maker`` fee tier, which the rulebook's order-rate limits exempt
(``config/risk.toml``), and only they quote. The takers, sweepers and cancellers are the
other accounts, Zipf-weighted; a steeper ``--zipf`` concentrates them on a few accounts
until the rulebook's per-account rate limits refuse them (RATE_LIMITED, counted in
``refused``), as it would a real bot.

Each command comes from one of four **roles**, drawn by the mix (``--mix
maker=0.55,taker=0.2,sweeper=0.05,canceller=0.2`` by default):

- **maker**: quotes both sides a few ticks from the mid (GTC), and **requotes**:
  half of its turns cancel one of its resting quotes before placing the next;
- **taker**: a limit IOC a few ticks through the mid, for a few lots;
- **sweeper**: a large IOC up to 40 ticks through, taking several levels;
- **canceller**: cancels a random resting order the generator saw booked and not
  filled since (one filled in between is refused ORDER_NOT_FOUND, as for anyone).

The mid follows a seeded random walk. Everything is seeded (``--seed``), so two runs
send the same commands. ``market_of`` says which market a command is for (the per-market
split of the report).
"""
from __future__ import annotations

import bisect
import itertools
import random

from exchange.core.reasons import Reason
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.messages.records import CancelOrder, Fill, OrderBooked, OrderRejected, PlaceOrder

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, GTC, IOC = int(OrderType.LIMIT), int(TimeInForce.GTC), int(TimeInForce.IOC)
ROLES = ("maker", "taker", "sweeper", "canceller")
DEFAULT_MIX = {"maker": 0.55, "taker": 0.2, "sweeper": 0.05, "canceller": 0.2}
DEFAULT_ZIPF = 0.6
MAKER_TIER = "market_maker"


def makers(accounts: int) -> int:
    """How many of ``accounts`` are market makers: 1%, at least 2 (and at most half)."""
    return max(2, min(accounts // 2, accounts // 100))


def parse_mix(text: str) -> dict[str, float]:
    """``maker=0.5,taker=0.3,...`` as weights summing to 1 (``ValueError`` naming what is wrong)."""
    mix = dict.fromkeys(ROLES, 0.0)
    for part in text.split(","):
        role, _, weight = part.partition("=")
        if role.strip() not in mix:
            raise ValueError(f"unknown role {role.strip()!r}: one of {', '.join(ROLES)}")
        mix[role.strip()] = float(weight)
    total = sum(mix.values())
    if total <= 0 or any(w < 0 for w in mix.values()):
        raise ValueError("role weights must be >= 0 and not all 0")
    return {role: w / total for role, w in mix.items()}


class ZipfChoice:
    """Draws 0..n-1 with weight 1/(k+1)^s."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        weights = [1 / (k + 1) ** s for k in range(n)]
        self.cumulative = list(itertools.accumulate(weights))
        self.rng = rng

    def draw(self) -> int:
        return bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])


class WorkloadGenerator:
    """Seeded commands for ``accounts`` (``first_account``..``accounts``) over ``markets``."""

    def __init__(self, client, markets: list, accounts: int, seed: int, first_account: int = 1,
                 zipf: float = DEFAULT_ZIPF, mix: dict | None = None) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.markets = markets
        self.first_account = first_account
        self.accounts = accounts
        self.makers = makers(accounts - first_account + 1)     # first_account.. first_account + makers - 1
        self.pick_maker = ZipfChoice(self.makers, zipf, self.rng)
        self.pick_account = ZipfChoice(accounts - first_account + 1 - self.makers, zipf, self.rng)
        self.pick_market = ZipfChoice(len(markets), zipf, self.rng)
        mix = mix or DEFAULT_MIX
        self.roles = list(mix)
        self.role_weights = list(itertools.accumulate(mix[r] for r in self.roles))
        self.mids = {m.name: (50_000 if m.base.name == "BTC" else 3_000) * 100 for m in markets}  # ticks
        self.live: list[tuple[int, str, int]] = []     # (account, market, order id) seen resting
        self.resting: dict[int, int] = {}               # order id -> remaining, as last seen
        self.quotes: dict[int, list[tuple[str, int]]] = {}   # a maker's resting quotes
        self.counter = 0
        self.sent = dict.fromkeys(ROLES, 0)
        self.refused: dict[str, int] = {}               # reason -> commands refused with it

    def market_of(self, command) -> str:
        return command.market

    def batch(self, size: int) -> list:
        out = []
        prefix = self.client.next_request_id()
        rng = self.rng
        for _ in range(size):
            self.counter += 1
            request_id = f"{prefix}:{self.counter}"
            role = self.roles[bisect.bisect_left(self.role_weights, rng.random() * self.role_weights[-1])]
            self.sent[role] += 1
            out.append(getattr(self, f"_{role}")(request_id))
        return out

    def _order(self, request_id, side: int, offset: int, lots: int, tif: int, account: int | None = None):
        spec = self.markets[self.pick_market.draw()]
        if self.rng.random() < 0.01:                        # the mid walks
            self.mids[spec.name] += self.rng.choice((-1, 1))
        account = account if account is not None else self.first_account + self.makers + self.pick_account.draw()
        ticks = self.mids[spec.name] + (offset if side == BUY else -offset)
        return PlaceOrder(request_id, 0, account, spec.name, side, LIMIT, max(1, ticks) * spec.tick_minor,
                          lots * spec.min_lots * spec.lot_minor, tif)

    def _maker(self, request_id):
        account = self.first_account + self.pick_maker.draw()
        mine = self.quotes.get(account)
        while mine and self.rng.random() < 0.5:             # requote: the old quote goes first
            market, order_id = mine.pop(self.rng.randrange(len(mine)))
            if self.resting.pop(order_id, None) is not None:
                return CancelOrder(request_id, 0, account, market, order_id)
        side = BUY if self.rng.random() < 0.5 else SELL
        return self._order(request_id, side, -self.rng.randint(1, 8), self.rng.randint(1, 10), GTC, account)

    def _taker(self, request_id):
        side = BUY if self.rng.random() < 0.5 else SELL
        return self._order(request_id, side, self.rng.randint(1, 6), self.rng.randint(1, 5), IOC)

    def _sweeper(self, request_id):
        side = BUY if self.rng.random() < 0.5 else SELL
        return self._order(request_id, side, self.rng.randint(10, 40), self.rng.randint(20, 60), IOC)

    def _canceller(self, request_id):
        while self.live:
            j = self.rng.randrange(len(self.live))
            self.live[j], self.live[-1] = self.live[-1], self.live[j]
            account, market, order_id = self.live.pop()
            if self.resting.pop(order_id, None) is not None:      # (one filled or cancelled since: skipped)
                return CancelOrder(request_id, 0, account, market, order_id)
        return self._taker(request_id)

    def observe(self, commands: list, results: list) -> int:
        """Track orders that rested (for cancels and requotes); return how many were rejected."""
        rejected = 0
        for cmd, events in zip(commands, results):
            for event in events:
                kind = type(event)
                if kind is OrderBooked:
                    self.live.append((cmd.account_id, cmd.market, event.order_id))
                    self.resting[event.order_id] = event.remaining
                    if cmd.account_id < self.first_account + self.makers:
                        self.quotes.setdefault(cmd.account_id, []).append((cmd.market, event.order_id))
                elif kind is Fill:
                    left = self.resting.get(event.maker_order_id)
                    if left is not None:
                        if left <= event.quantity:
                            del self.resting[event.maker_order_id]
                        else:
                            self.resting[event.maker_order_id] = left - event.quantity
                elif kind is OrderRejected:
                    rejected += 1
                    name = Reason(event.reason).name
                    self.refused[name] = self.refused.get(name, 0) + 1
        if len(self.live) > 100_000:                        # a bounded memory of resting orders
            for _, _, order_id in self.live[:50_000]:
                self.resting.pop(order_id, None)
            del self.live[:50_000]
        return rejected
