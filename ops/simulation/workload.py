"""Seeded clients: what each account asks its shard, and what it was answered.

Each simulated client is one account on the shard that owns it, with at most
one ``execute`` call outstanding; a call that fails (lost, or the shard down)
is sent again with the same request ids, as a real client retries. Commands
are drawn from the run's random generator: spot limit and market orders
(GTC and IOC, prices around the market's start price so they cross), cancels
of the client's open orders, deposits and withdrawals, supply to and
withdrawal from the lending pool, margin transfers, borrows, repays and margin
orders with auto-borrow. Now and then a client sends an acknowledged request
again: its answer must be the first one.

For the liquidator there are two more kinds of client and a price path:
- traders (two per shard, ``pro`` / ``10x``: up to 9x borrowed on equity),
  each with a cross or an isolated book of 10,000 USDT, open leveraged longs
  and shorts with auto-borrow until the borrow limit refuses them, so their
  books sit a few percent above the liquidation line;
- a market maker supplies the pools with what traders borrow, and quotes
  both sides of every market at 0.5% and 3% around the index, again after
  every publication (at once, or as soon as its previous call is answered):
  the bids and asks a liquidation's IOC orders trade against, so a
  liquidation does not wait for liquidity forever;
- the index follows one regime per seed: ``calm`` (within 1% of the start, as
  before), ``fall`` (down up to 4% a publication, to 30% of the start),
  ``rise`` (up to 4%, to 300%), ``crash`` (calm, then one drop of 25-55%:
  books jump past the line and what their collateral fetches no longer
  covers the debt, the insurance fund's case) or ``flash`` (calm, then one
  drop of 29-31% in a single publication, so in one simulated second: the
  perpetual flash crash). Every client prices its orders around the index it
  last saw published.

For the perpetual market (``BTC-USDT-PERP``, indexed on the BTC-USDT price):
- perpetual traders (two per shard, ``perp``) move 10,000 USDT into their
  perpetual wallet, choose a leverage of 10x to 20x (the second on each shard
  isolated, the first cross) and open a long of 60-90% of what that leverage
  reaches, then more positions, mostly long (four in five), with IOC orders
  3.5% through the index (both of the maker's levels) until their margin
  refuses them; now and then they top up the wallet, cut a long with a
  reduce-only IOC sell, or re-send an acknowledged request. So a crash finds
  many leveraged longs a few percent above maintenance, and their
  liquidations cascade;
- the market maker moves 5,000,000 USDT into its perpetual wallet (10x, the
  top risk tier, so it can quote both sides and carry the traders' other
  side), and quotes the perpetual market like the spot ones, cancelling its
  old perpetual quotes with ``CancelPerpOrder``: the bids a liquidation sells
  into, and the shorts ADL closes when those and the fund are not enough.
"""
from __future__ import annotations

from functools import lru_cache

from exchange.core.routing import shard_for
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.core.reasons import Reason
from exchange.messages.records import (Borrow, CancelOrder, CancelPerpOrder, Deposit, EnableMargin, OpenAccount,
                                       OrderAccepted, OrderClosed, OrderRejected, PlaceMarginOrder, PlaceOrder,
                                       PlacePerpOrder, Repay, SetMarginMode, SetPerpLeverage, SetRiskLimit,
                                       SupplyToPool, TransferMargin, TransferPerp, Withdraw, WithdrawFromPool)
from exchange.perp.rules import perp_markets

START_PRICES = {"BTC-USDT": 50_000, "ETH-USDT": 3_000}        # whole quote units per whole base
FUNDING = {"USDT": 1_000_000, "BTC": 20, "ETH": 300}           # whole units deposited at the start
MAKER_FUNDING = {"USDT": 20_000_000, "BTC": 200, "ETH": 4_000}
MAKER_SUPPLY = {"USDT": 5_000_000, "BTC": 50, "ETH": 1_000}    # lent to the pools: what traders borrow
TRADER_FUNDING = {"USDT": 50_000, "BTC": 1, "ETH": 10}
TRADER_EQUITY_USDT = 10_000                                    # moved into the trader's margin book
MAKER_LEVELS = ((50, 3), (300, 6))                 # (bps off the index, size in twentieths of a client's base funding)
REGIMES = (("calm", 25), ("fall", 20), ("rise", 15), ("crash", 20), ("flash", 20))
MAKER_ACCOUNT = 9_999
TRADER_WEIGHT = 3
PERP_TRADER_FUNDING = {"USDT": 30_000}
PERP_WALLET_USDT = 10_000                          # moved into a perpetual trader's wallet
PERP_LEVERAGE = (10, 20)
PERP_LONG = 0.8                                    # the share of perpetual positions opened long
PERP_THROUGH_BPS = 350                             # a perpetual trader's IOC limit off the index: both quote levels
MAKER_PERP_WALLET_USDT = 5_000_000
MAKER_PERP_LEVERAGE = 10
MAKER_PERP_RISK_TIER = 9                           # the top tier: its ceiling holds both sides of its quotes
CANCELS = (CancelOrder, CancelPerpOrder)


