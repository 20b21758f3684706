"""Liquidation of perpetual positions on the shard (rulebook 4.2.2, 4.2.3, 4.4.5): the
liquidator's commands, and the scan that finds who is due.

**Take-over at the mark.** ``TakeOverPerp`` moves a position (an isolated one, or
every cross position of the account) out of the account into a liquidation
record, at the mark: the account realizes its PnL at the mark, and the
liquidation takes the equity that stood behind the position (the isolated
margin plus that PnL, or the whole cross wallet) and the position with a basis
at the mark. The account is left with nothing at risk and no negative
balance; what it had left is the liquidation's. Each market's share of that
equity (pro rata the notional; the units left to the largest) gives the
liquidation's **bankruptcy price** there: the price at which closing loses
exactly its share. Orders of the account in those markets must be cancelled
first (PERP_ORDERS_OPEN).

**Closing.** ``LiquidationOrderPerp`` sends an immediate-or-cancel order for the
liquidation's lots (no fee: the taker side of a liquidation pays none); its
fills realize PnL against the mark into the liquidation's equity.
``DeleveragePerp`` closes an opposite position at the bankruptcy price (ADL, on
that account's shard) and ``AbsorbDeleverage`` closes the liquidation's side
at the same price (on the liquidated account's shard): the two sides of one
trade, so PnL stays zero-sum. ``FinishPerpLiquidation`` ends a liquidation
with every lot closed and answers the equity left: more than zero (fills
better than bankruptcy) goes into the market's insurance fund, less than zero
(fills worse) is drawn from it. Those fund entries are the caller's
(``exchange.perp.fund``); the desk's totals drop by exactly that amount.

Reasons: UNKNOWN_ACCOUNT, UNKNOWN_MARKET, NO_POSITION,
POSITION_NOT_LIQUIDATABLE, PERP_ORDERS_OPEN, UNKNOWN_LIQUIDATION,
LIQUIDATION_NOT_DONE, CANNOT_DELEVERAGE, and the grid checks of an order
(OFF_TICK_PRICE, OFF_LOT_QUANTITY, NON_POSITIVE_PRICE, NON_POSITIVE_QUANTITY).
"""
from __future__ import annotations

from exchange.accounts.access import PERP_LIQUIDATOR_COMMANDS as COMMANDS  # noqa: F401 (the desk's set)
from exchange.core.reasons import Reason
from exchange.matching.orders import BUY, SELL, StpMode, TimeInForce
from exchange.messages.records import (AbsorbDeleverage, FinishPerpLiquidation, LiquidationOrderPerp, OrderRejected,
                                       PerpLiquidationStage, PerpLiquidationUpdate, SubmitOrder, TakeOverPerp)
from exchange.perp.position import MarginMode, Position
from exchange.perp.prices import bankruptcy_price

IOC = int(TimeInForce.IOC)
EXPIRE_TAKER = int(StpMode.EXPIRE_TAKER)


class PerpLiquidation:
    """Positions taken over from one account, and the equity that came with them."""

    __slots__ = ("n", "account_id", "asset", "positions", "equity", "shares", "results")

    def __init__(self, n: int, account_id: int, asset: int):
        self.n = n
        self.account_id = account_id
        self.asset = asset                       # the settlement asset the equity is in
        self.positions: dict[str, Position] = {}
        self.equity = 0
        self.shares: dict[str, int] = {}         # market -> its share of the equity taken over
        self.results: dict[str, int] = {}        # market -> PnL its closes realized (against the mark)

    def left(self, market: str) -> int:
        """The equity left in ``market``: its share and what closing there realized."""
        return self.shares[market] + self.results.get(market, 0)

    def canonical(self) -> tuple:
        return (self.n, self.account_id, self.asset, self.equity, tuple(sorted(self.shares.items())),
                tuple(sorted(self.results.items())), tuple((m, p.lots, p.basis) for m, p in sorted(self.positions.items())))


def due(desk) -> list[tuple[int, str]]:
    """Who is due for liquidation at the marks, in account order (``account_due``)."""
    return [key for account_id in sorted(desk.accounts) for key in account_due(desk, account_id)]


def account_due(desk, account_id: int) -> list[tuple[int, str]]:
    """(account, market) for each isolated position at or under its maintenance, and
    (account, "") if the cross wallet is at or under its positions' maintenance."""
    wallet = desk.accounts.get(account_id)
    if wallet is None:
        return []
    out, cross_assets = [], set()
    for name, position in sorted(wallet.positions.items()):
        if not position.lots:
            continue
        market = desk.markets[name]
        if position.mode == MarginMode.CROSS:
            cross_assets.add(market.spec.quote.index)
            continue
        mark = desk._mark(market, position)
        if position.margin + position.unrealized(mark, market.k) <= \
                market.tiers.maintenance(position.notional(mark, market.k)):
            out.append((account_id, name))
    for asset in sorted(cross_assets):
        unrealized, _, maintenance = desk._cross(wallet, asset)
        if wallet.cash[asset] + unrealized <= maintenance:
            out.append((account_id, ""))
    return out


