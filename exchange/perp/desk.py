"""The perpetual desk: perpetual wallets, orders and positions of one shard's accounts.

A product plugged into the ``AccountShard`` (``exchange.accounts.product``;
``exchange/venue.py`` plugs it when the config has ``[perp.*]`` markets). Its
links are the perpetual markets: a ``MarketEngine`` per market matches its
orders exactly as a spot market does, and the fills come back here, where they
move positions instead of assets.

**Wallets.** Each account has, per settlement asset, ``cash`` (moved in and
out of the spot account with ``TransferPerp``; realized PnL, fees and funding
land here) and ``held`` (the part of ``cash`` held for open orders).
Isolated positions carry their own ``margin``, moved out of ``cash`` as they
open and back as they close. PnL is zero-sum between accounts, but it is
paid when a position closes, and the other side of a close may be opening:
until every position is closed, open positions owe each other
``sum(lots * mark * k - basis)``, which is ``-sum(basis)`` at any mark (open
interest nets to zero). So what the desk holds in an asset is ``cash +
isolated margins - sum(basis)`` (``totals``): fees go to the shard's fee
account, and every unit is conserved at every step.

**Orders.** ``PlacePerpOrder`` runs the spot order's checks on the
perpetual's grid (``AccountShard.order_terms``), then, in this order:
NO_MARK_PRICE, MARK_INDEX_DIVERGED (5.2.2.5: while the mark is further from
the index than the band, an order priced beyond the mark, away from the
index; orders toward the index pass, so the book can follow it back),
PRICE_OUTSIDE_LISTING_BAND
(4.2.7: a new contract's first minutes), REDUCE_ONLY_WOULD_INCREASE,
POSITION_LIMIT_EXCEEDED (4.3.1: the market's limit, or with a risk rulebook its
tiers by collateral and an operator's hedge exemptions, ``_position_limit``), RISK_LIMIT_EXCEEDED (4.3.2: the worst-case
exposure of the order's side, at the higher of its price and the mark, under
the chosen tier's ceiling) and INSUFFICIENT_BALANCE. An order holds, per lot,
its initial margin (the notional at the higher of its price and the mark over
the leverage, rounded up; none for reduce-only) and its worst taker fee at
that price. A fill releases its lots' share of the hold; the position moves
(``Position.fill``), the realized PnL and the fee settle in ``cash``, and an
isolated position's margin grows by the opened lots' initial margin and
gives back the closed lots' share (rounded down: the account receives it).

**Settings.** ``SetPerpLeverage`` (INVALID_LEVERAGE, LEVERAGE_ABOVE_TIER),
``SetRiskLimit`` (INVALID_RISK_LIMIT, RISK_LIMIT_BELOW_POSITION,
LEVERAGE_ABOVE_TIER), ``SetMarginMode`` (POSITION_OPEN while a position or an
order is open). A rejection changes nothing.

**Prices.** Margin is valued at the mark, never the last trade: the desk
keeps each market's (index, mark) from its ``MarkUpdated`` events (the market
computes it, ``exchange.perp.pricer``), in seq order with the fills.

**Zones** (rulebook 4.3.2): at every mark, each position it values is healthy, under
the warning line ((maintenance + initial) / 2) or at or under maintenance; a change
is a ``PerpMarginZoneChanged`` on the account's stream.

**Funding** (``FundingDue``, a market event in seq order with the fills): every
position pays or receives its per-lot funding (``exchange.perp.funding``).

**Liquidation** (``exchange.perp.liquidation``): the liquidator's commands take a
position over at the mark, close it (orders, ADL) and finish it; the desk
settles their fills into the liquidation's record.

**Fee share** (``exchange.perp.fees``): the desk counts each market's fees
(``fee_income``) and what ``SweepPerpFees`` moved out of the fee account for
the market's insurance fund (``fee_swept``).

**Emergency measures**: an operator can raise a market's maintenance rate for
now (``exchange.perp.maintenance``: ``raised``, the markets in force beside
the ``configured`` ones) and pay a compensation out of its fund
(``exchange.perp.compensation``: ``compensated``, the last payment applied).
"""
from __future__ import annotations

from bisect import bisect_left
from fractions import Fraction

from exchange.accounts.ledger import Ledger
from exchange.accounts.pricing import PriceContext
from exchange.config import ExchangeConfig
from exchange.core.money import INT64_MAX, PPM, mul_div_ceil
from exchange.core.reasons import CloseReason, Reason
from exchange.matching.orders import BUY, SELL, OrderType, TimeInForce
from exchange.messages.records import (CancelPerpOrder, CancelRequest, CreditCompensation, Fill, FundingDue,
                                       FundingPaid, OrderAccepted,
                                       MarkUpdated, OrderBooked, OrderClosed, OrderRejected, PerpLiquidationStage,
                                       PerpMarginZoneChanged,
                                       PerpLiquidationUpdate, PerpSettingsChanged, PerpTransferred, PlacePerpOrder,
                                       PositionChanged, RequestRejected, SetMarginMode, SetPerpLeverage, SetRiskLimit,
                                       SetMaintenanceMargin, SubmitOrder, SweepPerpFees, TransferPerp)
from exchange.perp import adl, compensation, fees, liquidation as liquidations, maintenance
from exchange.perp.funding import payments
from exchange.perp.mark import diverged
from exchange.perp.position import MarginMode, Position
from exchange.perp.prices import bankruptcy_price, equity as equity_at, liquidation_price, warning_price
from exchange.perp.rules import PerpMarket
from exchange.perp.zones import ZoneIndex

