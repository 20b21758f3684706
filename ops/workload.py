"""The load test's workload model (issue 17): who trades, where, and how, over the whole venue.

Activity is **Zipf-distributed** (exponent ``--zipf``, 0.6 by default; 0: uniform):
account k of N is the sender with weight 1/k^s, market j of M with weight 1/j^s, so a
few accounts and the first markets carry most of the traffic, as on a real venue.

**Market makers** are their own accounts: the first ``makers(N)`` (1%, at least 2) open
with the ``market_maker`` fee tier, which the rulebook's order-rate limits exempt
(``config/risk.toml``), and only they quote. The takers, sweepers and cancellers are the
other accounts, Zipf-weighted; a steeper ``--zipf`` concentrates them on a few accounts
until the rulebook's per-account rate limits refuse them (RATE_LIMITED, counted in
``refused``), as it would a real bot.

Each command comes from one of seven **roles**, drawn by the mix (``--mix``):

- **maker**: quotes both sides a few ticks from the mid (GTC), and **requotes**:
  half of its turns cancel one of its resting quotes before placing the next;
- **taker**: a limit IOC a few ticks through the mid, for a few lots;
- **sweeper**: a large IOC up to 40 ticks through, taking several levels;
- **canceller**: cancels a random resting order (spot or margin) the generator saw booked
  and not filled since (one filled in between is refused ORDER_NOT_FOUND, as for anyone);
- **margin**: a margin trader's ``PlaceMarginOrder`` on a ``[margin] markets`` market,
  from its cross margin book, auto-borrowing and auto-repaying: 85% IOC a few ticks
  through the mid, 15% GTC a few ticks behind it (the cancellers cancel those);
- **perp**: on a perpetual market of the config, a perp maker's GTC quote 0.5-4 bps
  from the mark, or its requote (``CancelPerpOrder`` of an old quote, always once it has
  ``PERP_QUOTES_MAX`` resting), or (40% of the turns) a perp taker's IOC 0.5-6 bps
  through the mark. Perpetual orders are refused outside a band around the index and
  mark, so they are priced from ``marks`` (market -> mark in ticks), which the driver
  refreshes from the perpetual market actors;
- **otc**: a request for quote to the OTC desk, accepted at once (``OtcTrade``: crypto
  payment, t+0), buying or selling 1.1x the pair's ``min_notional`` up to 10x it (at most
  0.9x its ``max_notional``) at the generator's mid: 1.1-10 BTC on the default desk.

The default mix is the whole venue, weighted as order flow on a spot-first venue:
``maker=0.5,taker=0.18,sweeper=0.04,canceller=0.18,margin=0.05,perp=0.04,otc=0.01``.
The spot roles keep the old mix's proportions (``SPOT_MIX``: 0.55/0.2/0.05/0.2, which the
scaling benchmark keeps, so its figures stay comparable); margin and perpetual flow is a
few percent each; OTC is 1%, a block trade being far larger than an order and the desk a
single actor (its RFQ round trip is ~12 ms, ``ops/bench/otc.py``). A role whose product the
config lacks (no loaded ``[margin] markets`` market with lending pools, no ``[perp.*]``
market, no ``[otc]`` desk pair among the loaded markets) gets weight 0 and the others are
renormalised (``unavailable``).

**The venue roles' accounts** are fixed sets beside the ``--accounts`` ones (7,000,000 and
up; the rulebook's limits are per account, so each set is large enough that every account
stays well under the request and unfilled-order rates and the cancel ladder at ~15 k
commands/s): a lender supplying every lending pool, ``len(MARGIN_TRADERS)`` margin traders
(100,000 USDT in the cross margin book, user level L2 at 3x when the config has it),
perpetual makers (``market_maker`` tier) and takers (a million of the settlement asset in
the perpetual wallet, leverage 5), OTC clients (a billion of each pair's quote asset, a
million of each base: many trades are in flight at once), and the desk's own account
(``[otc] desk_account``) stocked mid-way in each ``[otc.inventory.*]`` range (353 BTC,
6,000 ETH) and 100 M of the other assets. ``setup_commands`` opens and funds them with
fixed request ids, so running it twice changes nothing.

**Seeded** (``--seed``): the same seed sends the same commands for the spot, margin and OTC
roles (given the same answers: cancels follow what rested). Perpetual prices follow the
live mark, so that part is not repeatable; it draws from its own random stream so the
others do not depend on it (except a perp turn before any mark, which is a taker's).
``sent`` counts each role's commands as sent (a canceller with nothing to cancel, or a perp
turn without a mark, sends a taker's order and counts as one), ``acknowledged`` the
answered ones not refused, ``refused`` the refusals by reason. ``market_of`` says which
market a command is for (the per-market split of the report; an OTC trade's is
``"OTC <pair>"``).
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

from exchange.core.reasons import Reason
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.messages.records import (CancelOrder, CancelPerpOrder, Deposit, Fill, OpenAccount, OrderBooked,
                                       OrderRejected, PlaceMarginOrder, PlaceOrder, PlacePerpOrder, RequestRejected,
                                       SetPerpLeverage, TransferPerp)
from exchange.otc.rules import otc_rules
from exchange.perp.rules import perp_markets
from ops.margin_setup import lender, margin_trader

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, GTC, IOC = int(OrderType.LIMIT), int(TimeInForce.GTC), int(TimeInForce.IOC)
ROLES = ("maker", "taker", "sweeper", "canceller", "margin", "perp", "otc")
VENUE_ROLES = ("margin", "perp", "otc")
SPOT_MIX = {"maker": 0.55, "taker": 0.2, "sweeper": 0.05, "canceller": 0.2}
DEFAULT_MIX = {"maker": 0.5, "taker": 0.18, "sweeper": 0.04, "canceller": 0.18, "margin": 0.05, "perp": 0.04,
               "otc": 0.01}
DEFAULT_ZIPF = 0.6
MAKER_TIER = "market_maker"

LENDER = 7_000_000
MARGIN_TRADERS = range(7_000_001, 7_000_101)
PERP_MAKERS = range(7_100_001, 7_100_005)
PERP_TAKERS = range(7_100_101, 7_100_151)
OTC_CLIENTS = range(7_200_001, 7_200_011)
MARGIN_BOOK_USDT = 100_000          # whole USDT in each margin trader's cross book
MARGIN_LEVEL = ("L2", "3x")         # user level and leverage tier, when the config has them
MARGIN_IOC_SHARE = 0.85
PERP_LEVERAGE = 5
PERP_TAKER_SHARE = 0.4
PERP_QUOTES_MAX = 20                # a perp maker cancels before quoting again past this many
OTC_PREFIX = "OTC "
DESK_STOCK_OTHER = 10**8            # whole units of a desk asset without an [otc.inventory] range
OTC_CLIENT_QUOTE = 10**9            # whole units of a pair's quote asset an OTC client holds (a million of a base)
MILLION = 10**6


@dataclass(frozen=True, slots=True)
class OtcTrade:
    """An RFQ to the OTC desk, accepted at once: ``side`` "buy" or "sell" ``quantity`` base
    minor units of ``pair``, paid in crypto, t+0. Not a shard command: the drivers send it
    to the desk actor (``inquire`` then ``accept``)."""
    request_id: str
    account_id: int
    market: str                 # "OTC BTC-USDT": its own row in the per-market split
    side: str
    quantity: int

    @property
    def pair(self) -> str:
        return self.market.removeprefix(OTC_PREFIX)


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
    return _normalised(mix)


def available_mix(mix: dict, offered: set) -> tuple[dict[str, float], list[str]]:
    """``mix`` with the venue roles not in ``offered`` at weight 0, renormalised; and those
    roles (``ValueError`` if nothing is left)."""
    dropped = [role for role in VENUE_ROLES if mix.get(role) and role not in offered]
    return _normalised({role: 0.0 if role in dropped else mix.get(role, 0.0) for role in ROLES}), dropped


def _normalised(mix: dict) -> dict[str, float]:
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
    """Seeded commands for ``accounts`` (``first_account``..``accounts``) over ``markets``, and
    for the venue roles' own accounts (``config``: the client's by default)."""

    def __init__(self, client, markets: list, accounts: int, seed: int, first_account: int = 1,
                 zipf: float = DEFAULT_ZIPF, mix: dict | None = None, config=None) -> None:
        if accounts >= LENDER:
            raise ValueError(f"accounts must stay below {LENDER:,} (the venue roles' accounts)")
        self.client = client
        self.config = config = config or client.config
        self.rng = random.Random(seed)
        self.perp_rng = random.Random(seed + 1)        # perpetual prices follow the live mark: their own stream
        self.markets = markets
        self.first_account = first_account
        self.accounts = accounts
        self.makers = makers(accounts - first_account + 1)     # first_account.. first_account + makers - 1
        self.pick_maker = ZipfChoice(self.makers, zipf, self.rng)
        self.pick_account = ZipfChoice(accounts - first_account + 1 - self.makers, zipf, self.rng)
        self.pick_market = ZipfChoice(len(markets), zipf, self.rng)
        self.margin_markets = [m for m in markets if m.name in config.margin.markets
                               and m.base.name in config.lending and m.quote.name in config.lending]
        self.pick_margin_market = ZipfChoice(max(1, len(self.margin_markets)), zipf, self.rng)
        self.perps = {name: perp.spec for name, perp in sorted(perp_markets(config).items())}
        self.perp_names = list(self.perps)
        self.otc = otc_rules(config)
        self.otc_pairs = [self.otc.pairs[m.name] for m in markets
                          if self.otc and self.otc.desk_account and m.name in self.otc.pairs]
        self.pick_otc_pair = ZipfChoice(max(1, len(self.otc_pairs)), zipf, self.rng)
        offered = {role for role, there in (("margin", self.margin_markets), ("perp", self.perps),
                                            ("otc", self.otc_pairs)) if there}
        self.mix, self.unavailable = available_mix(mix or DEFAULT_MIX, offered)
        self.roles = [role for role in ROLES if self.mix[role] > 0]
        self.role_weights = list(itertools.accumulate(self.mix[r] for r in self.roles))
        self.role_commands = [getattr(self, f"_{role}") for role in self.roles]
        self.mids = {m.name: (50_000 if m.base.name == "BTC" else 3_000) * 100 for m in markets}  # ticks
        self.marks: dict[str, int] = {}                # perpetual market -> mark (ticks), the driver's to refresh
        self.live: list[tuple[int, str, int]] = []     # (account, market, order id) seen resting
        self.resting: dict[int, int] = {}               # order id -> remaining, as last seen
        self.quotes: dict[int, list[tuple[str, int]]] = {}   # a maker's (spot or perpetual) resting quotes
        self.pending: dict[str, str] = {}               # request id -> role, until observed
        self.counter = 0
        self.sent = dict.fromkeys(ROLES, 0)
        self.acknowledged = dict.fromkeys(ROLES, 0)     # answered and not refused
        self.refused: dict[str, int] = {}               # reason -> commands refused with it

    @property
    def venue(self) -> bool:
        """Whether a margin, perpetual or OTC role is on (they need setup and the index feed)."""
        return any(role in VENUE_ROLES for role in self.roles)

    @property
    def follows_marks(self) -> bool:
        return "perp" in self.roles

    def market_of(self, command) -> str:
        return command.market

    def batch(self, size: int) -> list:
        out = []
        prefix = self.client.next_request_id()
        rng = self.rng
        for _ in range(size):
            self.counter += 1
            request_id = f"{prefix}:{self.counter}"
            n = bisect.bisect_left(self.role_weights, rng.random() * self.role_weights[-1])
            role, command = self.roles[n], self.role_commands[n](request_id)
            if command is None:                     # nothing to cancel, no mark yet: a taker's turn
                role, command = "taker", self._taker(request_id)
            self.sent[role] += 1
            self.pending[request_id] = role
            out.append(command)
        return out

    # ---- spot -------------------------------------------------------------------------------
    def _mid(self, spec) -> int:
        if self.rng.random() < 0.01:                        # the mid walks
            self.mids[spec.name] += self.rng.choice((-1, 1))
        return self.mids[spec.name]

    def _order(self, request_id, side: int, offset: int, lots: int, tif: int, account: int | None = None):
        spec = self.markets[self.pick_market.draw()]
        mid = self._mid(spec)
        account = account if account is not None else self.first_account + self.makers + self.pick_account.draw()
        ticks = mid + (offset if side == BUY else -offset)
        return PlaceOrder(request_id, 0, account, spec.name, side, LIMIT, max(1, ticks) * spec.tick_minor,
                          lots * spec.min_lots * spec.lot_minor, tif)

    def _maker(self, request_id):
        account = self.first_account + self.pick_maker.draw()
        cancel = self._requote(account, CancelOrder, request_id, self.rng, 0)
        if cancel is not None:
            return cancel
        side = BUY if self.rng.random() < 0.5 else SELL
        return self._order(request_id, side, -self.rng.randint(1, 8), self.rng.randint(1, 10), GTC, account)

    def _requote(self, account: int, kind, request_id, rng: random.Random, most: int):
        """Half the time (always past ``most`` quotes, when ``most``): cancel one of the
        maker's resting quotes (``kind``), or None."""
        mine = self.quotes.get(account)
        while mine and ((most and len(mine) > most) or rng.random() < 0.5):
            market, order_id = mine.pop(rng.randrange(len(mine)))
            if self.resting.pop(order_id, None) is not None:
                return kind(request_id, 0, account, market, order_id)
        return None

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
        return None

    # ---- the rest of the venue --------------------------------------------------------------
    def _margin(self, request_id):
        rng = self.rng
        spec = self.margin_markets[self.pick_margin_market.draw()]
        mid = self._mid(spec)
        account = MARGIN_TRADERS[rng.randrange(len(MARGIN_TRADERS))]
        side = BUY if rng.random() < 0.5 else SELL
        offset, tif = (rng.randint(1, 6), IOC) if rng.random() < MARGIN_IOC_SHARE else (-rng.randint(1, 8), GTC)
        ticks = mid + (offset if side == BUY else -offset)
        return PlaceMarginOrder(request_id, 0, account, spec.name, side, LIMIT, max(1, ticks) * spec.tick_minor,
                                rng.randint(1, 10) * spec.min_lots * spec.lot_minor, tif, isolated=False,
                                auto_borrow=True, auto_repay=True)

    def _perp(self, request_id):
        rng = self.perp_rng
        market = self.perp_names[rng.randrange(len(self.perp_names))]
        mark = self.marks.get(market)
        if not mark:
            return None
        spec = self.perps[market]
        step = max(1, mark // 20_000)                   # half a basis point of the mark, in ticks
        side = BUY if rng.random() < 0.5 else SELL
        lots = rng.randint(1, 5) * 10 * spec.min_lots
        if rng.random() < PERP_TAKER_SHARE:
            account = PERP_TAKERS[rng.randrange(len(PERP_TAKERS))]
            offset, tif = rng.randint(1, 12) * step, IOC
        else:
            account = PERP_MAKERS[rng.randrange(len(PERP_MAKERS))]
            cancel = self._requote(account, CancelPerpOrder, request_id, rng, PERP_QUOTES_MAX)
            if cancel is not None:
                return cancel
            offset, tif = -rng.randint(1, 8) * step, GTC
        ticks = mark + (offset if side == BUY else -offset)
        return PlacePerpOrder(request_id, 0, account, market, side, LIMIT, max(1, ticks) * spec.tick_minor,
                              lots * spec.lot_minor, tif)

    def _otc(self, request_id):
        rng = self.rng
        pair = self.otc_pairs[self.pick_otc_pair.draw()]
        spec = pair.spec
        lot_value = max(1, self.mids[spec.name] * spec.tick_minor * spec.lot_minor // 10 ** spec.base.scale)
        low = -(-pair.min_notional * 11 // (10 * lot_value))
        high = min(pair.max_notional * 9 // 10, pair.min_notional * 10) // lot_value
        account = OTC_CLIENTS[rng.randrange(len(OTC_CLIENTS))]
        side = "buy" if rng.random() < 0.5 else "sell"
        return OtcTrade(request_id, account, OTC_PREFIX + spec.name, side,
                        rng.randint(low, max(low, high)) * spec.lot_minor)

    # ---- setup ------------------------------------------------------------------------------
    def setup_commands(self) -> list:
        """Commands that open and fund the accounts of the venue roles in the mix (fixed
        request ids ``lt-venue:...``: running them twice changes nothing)."""
        config, tag, out = self.config, "lt-venue", []
        whole = {a.name: 10 ** a.scale for a in config.asset_list}
        if "margin" in self.roles:
            pools = sorted({a for m in self.margin_markets for a in (m.base.name, m.quote.name)})
            out += lender(f"{tag}:lender", LENDER, 0, {a: MILLION * whole[a] for a in pools})
            limits = config.margin.borrow_limits_ppm
            level, tier = MARGIN_LEVEL if MARGIN_LEVEL[1] in limits.get(MARGIN_LEVEL[0], {}) else ("", "")
            for account in MARGIN_TRADERS:
                out += margin_trader(f"{tag}:margin", account, 0, MARGIN_BOOK_USDT * whole["USDT"], level, tier)
        if "perp" in self.roles:
            settle = sorted({spec.quote.name for spec in self.perps.values()})
            perps = perp_markets(config)
            for account in (*PERP_MAKERS, *PERP_TAKERS):
                tier = MAKER_TIER if account in PERP_MAKERS else ""
                out.append(OpenAccount(f"{tag}:open:{account}", 0, account, tier))
                for asset in settle:
                    out += [Deposit(f"{tag}:fund:{account}:{asset}", 0, account, asset, MILLION * whole[asset]),
                            TransferPerp(f"{tag}:perp:{account}:{asset}", 0, account, asset, MILLION * whole[asset])]
                out += [SetPerpLeverage(f"{tag}:leverage:{account}:{name}", 0, account, name,
                                        min(PERP_LEVERAGE, perp.tiers.max_leverage(0))) for name, perp in perps.items()]
        if "otc" in self.roles:
            assets = sorted({a for p in self.otc_pairs for a in (p.spec.base.name, p.spec.quote.name)})
            limits = self.otc.inventory_limits or {}
            desk = self.otc.desk_account
            quotes = {p.spec.quote.name for p in self.otc_pairs}
            for account in (*OTC_CLIENTS, desk):
                out.append(OpenAccount(f"{tag}:open:{account}", 0, account))
                for asset in assets:
                    if account != desk:                        # a client pays for many block trades at once
                        amount = (OTC_CLIENT_QUOTE if asset in quotes else MILLION) * whole[asset]
                    else:                                      # mid-way in its inventory range
                        amount = sum(limits[asset]) // 2 if asset in limits else DESK_STOCK_OTHER * whole[asset]
                    out.append(Deposit(f"{tag}:fund:{account}:{asset}", 0, account, asset, amount))
        return out

    # ---- answers ----------------------------------------------------------------------------
    def observe(self, commands: list, results: list) -> int:
        """Track orders that rested (for cancels and requotes), count each role's acknowledged
        commands and the refusals by reason; return how many were rejected. An OTC trade's
        result is the desk's answer (a dict), a shard command's its events."""
        rejected = 0
        first_maker, end_maker = self.first_account, self.first_account + self.makers
        for cmd, answer in zip(commands, results):
            role = self.pending.pop(cmd.request_id, None)
            kind = type(cmd)
            if kind is OtcTrade:
                if answer.get("ok"):
                    self.acknowledged["otc"] += 1
                else:
                    rejected += 1
                    self._refuse(answer.get("reason", "UNKNOWN"))
                continue
            refused = False
            for event in answer:
                event_kind = type(event)
                if event_kind is OrderBooked:
                    self.resting[event.order_id] = event.remaining
                    if kind is PlacePerpOrder:
                        if cmd.account_id in PERP_MAKERS:
                            self.quotes.setdefault(cmd.account_id, []).append((cmd.market, event.order_id))
                        continue
                    self.live.append((cmd.account_id, cmd.market, event.order_id))
                    if first_maker <= cmd.account_id < end_maker:
                        self.quotes.setdefault(cmd.account_id, []).append((cmd.market, event.order_id))
                elif event_kind is Fill:
                    left = self.resting.get(event.maker_order_id)
                    if left is not None:
                        if left <= event.quantity:
                            del self.resting[event.maker_order_id]
                        else:
                            self.resting[event.maker_order_id] = left - event.quantity
                elif event_kind is OrderRejected or event_kind is RequestRejected:   # (the market's, for a cancel)
                    rejected += 1
                    refused = True
                    self._refuse(Reason(event.reason).name)
            if not refused and role is not None:
                self.acknowledged[role] += 1
        if len(self.live) > 100_000:                        # a bounded memory of resting orders
            for _, _, order_id in self.live[:50_000]:
                self.resting.pop(order_id, None)
            del self.live[:50_000]
        if len(self.pending) > 1_000_000:                   # (a caller that never observes)
            self.pending.clear()
        return rejected

    def _refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def summary(self) -> dict:
        """The workload as the result reports it."""
        return {"mix": {r: round(w, 4) for r, w in self.mix.items() if w}, "unavailable": self.unavailable,
                "sent": {r: n for r, n in self.sent.items() if r in self.roles or n},
                "acknowledged": {r: n for r, n in self.acknowledged.items() if r in self.roles or n},
                "refused": dict(self.refused)}