def apply(desk, cmd) -> tuple[list, object | None]:
    kind = type(cmd)
    if kind is TakeOverPerp:
        return take_over(desk, cmd), None
    if kind is LiquidationOrderPerp:
        return order(desk, cmd)
    if kind is FinishPerpLiquidation:
        return finish(desk, cmd), None
    return deleverage(desk, cmd), None


def _reject(cmd, reason: Reason) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), 0)]


def _update(cmd, market: str, stage: PerpLiquidationStage, lots: int, price: int, amount: int,
            account_id: int | None = None) -> PerpLiquidationUpdate:
    return PerpLiquidationUpdate(cmd.request_id, cmd.ts_ns, cmd.account_id if account_id is None else account_id,
                                 market, cmd.liquidation, int(stage), lots, price, amount)


def take_over(desk, cmd: TakeOverPerp) -> list:
    if cmd.account_id not in desk.ledger.accounts:
        return _reject(cmd, Reason.UNKNOWN_ACCOUNT)
    if cmd.market and cmd.market not in desk.markets:
        return _reject(cmd, Reason.UNKNOWN_MARKET)
    if cmd.liquidation in desk.liquidations or cmd.liquidation <= 0:
        return _reject(cmd, Reason.UNKNOWN_LIQUIDATION)
    wallet = desk.accounts.get(cmd.account_id)
    mode = MarginMode.ISOLATED if cmd.market else MarginMode.CROSS
    names = [name for name, p in sorted(wallet.positions.items()) if p.lots and p.mode == mode
             and (name == cmd.market or not cmd.market)] if wallet is not None else []
    if not names:
        return _reject(cmd, Reason.NO_POSITION)
    if (cmd.account_id, cmd.market) not in account_due(desk, cmd.account_id):
        return _reject(cmd, Reason.POSITION_NOT_LIQUIDATABLE)
    if any(o.market.name in names for o in wallet.orders.values()):
        return _reject(cmd, Reason.PERP_ORDERS_OPEN)
    asset = desk.markets[names[0]].spec.quote.index
    liquidation = desk.liquidations[cmd.liquidation] = PerpLiquidation(cmd.liquidation, cmd.account_id, asset)
    notionals, marks = {}, {}
    for name in names:
        market, position = desk.markets[name], wallet.positions[name]
        marks[name] = mark = desk._mark(market, position)
        value = position.lots * mark * market.k
        at_mark = value - position.basis
        liquidation.positions[name] = Position(lots=position.lots, basis=value)
        notionals[name] = abs(value)
        position.realized += at_mark
        if mode == MarginMode.ISOLATED:
            liquidation.equity += position.margin + at_mark
            position.margin = 0
        else:
            wallet.cash[asset] += at_mark
        position.lots = position.basis = 0
    if mode == MarginMode.CROSS:
        liquidation.equity, wallet.cash[asset] = wallet.cash[asset], 0
    _share(liquidation, notionals)
    return [_update(cmd, name, PerpLiquidationStage.TAKEN_OVER, liquidation.positions[name].lots, marks[name],
                    liquidation.shares[name]) for name in names]


def _share(liquidation: PerpLiquidation, notionals: dict[str, int]) -> None:
    """Each market's share of the equity, pro rata its notional; the units left to the largest."""
    total = sum(notionals.values())
    for name, notional in notionals.items():
        liquidation.shares[name] = liquidation.equity * notional // total if total else 0
    largest = max(sorted(notionals), key=lambda name: notionals[name])
    liquidation.shares[largest] += liquidation.equity - sum(liquidation.shares.values())


def bankruptcy(desk, liquidation: PerpLiquidation, name: str) -> int | None:
    """The liquidation's bankruptcy price in ``name``: where closing loses exactly its share."""
    position = liquidation.positions[name]
    market = desk.markets[name]
    return bankruptcy_price(position.lots, position.basis, liquidation.shares[name], market.k)