MARKET = int(OrderType.MARKET)
IOC = int(TimeInForce.IOC)
REJECTED = int(CloseReason.REJECTED)
RERANK_PPM = 1_000          # the ADL ranking is redone once the mark moved 0.1% from where it was ranked
POSITION_RULE = "R-4.3.1-position-limit"    # cited when the shard runs a risk rulebook (exchange.risk.gate)


class PerpAccount:
    __slots__ = ("account_id", "cash", "held", "positions", "orders")

    def __init__(self, account_id: int, assets: int):
        self.account_id = account_id
        self.cash = [0] * assets
        self.held = [0] * assets
        self.positions: dict[str, Position] = {}
        self.orders: dict[int, PerpOrder] = {}           # this account's open orders (an index of the desk's)

    def canonical(self) -> tuple:
        return (self.account_id, tuple(self.cash), tuple(self.held),
                tuple((m, _position_canonical(p)) for m, p in sorted(self.positions.items())))


class PerpOrder:
    __slots__ = ("order_id", "account_id", "market", "side", "price", "total", "remaining", "per_lot", "held",
                 "reduce_only", "request_id", "client_order_id", "acknowledged", "liquidation", "order_type", "tif")

    def __init__(self, order_id, account_id, market: PerpMarket, side, price, lots, per_lot, reduce_only,
                 request_id, client_order_id, liquidation: int = 0, order_type: int = 1, tif: int = 1):
        self.order_id = order_id
        self.account_id = account_id
        self.market = market
        self.side = side
        self.price = price              # ticks
        self.total = self.remaining = lots
        self.per_lot = per_lot          # held per lot: initial margin and worst taker fee
        self.held = lots * per_lot
        self.reduce_only = reduce_only
        self.request_id = request_id
        self.client_order_id = client_order_id
        self.acknowledged = False
        self.liquidation = liquidation  # > 0: closes that liquidation's position (``exchange.perp.liquidation``)
        self.order_type = order_type    # OrderType and TimeInForce, as placed (for the history and the API)
        self.tif = tif

    def canonical(self) -> tuple:
        return (self.order_id, self.account_id, self.market.name, self.side, self.price, self.total, self.remaining,
                self.per_lot, self.held, self.reduce_only, str(self.request_id), self.client_order_id,
                self.acknowledged, self.liquidation, self.order_type, self.tif)


