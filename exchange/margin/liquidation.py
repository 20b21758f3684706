"""Forced liquidation of margin books: the shard's side (commands the
LiquidatorActor sends) and the liquidator's decision rule, both pure.

The liquidator takes a book over when its margin level is at or under the
liquidation line (seed 001; rulebook 4.2.2 and 5.4.4: assets / liabilities
<= 110%) and drives it with these commands, each an ordinary journaled,
de-duplicated command on the owning shard:

- ``StartLiquidation``: re-checks the level at the prices it carries (refused
  ``NOT_BELOW_LIQUIDATION_LINE`` if the book recovered), marks the book
  liquidating (the user's margin commands on it are refused
  ``ACCOUNT_IN_LIQUIDATION``), lists its open orders (the liquidator cancels
  them) and repays what the book already holds of each borrowed asset;
- ``LiquidationStep``: repays what can be repaid; otherwise places one IOC
  order in ``trade_market``: buy back a borrowed base asset with the quote, or
  sell collateral for the quote, at the index price moved ``step x
  liquidation_step_bps`` against the book (so the limit widens step by step).
  The order repays automatically when it closes: principal and interest go to
  the pool first;
- ``CoverShortfall``: once nothing is left to sell, the insurance fund credits
  what is still owed and it is repaid (the bad debt is recorded by the
  liquidator); the pool is made whole;
- ``WriteOffDebt``: only if the fund cannot cover it, the pool gives up the
  rest of the loan (its suppliers carry the loss; recorded as written off);
- ``FinishLiquidation``: the book is handed back; whatever it still holds is
  the user's (seed 001: the remainder returns to the user).

Each command that gets past the checks is answered with a ``LiquidationUpdate``
whose ``stage`` (a ``LiquidationStage``) says how far it got: ``STARTED``,
``REPAID``, ``ORDER``, ``IDLE``, ``COVERED``, ``WRITTEN_OFF``, ``FINISHED``.

``next_action(view, ...)`` is the liquidator's rule for what to send next.
"""
from __future__ import annotations

from exchange.accounts.holds import buy_hold_per_lot
from exchange.margin.desk import Awaiting, MarginBook, Then
from exchange.messages.records import (POOL_WRITE_OFF, CoverShortfall, FinishLiquidation, LiquidationStage,
                                       LiquidationStep, LiquidationUpdate, OrderRejected, PlaceMarginOrder,
                                       StartLiquidation, WriteOffDebt)
from exchange.matching.orders import BUY, SELL, OrderType, TimeInForce
from exchange.core.reasons import Reason

LIMIT, IOC = int(OrderType.LIMIT), int(TimeInForce.IOC)
MAX_WIDTH_BPS = 9_000          # a liquidation limit never goes further than 90% off the index