def order(desk, cmd: LiquidationOrderPerp) -> tuple[list, object | None]:
    liquidation = desk.liquidations.get(cmd.liquidation)
    if liquidation is None or liquidation.account_id != cmd.account_id:
        return _reject(cmd, Reason.UNKNOWN_LIQUIDATION), None
    position = liquidation.positions.get(cmd.market)
    if position is None or not position.lots:
        return _reject(cmd, Reason.NO_POSITION), None
    market = desk.markets[cmd.market]
    grid = _grid(cmd, market.spec, abs(position.lots))
    if type(grid) is not tuple:
        return _reject(cmd, grid), None
    ticks, lots = grid
    side = SELL if position.lots > 0 else BUY
    order_id = desk.new_liquidation_order(cmd, market, side, ticks, lots)
    return [], SubmitOrder(order_id, cmd.account_id, side, ticks, lots, IOC, False, EXPIRE_TAKER, 0, 0, cmd.ts_ns)


def _grid(cmd, spec, most_lots: int) -> tuple[int, int] | Reason:
    if cmd.price <= 0:
        return Reason.NON_POSITIVE_PRICE
    if cmd.quantity <= 0:
        return Reason.NON_POSITIVE_QUANTITY
    ticks, off_tick = divmod(cmd.price, spec.tick_minor)
    lots, off_lot = divmod(cmd.quantity, spec.lot_minor)
    if off_tick:
        return Reason.OFF_TICK_PRICE
    if off_lot:
        return Reason.OFF_LOT_QUANTITY
    if lots > most_lots:
        return Reason.CANNOT_DELEVERAGE if type(cmd) is not LiquidationOrderPerp else Reason.ABOVE_MAX_SIZE
    return ticks, lots


def _close_terms(desk, cmd, position: Position | None) -> tuple[int, int] | list:
    """(ticks, signed lots) of an ADL close of ``position``, or the rejection (NO_POSITION,
    the grid's checks, CANNOT_DELEVERAGE for more lots than it holds)."""
    if position is None or not position.lots:
        return _reject(cmd, Reason.NO_POSITION)
    grid = _grid(cmd, desk.markets[cmd.market].spec, abs(position.lots))
    if type(grid) is not tuple:
        return _reject(cmd, grid)
    ticks, lots = grid
    return ticks, (-lots if position.lots > 0 else lots)


def deleverage(desk, cmd) -> list:
    """``DeleveragePerp`` on the opposite account, or ``AbsorbDeleverage`` on the liquidation."""
    k = desk.markets[cmd.market].k if cmd.market in desk.markets else 0
    if type(cmd) is AbsorbDeleverage:
        liquidation = desk.liquidations.get(cmd.liquidation)
        if liquidation is None or liquidation.account_id != cmd.account_id:
            return _reject(cmd, Reason.UNKNOWN_LIQUIDATION)
        terms = _close_terms(desk, cmd, liquidation.positions.get(cmd.market))
        if type(terms) is list:
            return terms
        ticks, signed = terms
        realized = liquidation.positions[cmd.market].fill(signed, ticks, k)
        liquidation.equity += realized
        liquidation.results[cmd.market] = liquidation.results.get(cmd.market, 0) + realized
        return [_update(cmd, cmd.market, PerpLiquidationStage.ABSORBED, abs(signed), ticks, realized)]
    if cmd.account_id not in desk.ledger.accounts:
        return _reject(cmd, Reason.UNKNOWN_ACCOUNT)
    if cmd.market not in desk.markets:
        return _reject(cmd, Reason.UNKNOWN_MARKET)
    wallet = desk.accounts.get(cmd.account_id)
    terms = _close_terms(desk, cmd, wallet.positions.get(cmd.market) if wallet is not None else None)
    if type(terms) is list:
        return terms
    ticks, signed = terms
    realized = desk.close(wallet, desk.markets[cmd.market], signed, ticks, fee=0)
    return [_update(cmd, cmd.market, PerpLiquidationStage.DELEVERAGED, abs(signed), ticks, realized)]


def finish(desk, cmd: FinishPerpLiquidation) -> list:
    liquidation = desk.liquidations.get(cmd.liquidation)
    if liquidation is None or liquidation.account_id != cmd.account_id:
        return _reject(cmd, Reason.UNKNOWN_LIQUIDATION)
    if any(p.lots for p in liquidation.positions.values()) or \
            any(o.liquidation == cmd.liquidation for o in desk.accounts[cmd.account_id].orders.values()):
        return _reject(cmd, Reason.LIQUIDATION_NOT_DONE)
    del desk.liquidations[cmd.liquidation]
    market = min(liquidation.positions)
    return [PerpLiquidationUpdate(cmd.request_id, cmd.ts_ns, cmd.account_id, market, cmd.liquidation,
                                  int(PerpLiquidationStage.FINISHED), 0, 0, liquidation.equity)]
