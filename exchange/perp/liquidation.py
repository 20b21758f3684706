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
liquidation's **bankruptcy price** there, fixed at the take-over: the price at
which closing the whole position loses exactly its share (what fills worse
or better than it make is the fund's). Orders of the account in those markets must be cancelled
first (PERP_ORDERS_OPEN).

**Closing.** ``LiquidationOrderPerp`` sends an immediate-or-cancel order for the
liquidation's lots (no fee: the taker side of a liquidation pays none); its
fills realize PnL against the mark into the liquidation's equity.
``DeleveragePerp`` closes an opposite position at the bankruptcy price (ADL, on
that account's shard) and ``AbsorbDeleverage`` closes the liquidation's side
at the same price (on the liquidated account's shard): the two sides of one
trade, so PnL stays zero-sum. ``quantity`` of a ``DeleveragePerp`` carries
the sign of the position it closes (a long's > 0): a position that turned
to the other side since the liquidator read it is not closed
(CANNOT_DELEVERAGE). ``FinishPerpLiquidation`` ends a liquidation with every
lot closed and answers, market by market, the equity left: more than zero
(fills better than bankruptcy) goes into that market's insurance fund, less
than zero (fills worse) is drawn from it. Those fund entries are the
caller's (``exchange.perp.fund``); the desk's totals drop by exactly that
amount. A liquidation has at most one order in flight per market
(PERP_ORDERS_OPEN).

**Reads.** ``read`` answers the liquidator's questions as plain data (the
same function in the Engine and on a shard actor): who is due, the orders to
cancel before a take-over (None when the account is no longer due), a
liquidation's state (``view``), ADL candidates, and whether an account exists
(before a compensation is recorded for it).

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

    __slots__ = ("n", "account_id", "asset", "positions", "equity", "shares", "results", "bankrupt")

    def __init__(self, n: int, account_id: int, asset: int):
        self.n = n
        self.account_id = account_id
        self.asset = asset                       # the settlement asset the equity is in
        self.positions: dict[str, Position] = {}
        self.equity = 0
        self.shares: dict[str, int] = {}         # market -> its share of the equity taken over
        self.results: dict[str, int] = {}        # market -> PnL its closes realized (against the mark)
        self.bankrupt: dict[str, int | None] = {}  # market -> bankruptcy price at the take-over (ticks)

    def left(self, market: str) -> int:
        """The equity left in ``market``: its share and what closing there realized."""
        return self.shares[market] + self.results.get(market, 0)

    def canonical(self) -> tuple:
        return (self.n, self.account_id, self.asset, self.equity, tuple(sorted(self.shares.items())),
                tuple(sorted(self.results.items())), tuple(sorted(self.bankrupt.items())), tuple((m, p.lots, p.basis) for m, p in sorted(self.positions.items())))


DUE, ORDERS, LIQUIDATION, CANDIDATES, ACCOUNT = "due", "orders", "liquidation", "candidates", "account"


def read(desk, what: str, account_id: int = 0, market: str = "", n: int = 0, exclude=()):
    """The liquidator's question ``what`` (``exchange.perp.liquidator.Read``) answered from
    ``desk``, as plain lists and dicts (they cross Ray as they are). For ``CANDIDATES``, ``n``
    is the bankrupt position's signed lots and ``exclude`` the accounts never taken (its own
    and those linked to it): ``PerpDesk.adl_ranked``."""
    if what == DUE:
        return [[account, name] for account, name in due(desk)]
    if what == ORDERS:
        return orders_to_cancel(desk, account_id, market)
    if what == LIQUIDATION:
        return view(desk, account_id, n)
    if what == CANDIDATES:
        return [[c.account_id, c.lots, c.basis, c.equity] for c in desk.adl_ranked(market, n, frozenset(exclude))]
    if what == ACCOUNT:
        return account_id in desk.ledger.accounts
    raise ValueError(f"no such perpetual liquidation read: {what!r}")


def orders_to_cancel(desk, account_id: int, market: str) -> list | None:
    """``[order id, market]`` of the account's orders a take-over of ``market`` ("" for its
    cross positions) needs cancelled; None if that scope is not due (then nothing is cancelled)."""
    if (account_id, market) not in account_due(desk, account_id):
        return None
    wallet = desk.accounts[account_id]
    names = {market} if market else {name for name, p in wallet.positions.items()
                                     if p.lots and p.mode == MarginMode.CROSS}
    return [[o.order_id, o.market.name] for o in sorted(wallet.orders.values(), key=lambda o: o.order_id)
            if o.market.name in names and not o.liquidation]


def view(desk, account_id: int, n: int) -> dict | None:
    """Liquidation ``n`` of ``account_id`` as the liquidator steers it, per market: lots left
    and their basis, its share of the equity taken over, the equity left there, the bankruptcy price (None: no positive price breaks even), the
    mark, and whether one of its orders is still in flight; None once finished (or never
    taken over)."""
    liquidation = desk.liquidations.get(n)
    if liquidation is None or liquidation.account_id != account_id:
        return None
    busy = {o.market.name for o in desk.accounts[account_id].orders.values() if o.liquidation == n}
    return {"markets": {name: {"lots": p.lots, "basis": p.basis, "share": liquidation.shares[name],
                               "left": liquidation.left(name),
                               "bankrupt": liquidation.bankrupt[name],
                               "mark": desk._mark(desk.markets[name], p), "order_open": name in busy}
                        for name, p in sorted(liquidation.positions.items())}}


def due(desk) -> list[tuple[int, str]]:
    """Who is due for liquidation, in account order: the accounts the last marks put at or
    under maintenance (zone 2 of ``PerpDesk.zones``: no scan of every account), confirmed
    now (``account_due``)."""
    accounts = sorted({account for (account, _), zone in desk.zones.items() if zone == 2})
    return [key for account_id in accounts for key in account_due(desk, account_id)]


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
    desk.zones.pop((cmd.account_id, cmd.market), None)       # nothing of that scope is at risk any more
    desk.index.touch(cmd.account_id)
    _share(liquidation, notionals)
    for name in names:
        position = liquidation.positions[name]
        market = desk.markets[name]
        liquidation.bankrupt[name] = bankruptcy_price(position.lots, position.basis, liquidation.shares[name], market.k)
    return [_update(cmd, name, PerpLiquidationStage.TAKEN_OVER, liquidation.positions[name].lots, marks[name],
                    liquidation.shares[name]) for name in names]


def _share(liquidation: PerpLiquidation, notionals: dict[str, int]) -> None:
    """Each market's share of the equity, pro rata its notional; the units left to the largest."""
    total = sum(notionals.values())
    for name, notional in notionals.items():
        liquidation.shares[name] = liquidation.equity * notional // total if total else 0
    largest = max(sorted(notionals), key=lambda name: notionals[name])
    liquidation.shares[largest] += liquidation.equity - sum(liquidation.shares.values())


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
    if any(o.liquidation == cmd.liquidation and o.market is market for o in desk.accounts[cmd.account_id].orders.values()):
        return _reject(cmd, Reason.PERP_ORDERS_OPEN), None
    ticks, lots = grid
    side = SELL if position.lots > 0 else BUY
    order_id = desk.new_liquidation_order(cmd, market, side, ticks, lots)
    return [], SubmitOrder(order_id, cmd.account_id, side, ticks, lots, IOC, False, EXPIRE_TAKER, 0, 0, cmd.ts_ns,
                           True)       # it only closes: a reduce-only market takes it


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
    the grid's checks, CANNOT_DELEVERAGE for more lots than it holds or, for a
    ``DeleveragePerp``, a position on the other side than ``quantity``'s sign says)."""
    if position is None or not position.lots:
        return _reject(cmd, Reason.NO_POSITION)
    if type(cmd) is not AbsorbDeleverage:
        if (cmd.quantity < 0) != (position.lots < 0):
            return _reject(cmd, Reason.CANNOT_DELEVERAGE)
        cmd = cmd._replace(quantity=abs(cmd.quantity))
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
    return [PerpLiquidationUpdate(cmd.request_id, cmd.ts_ns, cmd.account_id, name, cmd.liquidation,
                                  int(PerpLiquidationStage.FINISHED), 0, 0, liquidation.left(name))
            for name in sorted(liquidation.positions)]