class LiquidationCommands:
    """The shard's handlers for the liquidator's commands."""

    def __init__(self, shard):
        self.shard = shard
        self.margin = shard.margin
        self.handlers = {StartLiquidation: self.start, LiquidationStep: self.step, CoverShortfall: self.cover,
                         WriteOffDebt: self.write_off, FinishLiquidation: self.finish}

    def apply(self, cmd) -> tuple[list, object | None]:
        kind = type(cmd)
        handler = self.handlers[kind]
        if cmd.account_id not in self.shard.ledger.accounts:
            return _reject(cmd, Reason.UNKNOWN_ACCOUNT), None
        if hasattr(cmd, "prices") and not _valid_prices(cmd.prices, self.margin):    # the door checked it too
            return _reject(cmd, Reason.INVALID_PRICE_VECTOR), None
        book = self.margin.book(cmd.account_id, cmd.market)
        if book is None:
            return _reject(cmd, Reason.NOT_BELOW_LIQUIDATION_LINE if kind is StartLiquidation
                           else Reason.NOT_IN_LIQUIDATION), None
        if kind is not StartLiquidation and not book.liquidating:
            return _reject(cmd, Reason.NOT_IN_LIQUIDATION), None
        return handler(cmd, book)

    def _progress_at(self, cmd, book: MarginBook, stage: LiquidationStage, prices=(), detail: tuple = ()) -> list:
        """The answer with the book's margin level at ``prices`` (0 without prices or debt)."""
        level = self.margin.level_ppm(book, prices) if prices else None
        return [_progress(cmd, stage, level or 0, detail)]

    def _repay_held(self, book: MarginBook, ts_ns: int) -> bool:
        """Repay each borrowed asset from what the book holds of it; True if any was sent."""
        sent = len(self.margin.followups)
        for i, scaled in enumerate(book.scaled):
            if scaled:
                self.margin.auto_repay(book, i, ts_ns)
        return len(self.margin.followups) > sent

    def start(self, cmd: StartLiquidation, book: MarginBook) -> tuple[list, None]:
        if book.liquidating:
            return _reject(cmd, Reason.ACCOUNT_IN_LIQUIDATION), None
        level = self.margin.level_ppm(book, cmd.prices)
        if level is None and book.has_debt():
            return _reject(cmd, Reason.NO_INDEX_PRICE), None
        if level is None or level > self.margin.rules.liquidation_level_ppm:
            return _reject(cmd, Reason.NOT_BELOW_LIQUIDATION_LINE), None
        book.liquidating = True
        orders = tuple((o.order_id, o.market.name) for o in self.shard.open_orders(cmd.account_id)
                       if o.book == book.market)
        self._repay_held(book, cmd.ts_ns)
        return [_progress(cmd, LiquidationStage.STARTED, level, orders)], None

    def step(self, cmd: LiquidationStep, book: MarginBook) -> tuple[list, object | None]:
        config = self.shard.config
        spec = config.markets.get(cmd.trade_market) if type(cmd.trade_market) is str else None
        if spec is None or spec.name not in config.margin.markets or (book.market and spec.name != book.market):
            return _reject(cmd, Reason.UNKNOWN_MARKET), None
        if cmd.step < 1:
            return _reject(cmd, Reason.INVALID_LIQUIDATION_STEP), None
        if not cmd.prices[spec.base.index] or not cmd.prices[spec.quote.index]:
            return _reject(cmd, Reason.NO_INDEX_PRICE), None         # never sell blind
        if self._repay_held(book, cmd.ts_ns):
            return self._progress_at(cmd, book, LiquidationStage.REPAID, cmd.prices), None
        account = self.shard.ledger.accounts[cmd.account_id]
        plan = plan_order(self.margin, book, spec, cmd.prices, cmd.step, config.margin.liquidation_step_bps,
                          account.taker_ppm)
        if plan is None:
            return self._progress_at(cmd, book, LiquidationStage.IDLE, cmd.prices), None
        side, ticks, lots = plan
        order = PlaceMarginOrder(cmd.request_id, cmd.ts_ns, cmd.account_id, spec.name, side, LIMIT,
                                 ticks * spec.tick_minor, lots * spec.lot_minor, IOC,
                                 isolated=bool(book.market), auto_borrow=False, auto_repay=True)
        terms = (account, spec, side, ticks, lots, LIMIT, IOC, 0)
        rejected, request = self.shard.fund_order(order, terms, book, auto_repay=True)
        detail = (spec.name, side, ticks * spec.tick_minor, lots * spec.lot_minor)
        return [*self._progress_at(cmd, book, LiquidationStage.ORDER, cmd.prices, detail), *rejected], request

    def cover(self, cmd: CoverShortfall, book: MarginBook) -> tuple[list, None]:
        margin = self.margin
        asset = margin.asset_index.get(cmd.asset) if type(cmd.asset) is str else None
        if asset is None:
            return _reject(cmd, Reason.UNKNOWN_ASSET), None
        if type(cmd.amount) is not int or cmd.amount <= 0:
            return _reject(cmd, Reason.NON_POSITIVE_AMOUNT), None
        book.available[asset] += cmd.amount
        margin.fund_in[asset] += cmd.amount
        margin.auto_repay(book, asset, cmd.ts_ns)
        return [_progress(cmd, LiquidationStage.COVERED, 0, (cmd.asset, cmd.amount))], None

    def write_off(self, cmd: WriteOffDebt, book: MarginBook) -> tuple[list, object | None]:
        """Ask the pool to give up what the book still owes in ``asset`` (the fund is empty)."""
        margin = self.margin
        asset = margin.asset_index.get(cmd.asset) if type(cmd.asset) is str else None
        if asset is None:
            return _reject(cmd, Reason.UNKNOWN_ASSET), None
        owed = margin.debt(book, asset)
        if not owed:
            return _reject(cmd, Reason.NOTHING_OWED), None
        request = margin.pool_request(POOL_WRITE_OFF, book.account_id, book.market, asset, owed, cmd.ts_ns,
                                      Awaiting(Then.WRITE_OFF))
        return [_progress(cmd, LiquidationStage.WRITTEN_OFF, 0, (cmd.asset, owed))], request

    def finish(self, cmd: FinishLiquidation, book: MarginBook) -> tuple[list, None]:
        book.liquidating = False
        return [_progress(cmd, LiquidationStage.FINISHED, 0)], None