class PerpDesk:
    """The product (module docstring)."""

    name = "perp"
    commands = frozenset((TransferPerp, SetPerpLeverage, SetRiskLimit, SetMarginMode, PlacePerpOrder,
                          CancelPerpOrder, SetMaintenanceMargin)) | liquidations.COMMANDS
    wallet_type = None

    def __init__(self, config: ExchangeConfig, ledger: Ledger, markets: dict[str, PerpMarket]):
        self.config = config
        self.ledger = ledger
        self.markets = dict(markets)                      # name -> the market in force (``raised``)
        self.configured = markets                         # name -> the market as configured
        self.links = tuple(sorted(markets))
        self.specs = {name: m.spec for name, m in markets.items()}
        self.settlement = frozenset(m.spec.quote.name for m in markets.values())
        self.accounts: dict[int, PerpAccount] = {}
        self.orders: dict[int, PerpOrder] = {}
        self.marks: dict[str, tuple[int, int]] = {}       # market -> (index, mark), ticks
        self.liquidations: dict[int, liquidations.PerpLiquidation] = {}
        self.zones: dict[tuple[int, str], int] = {}       # (account, market or "" for cross) -> zone, when not 0
        self.adl_order: dict[tuple[str, bool], tuple] = {}  # (market, long side) -> (mark, ranked, ranks): a cache
        self.index = ZoneIndex(markets)                    # which positions a mark can move (derived)
        self.fee_income: dict[str, int] = {}              # market -> net fees its fills collected, ever
        self.fee_swept: dict[str, int] = {}               # market -> of which moved out for its fund (``fees``)
        self.raised: dict[str, int] = {}                  # market -> ppm its base rates are raised (``maintenance``)
        self.compensated: dict[str, tuple[int, int]] = {}  # market -> (seq, through) of the last compensation
                                                           # from its fund credited here (``compensation``)
        self.shard = None

    def attach(self, shard) -> None:
        self.shard = shard

    def set_mark(self, market: str, index: int, mark: int) -> None:
        """The market's index and mark price (ticks), as computed for it (``exchange.perp.mark``)."""
        self.marks[market] = (index, mark)

    # ---- commands -------------------------------------------------------------------
    def apply(self, cmd, context: PriceContext) -> tuple[list, object | None]:
        kind = type(cmd)
        if kind is PlacePerpOrder:
            return self.place(cmd, context.reference_ticks)
        if kind is SweepPerpFees:
            return fees.sweep(self, cmd), None
        if kind is CreditCompensation:
            return compensation.credit(self, cmd), None
        if kind is SetMaintenanceMargin:
            return maintenance.apply(self, cmd), None
        if kind in liquidations.COMMANDS:
            return liquidations.apply(self, cmd)
        if kind is CancelPerpOrder:
            return self.cancel(cmd)
        if kind is TransferPerp:
            return self.transfer(cmd), None
        return self.settings(cmd), None

    def raise_maintenance(self, name: str, ppm: int) -> None:
        """Put ``name``'s base rates ``ppm`` above the configured ones (0: as configured) and
        re-value its positions at the next mark (``exchange.perp.maintenance``; ValueError if
        the tiers refuse the rates)."""
        market = maintenance.raised(self.configured[name], ppm)
        self.markets[name] = market
        if ppm:
            self.raised[name] = ppm
        else:
            self.raised.pop(name, None)
        for order in self.orders.values():
            if order.market.name == name:
                order.market = market
        self.index.touch_market(name, self.accounts)

    def transfer(self, cmd: TransferPerp) -> list:
        """Move the settlement asset between the spot account and the perpetual wallet
        (UNKNOWN_ACCOUNT, UNKNOWN_ASSET, NOT_SETTLEMENT_ASSET, NON_POSITIVE_AMOUNT,
        INSUFFICIENT_BALANCE: the spot balance, or what the wallet can spare, VALUE_OUT_OF_RANGE)."""
        spot = self.ledger.accounts.get(cmd.account_id)
        if spot is None:
            return _reject(cmd, Reason.UNKNOWN_ACCOUNT)
        asset = self.config.assets.get(cmd.asset)
        if asset is None:
            return _reject(cmd, Reason.UNKNOWN_ASSET)
        if asset.name not in self.settlement:
            return _reject(cmd, Reason.NOT_SETTLEMENT_ASSET)
        if cmd.amount <= 0:
            return _reject(cmd, Reason.NON_POSITIVE_AMOUNT)
        a = asset.index
        wallet = self.accounts.get(cmd.account_id)
        if cmd.to_perp:
            if spot.available[a] < cmd.amount:
                return _reject(cmd, Reason.INSUFFICIENT_BALANCE)
            if wallet is not None and wallet.cash[a] + cmd.amount > INT64_MAX:
                return _reject(cmd, Reason.VALUE_OUT_OF_RANGE)
            wallet = wallet or self._wallet(cmd.account_id)
            spot.available[a] -= cmd.amount
            wallet.cash[a] += cmd.amount
            moved = cmd.amount
        else:
            if wallet is None or self.withdrawable(wallet, a) < cmd.amount:
                return _reject(cmd, Reason.INSUFFICIENT_BALANCE)
            wallet.cash[a] -= cmd.amount
            spot.available[a] += cmd.amount
            moved = -cmd.amount
        self.index.touch(cmd.account_id)
        return [PerpTransferred(cmd.request_id, cmd.ts_ns, cmd.account_id, asset.name, moved, wallet.cash[a])]

    def settings(self, cmd) -> list:
        """SetPerpLeverage, SetRiskLimit or SetMarginMode (module docstring for the reasons)."""
        if cmd.account_id not in self.ledger.accounts:
            return _reject(cmd, Reason.UNKNOWN_ACCOUNT)
        market = self.markets.get(cmd.market)
        if market is None:
            return _reject(cmd, Reason.UNKNOWN_MARKET)
        wallet = self.accounts.get(cmd.account_id)
        current = self._settings(wallet, market)
        leverage, tier, mode = current.leverage, current.risk_tier, current.mode
        kind, tiers = type(cmd), market.tiers
        if kind is SetPerpLeverage:
            if cmd.leverage < 1:
                return _reject(cmd, Reason.INVALID_LEVERAGE)
            if cmd.leverage > tiers.max_leverage(tier):
                return _reject(cmd, Reason.LEVERAGE_ABOVE_TIER)
            leverage = cmd.leverage
        elif kind is SetRiskLimit:
            if not 0 <= cmd.risk_tier <= tiers.steps:
                return _reject(cmd, Reason.INVALID_RISK_LIMIT)
            if wallet is not None and self._exposure_notional(wallet, market) > tiers.ceiling(cmd.risk_tier):
                return _reject(cmd, Reason.RISK_LIMIT_BELOW_POSITION)
            if leverage > tiers.max_leverage(cmd.risk_tier):
                return _reject(cmd, Reason.LEVERAGE_ABOVE_TIER)
            tier = cmd.risk_tier
        else:
            if wallet is not None and (current.lots or any(o.market is market for o in wallet.orders.values())):
                return _reject(cmd, Reason.POSITION_OPEN)
            mode = MarginMode.ISOLATED if cmd.isolated else MarginMode.CROSS
        position = self._position(wallet or self._wallet(cmd.account_id), market)
        position.leverage, position.risk_tier, position.mode = leverage, tier, mode
        return [PerpSettingsChanged(cmd.request_id, cmd.ts_ns, cmd.account_id, market.name, leverage, tier,
                                    mode == MarginMode.ISOLATED)]

    def place(self, cmd: PlacePerpOrder, reference_ticks: int | None) -> tuple[list, object | None]:
        """Check, hold and forward a perpetual order (module docstring for the checks)."""
        terms = self.shard.order_terms(cmd, reference_ticks, self.specs)
        if type(terms) is not tuple:
            return _reject(cmd, terms), None
        spot, spec, side, ticks, lots, otype, tif, stp = terms
        market = self.markets[spec.name]
        marks = self.marks.get(spec.name)
        if marks is None:
            return _reject(cmd, Reason.NO_MARK_PRICE), None
        index, mark = marks
        if diverged(mark, index, market.divergence_band_ppm) and (ticks - mark) * (mark - index) > 0:
            return _reject(cmd, Reason.MARK_INDEX_DIVERGED), None      # further from the index than the mark
        if market.listing_ts_ns and cmd.ts_ns < market.listing_ts_ns + market.listing_window_ns and \
                abs(ticks - index) * PPM > market.listing_band_ppm * index:
            return _reject(cmd, Reason.PRICE_OUTSIDE_LISTING_BAND), None
        wallet = self.accounts.get(cmd.account_id)
        position = self._settings(wallet, market)
        notices: list = []
        signed = lots if side == BUY else -lots
        if cmd.reduce_only:
            if (position.lots > 0) == (signed > 0) or lots > abs(position.lots) - self._pending_reduce(wallet, market,
                                                                                                        side):
                return _reject(cmd, Reason.REDUCE_ONLY_WOULD_INCREASE), None
        else:
            exposure = self._side_exposure(wallet, market, position, side) + lots
            limit, notice = self._position_limit(cmd, wallet, market, exposure)
            if limit is not None and exposure > limit:
                if notice is None:
                    return _reject(cmd, Reason.POSITION_LIMIT_EXCEEDED, POSITION_RULE), None
                notices.append(notice)
            if exposure * max(ticks, mark) * market.k > market.tiers.ceiling(position.risk_tier):
                return _reject(cmd, Reason.RISK_LIMIT_EXCEEDED), None
        worst = max(ticks, mark) * market.k
        fee_per_lot = mul_div_ceil(worst, spot.taker_ppm, PPM) if spot.taker_ppm > 0 else 0
        leverage = min(position.leverage, market.tiers.max_leverage(position.risk_tier))  # a raised rate's cap
        per_lot = fee_per_lot + (0 if cmd.reduce_only else -(-worst // leverage))
        q = spec.quote.index
        if wallet is None or self.available(wallet, q) < lots * per_lot:
            return _reject(cmd, Reason.INSUFFICIENT_BALANCE), None
        if position.lots and (position.lots > 0) != (side == BUY) and \
                self._past_bankruptcy(wallet, market, position, ticks, lots * fee_per_lot):
            return _reject(cmd, Reason.INSUFFICIENT_BALANCE), None
        wallet.held[q] += lots * per_lot
        order_id = self.add_order(PerpOrder(self.shard.new_order_id(), cmd.account_id, market, side, ticks, lots,
                                            per_lot, cmd.reduce_only, cmd.request_id, cmd.client_order_id,
                                            order_type=otype, tif=tif))
        if cmd.client_order_id:
            spot.client_ids[cmd.client_order_id] = order_id
        return notices, SubmitOrder(order_id, cmd.account_id, side, ticks, lots, tif, otype == MARKET,
                               stp or int(self.config.default_stp), spot.maker_ppm, spot.taker_ppm, cmd.ts_ns,
                               cmd.reduce_only)

    def _position_limit(self, cmd, wallet, market, exposure: int) -> tuple[int | None, object]:
        """The position limit in lots for this order's account (the market's own, or the risk
        rulebook's tiers and hedge exemptions when the shard runs one: ``exchange.risk.gate.
        RiskGate.position_limit``) and, when the order would pass it under a rule that only
        records, the record."""
        gate = self.shard.risk
        if gate is None:
            return market.position_limit_lots, None
        spec = market.spec
        collateral = wallet.cash[spec.quote.index] if wallet is not None else 0
        minor = gate.position_limit(cmd.account_id, spec.name, spec.base.name == "BTC", collateral,
                                    market.position_limit_lots * spec.lot_minor)
        if minor is None:
            return None, None
        limit = minor // spec.lot_minor
        notice = gate.position_crossed(cmd.ts_ns, cmd.account_id, spec.name, exposure, limit) \
            if exposure > limit else None
        return limit, notice

    def new_liquidation_order(self, cmd, market: PerpMarket, side: int, ticks: int, lots: int) -> int:
        """Record a liquidation's closing order (no hold: the liquidation's equity stands behind it)."""
        return self.add_order(PerpOrder(self.shard.new_order_id(), cmd.account_id, market, side, ticks, lots, 0,
                                        True, cmd.request_id, "", cmd.liquidation, tif=IOC))

    def add_order(self, order: PerpOrder) -> int:
        """Record an open order in the desk and in its account's index; return its id."""
        self.orders[order.order_id] = self.accounts[order.account_id].orders[order.order_id] = order
        return order.order_id

    def cancel(self, cmd: CancelPerpOrder) -> tuple[list, object | None]:
        """UNKNOWN_ACCOUNT, UNKNOWN_MARKET, ORDER_NOT_FOUND, NOT_OWNER; else ask the market."""
        if cmd.account_id not in self.ledger.accounts:
            return _reject(cmd, Reason.UNKNOWN_ACCOUNT), None
        if cmd.market not in self.markets:
            return _reject(cmd, Reason.UNKNOWN_MARKET), None
        order = self.orders.get(cmd.order_id)
        if order is None or order.market.name != cmd.market:
            return _reject(cmd, Reason.ORDER_NOT_FOUND), None
        if order.account_id != cmd.account_id:
            return _reject(cmd, Reason.NOT_OWNER), None
        return [], CancelRequest(cmd.request_id, order.order_id, cmd.account_id, cmd.ts_ns)

    # ---- market events --------------------------------------------------------------
    def apply_event(self, event) -> list:
        kind = type(event)
        if kind is Fill:
            out: list = []
            taker = self.orders.get(event.taker_order_id)
            if taker is not None:
                out = self._acknowledge(taker, event.ts_ns)
                out.append(self._settle(taker, event, event.taker_fee))
            maker = self.orders.get(event.maker_order_id)
            if maker is not None:
                out.append(self._settle(maker, event, event.maker_fee))
            out.append(event)
            return out
        if kind is OrderBooked:
            order = self.orders.get(event.order_id)
            return [*self._acknowledge(order, event.ts_ns), event] if order is not None else [event]
        if kind is OrderClosed:
            return self._closed(event)
        if kind is RequestRejected:
            return [OrderRejected(event.request_id, event.account_id, event.reason, event.order_id)]
        if kind is MarkUpdated:
            self.set_mark(event.market, event.index, event.mark)
            return self._zones(event)
        if kind is FundingDue:
            return self._fund(event)
        raise TypeError(f"perpetual desk cannot apply {kind.__name__}")

    def _zones(self, event: MarkUpdated) -> list:
        """At a new mark, every position it can move (``exchange.perp.zones``: touched since
        the last mark, or whose band the mark left) in its zone: healthy, under the warning
        line, at or under maintenance; a ``PerpMarginZoneChanged`` for each that changed zone."""
        out = []
        name, mark, zones, index = event.market, event.mark, self.zones, self.index
        market = self.markets[name]
        k, tiers, q = market.k, market.tiers, market.spec.quote.index
        touched = index.touched[name]
        for account_id in sorted(index.due(name, mark)):
            wallet = self.accounts.get(account_id)
            position = wallet.positions.get(name) if wallet is not None else None
            if position is None or not position.lots:
                index.place(name, account_id, 0, None)
                if position is not None and zones:       # closed since: nothing of it is at risk
                    zones.pop((account_id, name), None)
                    if not any(p.lots and p.mode == MarginMode.CROSS for p in wallet.positions.values()):
                        zones.pop((account_id, ""), None)
                continue
            several = False
            if position.mode == MarginMode.ISOLATED:
                scope = name
                equity = position.margin + position.unrealized(mark, k)
                maintenance, warning = tiers.lines(position.notional(mark, k))
            else:
                scope = ""
                equity, maintenance, warning = self._cross_lines(wallet, q)
                several = sum(1 for n, p in wallet.positions.items() if p.lots and p.mode == MarginMode.CROSS
                              and self.markets[n].spec.quote.index == q) > 1
            zone = 2 if equity <= maintenance else 1 if equity <= warning else 0
            prices = None if several else index.prices.get((name, account_id))    # several: every mark
            if not several and (prices is None or account_id in touched):
                prices = self._line_prices(market, wallet, position)
            index.place(name, account_id, zone, prices, every_mark=several)
            key = (account_id, scope)
            if zones.get(key, 0) != zone:
                if zone:
                    zones[key] = zone
                else:
                    zones.pop(key, None)
                out.append(PerpMarginZoneChanged(name, event.seq, event.ts_ns, account_id, scope, zone,
                                                 equity, maintenance, warning))
        return out

    @staticmethod
    def _line_prices(market: PerpMarket, wallet: PerpAccount, position: Position) -> tuple:
        """(long, liquidation price, warning price) of a position alone in its margin: its
        isolated margin, or the cross wallet's cash, behind it."""
        collateral = position.margin if position.mode == MarginMode.ISOLATED else wallet.cash[market.spec.quote.index]
        args = (position.lots, position.basis, collateral, market.k, market.tiers)
        return position.lots > 0, liquidation_price(*args), warning_price(*args)

    def _cross_lines(self, wallet: PerpAccount, asset: int) -> tuple[int, int, int]:
        """(equity, maintenance, warning line) of the wallet's cross positions in ``asset``."""
        equity, maintenance, warning = wallet.cash[asset], 0, 0
        for name, position in wallet.positions.items():
            market = self.markets[name]
            if position.lots and position.mode == MarginMode.CROSS and market.spec.quote.index == asset:
                mark = self._mark(market, position)
                equity += position.unrealized(mark, market.k)
                lines = market.tiers.lines(position.notional(mark, market.k))
                maintenance += lines[0]
                warning += lines[1]
        return equity, maintenance, warning

    def _fund(self, due: FundingDue) -> list:
        """Every position in the market pays or receives its funding (``funding.payments``):
        a cross position from the wallet's cash, an isolated one from its margin (what the
        margin cannot pay comes from cash), a liquidation's from its equity (its lots are
        part of the open interest until they close: leaving them out would not sum to zero)."""
        market = self.markets[due.market]
        q = market.spec.quote.index
        positions = [(account_id, wallet.positions[due.market].lots) for account_id, wallet in
                     sorted(self.accounts.items()) if due.market in wallet.positions]
        positions += [(-n, liquidation.positions[due.market].lots) for n, liquidation in
                      sorted(self.liquidations.items()) if due.market in liquidation.positions]
        out = []
        for key, amount in payments(positions, due.mark, market.k, due.rate).items():
            if key < 0:                                       # a liquidation (keyed -n)
                liquidation = self.liquidations[-key]
                liquidation.equity -= amount
                liquidation.results[due.market] = liquidation.results.get(due.market, 0) - amount
                continue
            wallet = self.accounts[key]
            position = wallet.positions[due.market]
            position.funding += amount
            self.index.touch(key)
            if position.mode == MarginMode.ISOLATED:
                position.margin -= amount
                if position.margin < 0:
                    wallet.cash[q] += position.margin
                    position.margin = 0
            else:
                wallet.cash[q] -= amount
            out.append(FundingPaid(due.market, due.seq, due.ts_ns, key, due.rate, amount))
        return out

    def _acknowledge(self, order: PerpOrder, ts_ns: int) -> list:
        if order.acknowledged:
            return []
        order.acknowledged = True
        spec = order.market.spec
        return [OrderAccepted(order.request_id, ts_ns, order.order_id, order.account_id, spec.name, order.side,
                              order.price * spec.tick_minor, order.total * spec.lot_minor, order.client_order_id,
                              order.order_type, order.tif)]

    def _settle(self, order: PerpOrder, fill: Fill, fee: int):
        """One side of a fill: release its lots' hold, move the position (or the liquidation's)."""
        market, spec = order.market, order.market.spec
        wallet = self.accounts[order.account_id]
        lots, ticks = fill.quantity // spec.lot_minor, fill.price // spec.tick_minor
        release = lots * order.per_lot
        order.held -= release
        order.remaining -= lots
        wallet.held[spec.quote.index] -= release
        signed = lots if order.side == BUY else -lots
        if order.liquidation:
            liquidation = self.liquidations[order.liquidation]
            realized = liquidation.positions[market.name].fill(signed, ticks, market.k)
            liquidation.equity += realized - fee
            liquidation.results[market.name] = liquidation.results.get(market.name, 0) + realized - fee
            self._collect(market, fee)
            return PerpLiquidationUpdate(order.request_id, fill.ts_ns, order.account_id, market.name,
                                         order.liquidation, int(PerpLiquidationStage.ORDER_FILLED), lots, ticks,
                                         realized - fee)
        realized = self.close(wallet, market, signed, ticks, fee)
        position = wallet.positions[market.name]
        return PositionChanged(market.name, fill.seq, fill.ts_ns, order.account_id, order.order_id,
                               position.lots * spec.lot_minor, position.basis, realized, fee, position.margin)

    def close(self, wallet: PerpAccount, market: PerpMarket, signed: int, ticks: int, fee: int) -> int:
        """Move the wallet's position by ``signed`` lots at ``ticks``: PnL and fee in cash, an
        isolated position's margin in (opened lots) and out (closed lots); return the PnL realized."""
        q = market.spec.quote.index
        position = self._position(wallet, market)
        before = position.lots
        closed = min(abs(signed), abs(before)) if before and (before > 0) != (signed > 0) else 0
        realized = position.fill(signed, ticks, market.k)
        if position.mode == MarginMode.ISOLATED:
            released = position.margin if closed == abs(before) else position.margin * closed // abs(before)
            added = (abs(signed) - closed) * -(-(ticks * market.k) // position.leverage)
            position.margin += added - released
            wallet.cash[q] += released - added
        wallet.cash[q] += realized - fee
        position.fees += fee
        self._collect(market, fee)
        self.index.touch(wallet.account_id)
        return realized

    def _collect(self, market: PerpMarket, fee: int) -> None:
        """A fill's fee into the shard's fee account, counted for the market's fund share."""
        self.ledger.fees[market.spec.quote.index] += fee
        self.fee_income[market.name] = self.fee_income.get(market.name, 0) + fee

    def _closed(self, event: OrderClosed) -> list:
        order = self.orders.pop(event.order_id, None)
        if order is None:
            return [event]
        wallet = self.accounts[order.account_id]
        del wallet.orders[order.order_id]
        wallet.held[order.market.spec.quote.index] -= order.held
        order.held = 0
        if order.client_order_id:
            self.ledger.accounts[order.account_id].client_ids.pop(order.client_order_id, None)
        if event.reason == REJECTED and not order.acknowledged:
            spec = order.market.spec
            return [OrderRejected(order.request_id, order.account_id, event.reject_reason, order.order_id, "",
                                  spec.name, order.side, order.price * spec.tick_minor, order.total * spec.lot_minor,
                                  order.client_order_id, order.order_type, order.tif)]
        return [*self._acknowledge(order, event.ts_ns), event]

    # ---- figures ------------------------------------------------------------------------
    def _wallet(self, account_id: int) -> PerpAccount:
        wallet = self.accounts.get(account_id)
        if wallet is None:
            wallet = self.accounts[account_id] = PerpAccount(account_id, len(self.config.assets))
        return wallet

    def _position(self, wallet: PerpAccount, market: PerpMarket) -> Position:
        position = wallet.positions.get(market.name)
        if position is None:
            position = wallet.positions[market.name] = Position(leverage=market.default_leverage)
        return position

    @staticmethod
    def _settings(wallet: PerpAccount | None, market: PerpMarket) -> Position:
        """The account's position in ``market`` (a fresh default one, not stored, if none)."""
        found = wallet.positions.get(market.name) if wallet is not None else None
        return found if found is not None else Position(leverage=market.default_leverage)

    def _mark(self, market: PerpMarket, position: Position) -> int:
        """The market's mark in ticks (without one yet: the position's entry, rounded down)."""
        marks = self.marks.get(market.name)
        if marks is not None:
            return marks[1]
        return abs(position.basis) // (abs(position.lots) * market.k) if position.lots else 0

    def _cross(self, wallet: PerpAccount, asset: int) -> tuple[int, int, int]:
        """(unrealized PnL, initial margin, maintenance) of the wallet's cross positions in ``asset``."""
        unrealized = initial = maintenance = 0
        for name, position in wallet.positions.items():
            market = self.markets[name]
            if position.lots and position.mode == MarginMode.CROSS and market.spec.quote.index == asset:
                mark = self._mark(market, position)
                notional = position.notional(mark, market.k)
                unrealized += position.unrealized(mark, market.k)
                initial += -(-notional // position.leverage)
                maintenance += market.tiers.maintenance(notional)
        return unrealized, initial, maintenance

    def available(self, wallet: PerpAccount, asset: int) -> int:
        """What new orders can hold: cash less holds and the cross positions' initial margin,
        plus their unrealized PnL."""
        unrealized, initial, _ = self._cross(wallet, asset)
        return wallet.cash[asset] - wallet.held[asset] - initial + unrealized

    def withdrawable(self, wallet: PerpAccount, asset: int) -> int:
        """What can leave for the spot account: as ``available``, but an unrealized profit
        cannot be taken out before it is realized."""
        unrealized, initial, _ = self._cross(wallet, asset)
        return wallet.cash[asset] - wallet.held[asset] - initial + min(0, unrealized)

    def _past_bankruptcy(self, wallet: PerpAccount, market: PerpMarket, position: Position, ticks: int,
                         fee: int) -> bool:
        """Whether closing ``position`` at ``ticks`` loses more than stands behind it (its isolated
        margin; the cross wallet less the order's ``fee``, with its other cross positions' PnL):
        a price past its bankruptcy price, whose loss would leave the wallet's cash negative."""
        if position.mode == MarginMode.ISOLATED:
            collateral = position.margin
        else:
            unrealized, _, _ = self._cross(wallet, market.spec.quote.index)
            own = position.unrealized(self._mark(market, position), market.k)
            collateral = wallet.cash[market.spec.quote.index] - fee + unrealized - own
        return equity_at(position.lots, position.basis, collateral, market.k, ticks) < 0

    def _pending_reduce(self, wallet: PerpAccount | None, market: PerpMarket, side: int) -> int:
        if wallet is None:
            return 0
        return sum(o.remaining for o in wallet.orders.values() if o.market is market and o.side == side and o.reduce_only)

    def _side_exposure(self, wallet: PerpAccount | None, market: PerpMarket, position: Position, side: int) -> int:
        """Lots the position could reach on ``side`` if every open order there filled (before this one)."""
        same = position.lots if side == BUY else -position.lots          # > 0: already on that side
        if wallet is not None:
            same += sum(o.remaining for o in wallet.orders.values()
                        if o.market is market and o.side == side and not o.reduce_only)
        return max(0, same)

    def _exposure_notional(self, wallet: PerpAccount, market: PerpMarket) -> int:
        """The larger side's worst-case notional at the mark: what a risk limit must hold."""
        position = self._settings(wallet, market)
        mark = self._mark(market, position)
        worst = max(self._side_exposure(wallet, market, position, side) for side in (BUY, SELL))
        return worst * mark * market.k

    def equity_behind(self, wallet: PerpAccount, market: PerpMarket, position: Position) -> int:
        """What stands behind a position at the mark: its isolated margin and PnL, or its cross wallet."""
        mark = self._mark(market, position)
        if position.mode == MarginMode.ISOLATED:
            return position.margin + position.unrealized(mark, market.k)
        unrealized, _, _ = self._cross(wallet, market.spec.quote.index)
        return wallet.cash[market.spec.quote.index] + unrealized

    def adl_candidates(self, market_name: str) -> list:
        """Every open position in the market as an ADL candidate (``exchange.perp.adl``), by account."""
        market = self.markets[market_name]
        return [adl.Candidate(account_id, p.lots, p.basis, self.equity_behind(wallet, market, p))
                for account_id, wallet in sorted(self.accounts.items())
                if (p := wallet.positions.get(market_name)) is not None and p.lots]

    def adl_ranked(self, market_name: str, lots: int, exclude=()) -> list:
        """ADL candidates for closing ``lots`` (a bankrupt position's signed lots): the positions
        on the other side, best rank first, until their lots cover ``abs(lots)``; accounts in
        ``exclude`` left out. The order is ranked at a mark (``adl.ranking``) and kept
        (``_ranked``: a cascade's many ADL rounds do not rank every position each time);
        sizes and equity are read now, so a position closed since is skipped."""
        market, long_side = self.markets[market_name], lots < 0
        order = self._ranked(market_name, long_side)[0]

        def taken(account_id: int) -> bool:
            position = self.accounts[account_id].positions.get(market_name)
            return position is None or not position.lots or (position.lots > 0) != long_side
        while order and taken(order[-1]):             # closed since the ranking: gone until the next mark
            order.pop()
        out, covered = [], 0
        for account_id in reversed(order):
            wallet = self.accounts[account_id]
            position = wallet.positions.get(market_name)
            if account_id in exclude or taken(account_id):
                continue
            out.append(adl.Candidate(account_id, position.lots, position.basis,
                                     self.equity_behind(wallet, market, position)))
            covered += abs(position.lots)
            if covered >= abs(lots):
                break
        return out

    def _ranked(self, market_name: str, long_side: bool) -> tuple[list, dict, list]:
        """One side's positions ranked for ADL at the mark, kept until the mark moves more than
        ``RERANK_PPM`` from the one they were ranked at (a cascade marks every second: ranking
        every position each time would cost more than the liquidations): (account ids, best
        last, popped as they close; each account's place when ranked, best 0; the ranking's
        keys, (-score, account), in order)."""
        mark = self.marks.get(market_name, (0, 0))[1]
        cached = self.adl_order.get((market_name, long_side))
        if cached is None or abs(mark - cached[0]) * PPM > RERANK_PPM * cached[0]:
            side = [c for c in self.adl_candidates(market_name) if (c.lots > 0) == long_side]
            scored = adl.ranking(side, mark, self.markets[market_name].k)
            ranked = [c.account_id for _, c in scored]
            cached = self.adl_order[(market_name, long_side)] = (mark, ranked[::-1],
                                                                 {a: i for i, a in enumerate(ranked)},
                                                                 [(-s, c.account_id) for s, c in scored])
        return cached[1], cached[2], cached[3]

    def adl_rank(self, account_id: int, market_name: str, long_side: bool) -> tuple[Fraction, int] | None:
        """The position's ADL score and quintile among this desk's positions on its side
        (``adl.quintile``: 5 first to go), from the ranking kept (``_ranked``); None without
        positive equity when ranked."""
        _, ranks, keys = self._ranked(market_name, long_side)
        place = ranks.get(account_id)
        return None if place is None else (-keys[place][0], adl.quintile(place, len(ranks)))

    def adl_place(self, market_name: str, long_side: bool, score: Fraction, account_id: int) -> tuple[int, int]:
        """(how many of this desk's positions on the side rank before a position with ``score``
        held by ``account_id``, how many are ranked): shards' answers summed give its place in
        the venue (``adl.quintile``)."""
        _, _, keys = self._ranked(market_name, long_side)
        return bisect_left(keys, (-score, account_id)), len(keys)

    def large_positions(self, min_lots: dict[str, int]) -> list[tuple]:
        """Every position of at least ``min_lots[market]`` lots (either side), for the large-trader
        report (rulebook 4.3.3): ``(account, market, signed base minor units, margin, available)``;
        margin is the isolated margin or the cross wallet's cash, available what it could move out."""
        out = []
        for account_id, wallet in sorted(self.accounts.items()):
            for name, position in sorted(wallet.positions.items()):
                floor = min_lots.get(name)
                if floor is None or abs(position.lots) < floor or not position.lots:
                    continue
                market = self.markets[name]
                q = market.spec.quote.index
                margin = position.margin if position.mode == MarginMode.ISOLATED else wallet.cash[q]
                out.append((account_id, name, position.lots * market.spec.lot_minor, margin,
                            self.withdrawable(wallet, q)))
        return out

    def position_view(self, account_id: int, market_name: str) -> dict | None:
        """A position as its owner sees it: size, entry notional, mark, PnL, margin, the
        liquidation and bankruptcy prices (ticks) at the current mark, its ADL score
        (``[numerator, denominator]``) and quintile (5: first to be deleveraged; among the
        positions this desk holds: the whole venue in the Engine; on the actors the client
        places the score among every shard's, ``adl_place``); None if there is none."""
        wallet = self.accounts.get(account_id)
        market = self.markets.get(market_name)
        position = wallet.positions.get(market_name) if wallet is not None and market is not None else None
        if position is None:
            return None
        q, k = market.spec.quote.index, market.k
        mark = self._mark(market, position)
        rank = self.adl_rank(account_id, market_name, position.lots > 0) if position.lots else None
        score, quintile = rank or (None, None)
        if position.mode == MarginMode.ISOLATED:
            collateral_bankrupt = collateral_liquidate = position.margin
        else:
            unrealized, _, maintenance = self._cross(wallet, q)
            own_unrealized = position.unrealized(mark, k) if position.lots else 0
            own_maintenance = market.tiers.maintenance(position.notional(mark, k))
            collateral_bankrupt = wallet.cash[q] + unrealized - own_unrealized
            collateral_liquidate = collateral_bankrupt - (maintenance - own_maintenance)
        return {"market": market_name, "size": position.lots * market.spec.lot_minor, "lots": position.lots,
                "entry_notional": position.basis, "mark": mark, "unrealized": position.unrealized(mark, k),
                "realized": position.realized, "fees": position.fees, "funding": position.funding,
                "leverage": position.leverage, "risk_tier": position.risk_tier,
                "isolated": position.mode == MarginMode.ISOLATED, "margin": position.margin,
                "maintenance": market.tiers.maintenance(position.notional(mark, k)),
                "liquidation_price": liquidation_price(position.lots, position.basis, collateral_liquidate, k,
                                                       market.tiers),
                "bankruptcy_price": bankruptcy_price(position.lots, position.basis, collateral_bankrupt, k),
                "adl_quintile": quintile, "adl_score": score and [score.numerator, score.denominator]}

    # ---- the product's self-description ---------------------------------------------------
    def order_closed(self, record, ts_ns: int) -> None:       # no shard-held orders: nothing to do
        return None

    def withdrawal_block(self, account_id: int, prices) -> Reason | None:
        return None                                           # perpetual funds are outside the spot account

    def wallets(self) -> tuple:
        return ()                                             # holds are the desk's own (``check_invariants``)

    def totals(self) -> list[int]:
        totals = [0] * len(self.config.assets)
        for wallet in self.accounts.values():
            for asset, cash in enumerate(wallet.cash):
                totals[asset] += cash
            for name, position in wallet.positions.items():
                totals[self.markets[name].spec.quote.index] += position.margin - position.basis
        for liquidation in self.liquidations.values():
            totals[liquidation.asset] += liquidation.equity - sum(p.basis for p in liquidation.positions.values())
        return totals

    def check_invariants(self) -> None:
        self._check_index()
        held: dict[tuple, int] = {}
        for order in self.orders.values():
            assert order.held == order.remaining * order.per_lot, f"perp order {order.order_id} hold"
            key = (order.account_id, order.market.spec.quote.index)
            held[key] = held.get(key, 0) + order.held
        assert sum(len(w.orders) for w in self.accounts.values()) == len(self.orders) and all(
            self.orders.get(i) is o for w in self.accounts.values() for i, o in w.orders.items()), "order index"
        for wallet in self.accounts.values():
            for asset, amount in enumerate(wallet.held):
                assert amount == held.get((wallet.account_id, asset), 0), f"perp wallet {wallet.account_id} hold"
            for position in wallet.positions.values():
                position.check_invariants()
                assert position.margin >= 0 and (position.margin == 0 or position.mode == MarginMode.ISOLATED)

    def _check_index(self) -> None:
        """Every open position is indexed (``zones``): touched since its market's last mark,
        re-valued at every mark, or with the prices its position and collateral give now."""
        index = self.index
        for account_id, wallet in self.accounts.items():
            for name, position in wallet.positions.items():
                if not position.lots or account_id in index.touched[name] or account_id in index.always[name]:
                    continue
                assert index.prices.get((name, account_id)) == self._line_prices(self.markets[name], wallet, position), \
                    f"zone index: account {account_id} in {name} changed untouched"

    def canonical(self) -> tuple:
        return (tuple(w.canonical() for _, w in sorted(self.accounts.items())),
                tuple(o.canonical() for _, o in sorted(self.orders.items())), tuple(sorted(self.marks.items())),
                tuple(liquidation.canonical() for _, liquidation in sorted(self.liquidations.items())),
                tuple(sorted(self.zones.items())),
                tuple((m, self.fee_income.get(m, 0), self.fee_swept.get(m, 0))
                      for m in sorted(set(self.fee_income) | set(self.fee_swept)))) + \
            ((tuple(sorted(self.raised.items())), tuple(sorted(self.compensated.items())))
             if self.raised or self.compensated else ())          # a desk that never had either keeps its hash


def _position_canonical(p: Position) -> tuple:
    return (p.lots, p.basis, p.realized, p.fees, p.funding, int(p.mode), p.leverage, p.risk_tier, p.margin)


def _reject(cmd, reason: Reason, rule: str = "") -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), 0, rule)]