@lru_cache(maxsize=8)
def _accounts(shards: int, per_shard: int) -> list[list[int]]:
    """The first ``per_shard`` account ids (from 1) each shard owns."""
    owned: list[list[int]] = [[] for _ in range(shards)]
    account = 0
    while min(len(o) for o in owned) < per_shard:
        account += 1
        owned[shard_for(account, shards)].append(account)
    return [o[:per_shard] for o in owned]


class Client:
    """One account: its request numbers, its open orders, its acknowledged requests.
    ``kind``: ``client`` (spot, pool and margin now and then), ``trader`` (leveraged
    margin positions in ``book``: "" for the cross book, else an isolated one),
    ``perp`` (leveraged perpetual positions in ``market``: ``book`` is the market when
    isolated, "" for cross), ``maker`` (quotes around the index)."""

    def __init__(self, account: int, shard: int, kind: str = "client", book: str = "", market: str = ""):
        self.account = account
        self.shard = shard
        self.kind = kind
        self.book = book
        self.market = market                           # a perpetual trader's market
        self.leverage = 0                              # ... and leverage, once chosen
        self.name = f"{kind}:{account}"
        self.requests = 0
        self.busy = False
        self.opened = False
        self.open_orders: dict[int, str] = {}          # order id -> market
        self.acknowledged: list = []                   # commands answered (re-sent now and then)

    def request_id(self) -> int:
        self.requests += 1
        return self.account * 1_000_000 + self.requests

    def learn(self, command, events: list) -> None:
        """Track the open orders an answer reports (a cancel answered ORDER_NOT_FOUND: the
        order closed since, by a fill the client was not told of)."""
        for event in events:
            if type(event) is OrderAccepted and event.account_id == self.account:
                self.open_orders[event.order_id] = event.market
            elif type(event) is OrderClosed and event.account_id == self.account:
                self.open_orders.pop(event.order_id, None)
            elif type(event) is OrderRejected and type(command) in CANCELS \
                    and event.reason == Reason.ORDER_NOT_FOUND:
                self.open_orders.pop(command.order_id, None)