def plan_order(margin, book: MarginBook, spec, prices, step: int, step_bps: int,
               taker_ppm: int) -> tuple[int, int, int] | None:
    """(side, limit ticks, lots) of the next liquidation IOC in ``spec``'s market, or None.

    A borrowed base asset is bought back first (with the book's quote); else
    the base is sold for the quote when the book owes anything else.
    """
    base, quote = spec.base.index, spec.quote.index
    index_price = prices[base] if base < len(prices) else 0
    if index_price <= 0:
        return None
    width = min(step * step_bps, MAX_WIDTH_BPS)
    short = margin.debt(book, base) - book.available[base]
    if short > 0:
        ticks = max(1, index_price * (10_000 + width) // 10_000 // spec.tick_minor)
        per_lot = buy_hold_per_lot(spec, ticks, taker_ppm)
        lots = min(-(-short // spec.lot_minor), book.available[quote] // per_lot, spec.max_lots)
        return (BUY, ticks, lots) if lots >= spec.min_lots else None
    owes_other = any(scaled for i, scaled in enumerate(book.scaled) if i != base)
    lots = min(book.available[base] // spec.lot_minor, spec.max_lots)
    if not owes_other or lots < spec.min_lots:
        return None
    ticks = max(1, -(-(index_price * (10_000 - width) // 10_000) // spec.tick_minor))
    return SELL, ticks, lots


def next_action(view: dict, markets: list, lots: dict[str, tuple[str, str, int]],
                repay_market: str | None = None) -> tuple:
    """What the liquidator sends next for a book, from the shard's ``book_view``.

    ``markets``: the margin markets the book may still trade (its own, or every
    margin market for a cross book, less those found exhausted); ``lots``:
    market -> (base, quote, minimum base quantity); ``repay_market``: a market
    to send a step to that only repays what the book holds when none is left to
    trade (a step repays held debt first, ``LiquidationCommands.step``). Returns
    ``("trade", market)``, ``("cover", asset, amount)`` or ``("finish",)``:
    never ``finish`` while the book holds some of what it owes.
    """
    debt, available = view["debt"], view["available"]
    if not any(debt.values()):
        return ("finish",)
    for market in markets:
        base, quote, min_qty = lots[market]
        if debt[base] > available[base] and available[quote] > 0:
            return ("trade", market)
        if available[base] >= min_qty and any(v for a, v in debt.items() if a != base):
            return ("trade", market)
    via = markets[0] if markets else repay_market
    for asset in sorted(debt):
        if debt[asset] > 0 and available[asset] > 0 and via:
            return ("trade", via)                 # a step repays what the book holds first
        if debt[asset] > available[asset]:
            return ("cover", asset, debt[asset] - available[asset])
    return ("finish",)


def _valid_prices(prices, margin) -> bool:
    """One non-negative int per asset (0: unknown)."""
    return isinstance(prices, (tuple, list)) and len(prices) == len(margin.assets) \
        and all(type(p) is int and 0 <= p <= 2**63 - 1 for p in prices)


def _progress(cmd, stage: LiquidationStage, level_ppm: int, detail: tuple = ()) -> LiquidationUpdate:
    """The answer to a liquidator's command: how far it got (stamped with the command's ``ts_ns``)."""
    return LiquidationUpdate(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.market, stage, level_ppm, detail)


def _reject(cmd, reason: Reason) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason))]