class Workload:
    """The clients of a run and the commands they send."""

    def __init__(self, config, rng, accounts_per_shard: int = 4, traders_per_shard: int = 2,
                 perp_traders_per_shard: int = 2):
        self.config = config
        self.rng = rng
        self.clients: list[Client] = []
        self.markets = [m.name for m in config.market_list]
        self.perps = {name: perp.spec for name, perp in sorted(perp_markets(config).items())}
        self.underlying = {name: next(m.name for m in config.market_list
                                      if (m.base.name, m.quote.name) == (spec.base.name, spec.quote.name))
                           for name, spec in self.perps.items()}
        margin_markets = sorted(config.margin.markets)
        perps = sorted(self.perps)
        for shard in range(config.shards):
            mine = _accounts(config.shards, accounts_per_shard + traders_per_shard + perp_traders_per_shard)[shard]
            self.clients.extend(Client(a, shard) for a in mine[:accounts_per_shard])
            for i, account in enumerate(mine[accounts_per_shard:accounts_per_shard + traders_per_shard]):
                book = "" if i % 2 == 0 else rng.choice(margin_markets)
                self.clients.append(Client(account, shard, "trader", book))
            if perps:
                for i, account in enumerate(mine[accounts_per_shard + traders_per_shard:]):
                    market = rng.choice(perps)
                    self.clients.append(Client(account, shard, "perp", market if i % 2 else "", market))
        self.maker = Client(MAKER_ACCOUNT, shard_for(MAKER_ACCOUNT, config.shards), "maker")
        self.clients.append(self.maker)
        self.regime = rng.choices([r for r, _ in REGIMES], [w for _, w in REGIMES])[0]
        self.crash_at = rng.randint(1, 4 if self.regime == "flash" else 8)   # the publication that drops
        self.publications = 0
        self.quotes_stale = False                          # the index moved since the maker's last quotes
        self.start = {m.name: START_PRICES[m.name] * 10 ** m.quote.scale for m in config.market_list}
        self.prices = dict(self.start)                     # market -> the index last published (quote minor)

    # ---- the index -----------------------------------------------------------------------
    def next_prices(self) -> dict[str, int]:
        """The next publication of the index, per market (quote minor units per whole base)."""
        rng = self.rng
        self.publications += 1
        self.quotes_stale = True
        for market, start in self.start.items():
            price = self.prices[market]
            if self.regime == "fall":
                price = max(start * 3 // 10, price * rng.randint(960, 1005) // 1000)
            elif self.regime == "rise":
                price = min(start * 3, price * rng.randint(995, 1040) // 1000)
            elif self.regime == "crash" and self.publications == self.crash_at:
                price = price * rng.randint(450, 750) // 1000
            elif self.regime == "flash" and self.publications == self.crash_at:
                price = price * rng.randint(690, 710) // 1000
            elif self.regime in ("crash", "flash") and self.publications > self.crash_at:
                price = price * rng.randint(990, 1010) // 1000
            else:
                price = start * rng.randint(990, 1010) // 1000
            self.prices[market] = price
        return dict(self.prices)

    def index(self, market: str) -> int:
        """The index last published for a spot market or a perpetual (its underlying's), quote minor."""
        return self.prices[self.underlying.get(market, market)]

    def idle(self) -> list[Client]:
        return [c for c in self.clients if not c.busy]

    def pick(self) -> Client:
        """An idle client to send the next batch (a trader three times as likely as the others)."""
        idle = self.idle()
        return self.rng.choices(idle, [TRADER_WEIGHT if c.kind in ("trader", "perp") else 1 for c in idle])[0]

    def batch(self, client: Client) -> list:
        """The next batch ``client`` sends (one to three commands; a maker's quotes)."""
        if client.kind == "maker":
            self.quotes_stale = False
            return self._quotes(client)
        if client.kind == "trader":
            return self._trader(client)
        if client.kind == "perp":
            return self._perp_trader(client)
        if not client.opened:
            client.opened = True
            commands = [OpenAccount(client.request_id(), 0, client.account)]
            commands += [Deposit(client.request_id(), 0, client.account, asset, units * self._unit(asset))
                         for asset, units in FUNDING.items()]
            commands.append(EnableMargin(client.request_id(), 0, client.account))
            usdt = self._unit("USDT")
            commands.append(SupplyToPool(client.request_id(), 0, client.account, "USDT", 200_000 * usdt))
            commands.append(TransferMargin(client.request_id(), 0, client.account, "USDT", 100_000 * usdt))
            return commands
        commands = [self.command(client) for _ in range(self.rng.choice((1, 1, 2, 3)))]
        if client.acknowledged and self.rng.random() < 0.1:       # a retry of something answered
            commands.append(self.rng.choice(client.acknowledged))
        return commands

    def command(self, client: Client):
        rng, account = self.rng, client.account
        roll = rng.random()
        market = rng.choice(self.markets)
        spec = self.config.markets[market]
        if roll < 0.45:
            return self._order(client, market, spec, PlaceOrder)
        if roll < 0.50:
            side = rng.choice((Side.BUY, Side.SELL))
            return PlaceOrder(client.request_id(), 0, account, market, int(side), int(OrderType.MARKET), 0,
                              rng.randint(1, 10) * spec.lot_minor, int(TimeInForce.IOC))
        if roll < 0.65 and client.open_orders:
            order_id = rng.choice(sorted(client.open_orders))
            return CancelOrder(client.request_id(), 0, account, client.open_orders[order_id], order_id)
        if roll < 0.70:
            return Deposit(client.request_id(), 0, account, rng.choice(list(FUNDING)), rng.randint(1, 10 ** 6))
        if roll < 0.75:
            asset = rng.choice(list(FUNDING))
            return Withdraw(client.request_id(), 0, account, asset, rng.randint(1, 3) * self._unit(asset) // 10)
        if roll < 0.80:
            return SupplyToPool(client.request_id(), 0, account, "USDT", rng.randint(1, 500) * self._unit("USDT"))
        if roll < 0.83:
            return WithdrawFromPool(client.request_id(), 0, account, "USDT", rng.randint(1, 300) * self._unit("USDT"))
        if roll < 0.87:
            return TransferMargin(client.request_id(), 0, account, "USDT", rng.randint(100, 5_000) * self._unit("USDT"),
                                  rng.random() < 0.8)
        if roll < 0.91:
            return Borrow(client.request_id(), 0, account, "USDT", rng.randint(10, 2_000) * self._unit("USDT"))
        if roll < 0.94:
            return Repay(client.request_id(), 0, account, "USDT", rng.randint(10, 3_000) * self._unit("USDT"))
        return self._order(client, market, spec, PlaceMarginOrder)

    def _order(self, client: Client, market: str, spec, kind):
        rng = self.rng
        side = rng.choice((Side.BUY, Side.SELL))
        mid_ticks = self.prices[market] // spec.tick_minor
        price = (mid_ticks + rng.randint(-8, 8)) * spec.tick_minor
        quantity = rng.randint(1, 20) * spec.lot_minor
        tif = TimeInForce.IOC if rng.random() < 0.2 else TimeInForce.GTC
        return kind(client.request_id(), 0, client.account, market, int(side), int(OrderType.LIMIT), price,
                    quantity, int(tif))

    def _unit(self, asset: str) -> int:
        return 10 ** self.config.assets[asset].scale

    # ---- the market maker and the traders --------------------------------------------------
    def _opening(self, client: Client, funding: dict) -> list:
        client.opened = True
        commands = [OpenAccount(client.request_id(), 0, client.account)]
        return commands + [Deposit(client.request_id(), 0, client.account, asset, units * self._unit(asset))
                           for asset, units in funding.items()]

    def _quotes(self, client: Client) -> list:
        """Cancel every open quote (a perpetual one with ``CancelPerpOrder``); bid and ask at
        each of ``MAKER_LEVELS`` around the index, in every spot and perpetual market."""
        commands, account = [], client.account
        if not client.opened:
            commands = self._opening(client, MAKER_FUNDING)
            commands += [SupplyToPool(client.request_id(), 0, account, asset, units * self._unit(asset))
                         for asset, units in MAKER_SUPPLY.items()]
            for market, spec in self.perps.items():
                commands += [TransferPerp(client.request_id(), 0, account, spec.quote.name,
                                          MAKER_PERP_WALLET_USDT * self._unit(spec.quote.name)),
                             SetPerpLeverage(client.request_id(), 0, account, market, MAKER_PERP_LEVERAGE),
                             SetRiskLimit(client.request_id(), 0, account, market, MAKER_PERP_RISK_TIER)]
        for order_id in sorted(client.open_orders):
            market = client.open_orders[order_id]
            cancel = CancelPerpOrder if market in self.perps else CancelOrder
            commands.append(cancel(client.request_id(), 0, account, market, order_id))
        quoted = [(m, self.config.markets[m], PlaceOrder) for m in self.markets]
        quoted += [(m, spec, PlacePerpOrder) for m, spec in self.perps.items()]
        for market, spec, kind in quoted:
            base_units = FUNDING[spec.base.name]
            for bps, size in MAKER_LEVELS:
                quantity = base_units * size // 20 * 10 ** spec.base.scale // spec.lot_minor * spec.lot_minor
                for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                    ticks = self.index(market) * (10_000 + sign * bps) // 10_000 // spec.tick_minor
                    commands.append(kind(client.request_id(), 0, account, market, int(side), int(OrderType.LIMIT),
                                         ticks * spec.tick_minor, quantity, int(TimeInForce.GTC)))
        return commands

    def _trader(self, client: Client) -> list:
        """Open the trader's margin book, then leveraged positions (a long or a short of
        two to seven times the book's equity, borrowed as needed), now and then a repay."""
        rng, account, usdt = self.rng, client.account, self._unit("USDT")
        if not client.opened:
            commands = self._opening(client, TRADER_FUNDING)
            commands.append(EnableMargin(client.request_id(), 0, account, "pro", "10x"))
            commands.append(TransferMargin(client.request_id(), 0, account, "USDT", TRADER_EQUITY_USDT * usdt,
                                           True, client.book))
            return commands + [self._position(client)]
        if rng.random() < 0.15:
            asset = rng.choice(["USDT"] + [self.config.markets[m].base.name for m in self.markets])
            return [Repay(client.request_id(), 0, account, asset, rng.randint(1, 100) * self._unit(asset) // 100,
                          client.book)]
        return [self._position(client)]

    def _position(self, client: Client):
        """A leveraged IOC long or short in the trader's book, borrowing what it lacks."""
        rng, account, usdt = self.rng, client.account, self._unit("USDT")
        market = client.book or rng.choice(sorted(self.config.margin.markets))
        spec = self.config.markets[market]
        side = rng.choice((Side.BUY, Side.SELL))
        notional = rng.randint(2, 7) * TRADER_EQUITY_USDT * usdt
        quantity = max(spec.min_lots, notional * 10 ** spec.base.scale // self.prices[market] // spec.lot_minor)
        quantity = min(quantity, spec.max_lots) * spec.lot_minor
        ticks = self.prices[market] * (1_000 + (40 if side == Side.BUY else -40)) // 1_000 // spec.tick_minor
        return PlaceMarginOrder(client.request_id(), 0, account, market, int(side), int(OrderType.LIMIT),
                                ticks * spec.tick_minor, quantity, int(TimeInForce.IOC), bool(client.book))

    def _perp_trader(self, client: Client) -> list:
        """Fund the perpetual wallet, set the margin mode and a leverage of 10x to 20x, then
        leveraged positions; now and then a top-up, a reduce-only cut or a re-sent request."""
        rng, account, market = self.rng, client.account, client.market
        asset = self.perps[market].quote.name
        if not client.opened:
            commands = self._opening(client, PERP_TRADER_FUNDING)
            commands.append(TransferPerp(client.request_id(), 0, account, asset, PERP_WALLET_USDT * self._unit(asset)))
            if client.book:
                commands.append(SetMarginMode(client.request_id(), 0, account, market, True))
            client.leverage = rng.randint(*PERP_LEVERAGE)
            commands.append(SetPerpLeverage(client.request_id(), 0, account, market, client.leverage))
            return commands + [self._perp_position(client, market, opening=True)]
        roll = rng.random()
        if roll < 0.05 and client.acknowledged:
            return [rng.choice(client.acknowledged)]
        if roll < 0.12:
            return [TransferPerp(client.request_id(), 0, account, asset, rng.randint(1, 3) * 1_000 * self._unit(asset))]
        if roll < 0.22:
            return [self._perp_position(client, market, reduce=True)]
        return [self._perp_position(client, market)]

    def _perp_position(self, client: Client, market: str, reduce: bool = False, opening: bool = False):
        """An IOC ``PERP_THROUGH_BPS`` through the index: the opening one a long of 60% to 90% of
        the wallet's leveraged reach, then mostly longs of 30% to 90% (refused once the margin is
        used up), or a reduce-only sell cutting a long by half that much."""
        rng, spec = self.rng, self.perps[market]
        side = Side.SELL if reduce or (not opening and rng.random() >= PERP_LONG) else Side.BUY
        tenths = rng.randint(6, 9) if opening else rng.randint(3, 9)
        notional = PERP_WALLET_USDT * self._unit(spec.quote.name) * client.leverage * tenths // (20 if reduce else 10)
        index = self.index(market)
        lots = min(max(spec.min_lots, notional * 10 ** spec.base.scale // index // spec.lot_minor), spec.max_lots)
        ticks = index * (10_000 + (PERP_THROUGH_BPS if side == Side.BUY else -PERP_THROUGH_BPS)) // 10_000 \
            // spec.tick_minor
        return PlacePerpOrder(client.request_id(), 0, client.account, market, int(side), int(OrderType.LIMIT),
                              ticks * spec.tick_minor, lots * spec.lot_minor, int(TimeInForce.IOC), reduce)
