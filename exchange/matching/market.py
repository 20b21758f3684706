"""The market engine: one market's book, its sequence numbers and its events.

It receives requests that an account shard has already validated and funded
(``SubmitOrder``, ``CancelRequest``, ``AmendRequest``; ticks and lots), matches
with price-time priority, computes fees from the rates the order carries, and
returns events in public units, each stamped with the next per-market ``seq``
and the ``ts_ns`` of the request it answers (the market reads no clock).
It never touches balances: shards settle the events it returns.
"""
from __future__ import annotations

from exchange.config import MarketSpec
from exchange.messages.records import (AmendRequest, CancelRequest, Fill, OrderAmended, OrderBooked,
                               OrderClosed, RequestRejected, SubmitOrder)
from exchange.core.money import PPM
from exchange.matching.depth_changes import DepthChanges
from exchange.matching.order_book import OrderBook
from exchange.matching.orders import BUY, RestingOrder, StpMode, TimeInForce
from exchange.core.reasons import CloseReason, Reason

GTC, IOC, FOK, POST_ONLY = (int(t) for t in TimeInForce)
FILLED, CANCELLED, EXPIRED_IOC, EXPIRED_STP, REJECTED = (int(r) for r in CloseReason)
# An amended order that crosses trades as a taker; if it meets its owner's own
# resting orders, the amended order expires (expire-taker), the safest choice.
STP_ON_AMEND = int(StpMode.EXPIRE_TAKER)


class MarketEngine:
    """Match orders for one market; ``handle(request) -> list[event]``."""

    __slots__ = ("spec", "name", "book", "seq", "last_price", "trade_count", "_lot", "_tick", "_qptl", "guard",
                 "changes")

    def __init__(self, spec: MarketSpec):
        self.spec = spec
        self.name = spec.name
        self.book = OrderBook()
        self.seq = 0
        self.last_price = 0          # ticks, 0 before the first trade
        self.trade_count = 0
        self._lot, self._tick, self._qptl = spec.lot_minor, spec.tick_minor, spec.quote_per_tick_lot
        self.guard = None            # the market's mode and circuit breaker (exchange.risk.modes), with a rulebook
        self.changes = DepthChanges()  # the levels touched between reads (exact depth diffs)

    def next_seq(self) -> int:
        """A sequence number for an event the market's owner emits besides matching (a
        perpetual's funding), so the shards apply it in order with the fills."""
        self.seq += 1
        return self.seq

    def handle(self, request) -> list:
        """Apply one shard request; return the events it produced."""
        kind = type(request)
        if kind is SubmitOrder:
            return self.submit(request)
        if kind is CancelRequest:
            return self.cancel(request)
        if kind is AmendRequest:
            return self.amend(request)
        raise TypeError(f"market cannot handle {kind.__name__}")

    # ---- orders -----------------------------------------------------------
    def submit(self, o: SubmitOrder) -> list:
        """Match, rest or reject a funded order.

        Rejections (as OrderClosed REJECTED): MARKET_HALTED, MARKET_REDUCE_ONLY,
        CIRCUIT_BREAKER (the market's mode, ``exchange.risk.modes``), NO_LIQUIDITY,
        POST_ONLY_WOULD_TAKE, FOK_CANNOT_FILL.
        """
        book = self.book
        events: list = []
        tif = o.tif
        if self.guard is not None:
            refused = self.guard.refusal(o.ts_ns, o.reduce_only)
            if refused is not None:
                return self._reject(o, refused, events)
        if o.is_market and (book.best_ask() if o.side == BUY else book.best_bid()) is None:
            return self._reject(o, Reason.NO_LIQUIDITY, events)
        if tif == POST_ONLY and book.crosses(o.side, o.price):
            return self._reject(o, Reason.POST_ONLY_WOULD_TAKE, events)
        if tif == FOK and not book.fillable(o.side, o.price, o.quantity, o.account_id, o.stp):
            return self._reject(o, Reason.FOK_CANNOT_FILL, events)
        self._execute(o.order_id, o.account_id, o.side, o.price, o.quantity, o.quantity, tif,
                      o.stp, o.maker_ppm, o.taker_ppm, o.ts_ns, events, is_market=o.is_market)
        return events

    def _execute(self, order_id, account_id, side, price, qty, total, tif, stp,
                 maker_ppm, taker_ppm, ts_ns, events, *, is_market: bool) -> None:
        book = self.book
        fills: list = []
        expired: list = []
        remaining, taker_expired = book.take(side, price, qty, account_id, stp, fills, expired)
        name, lot, tick, qptl = self.name, self._lot, self._tick, self._qptl
        seq = self.seq
        for maker, fill_qty, fill_price in fills:
            notional = fill_price * fill_qty * qptl
            taker_fee = -((-notional * taker_ppm) // PPM)           # ceil: the taker pays
            mppm = maker.maker_ppm
            maker_fee = -((-notional * mppm) // PPM) if mppm >= 0 else -((notional * -mppm) // PPM)
            seq += 1
            events.append(Fill(name, seq, ts_ns, fill_price * tick, fill_qty * lot, order_id, account_id,
                               side, maker.order_id, maker.account_id, taker_fee, maker_fee))
            if not maker.remaining:
                seq += 1
                events.append(OrderClosed(name, seq, ts_ns, maker.order_id, maker.account_id, FILLED, 0))
        if fills:
            self.last_price = fills[-1][2]
            self.trade_count += len(fills)
            if self.guard is not None:
                self.guard.observe(ts_ns, self.last_price)
        for maker, open_qty in expired:
            seq += 1
            events.append(OrderClosed(name, seq, ts_ns, maker.order_id, maker.account_id, EXPIRED_STP, open_qty * lot))
        seq += 1
        if not remaining:
            events.append(OrderClosed(name, seq, ts_ns, order_id, account_id, FILLED, 0))
        elif taker_expired:
            events.append(OrderClosed(name, seq, ts_ns, order_id, account_id, EXPIRED_STP, remaining * lot))
        elif is_market or tif == IOC or tif == FOK:
            events.append(OrderClosed(name, seq, ts_ns, order_id, account_id, EXPIRED_IOC, remaining * lot))
        else:
            book.add(RestingOrder(order_id, account_id, side, price, remaining, total, maker_ppm, tif, ts_ns))
            events.append(OrderBooked(name, seq, ts_ns, order_id, account_id, price * tick, remaining * lot))
        self.seq = seq

    def _reject(self, o: SubmitOrder, reason: Reason, events: list) -> list:
        self.seq += 1
        events.append(OrderClosed(self.name, self.seq, o.ts_ns, o.order_id, o.account_id, REJECTED,
                                  o.quantity * self._lot, int(reason)))
        return events

    # ---- cancel and amend -------------------------------------------------
    def _owned(self, request) -> RestingOrder | Reason:
        order = self.book.orders.get(request.order_id)
        if order is None:
            return Reason.ORDER_NOT_FOUND
        if order.account_id != request.account_id:
            return Reason.NOT_OWNER
        return order

    def _refuse(self, request, reason: Reason) -> list:
        self.seq += 1
        return [RequestRejected(self.name, self.seq, request.ts_ns, request.request_id, request.order_id,
                                request.account_id, int(reason))]

    def cancel(self, r: CancelRequest) -> list:
        """Cancel a resting order. Refusals: ORDER_NOT_FOUND, NOT_OWNER."""
        order = self._owned(r)
        if not isinstance(order, RestingOrder):
            return self._refuse(r, order)
        open_qty = order.remaining
        self.book.remove(r.order_id)
        self.seq += 1
        return [OrderClosed(self.name, self.seq, r.ts_ns, order.order_id, order.account_id, CANCELLED,
                            open_qty * self._lot)]

    def amend(self, r: AmendRequest) -> list:
        """Amend price and/or total quantity.

        Refusals: ORDER_NOT_FOUND, NOT_OWNER, the market's mode (MARKET_HALTED...),
        AMEND_NO_CHANGE, AMEND_BELOW_FILLED, POST_ONLY_WOULD_TAKE.
        """
        order = self._owned(r)
        if not isinstance(order, RestingOrder):
            return self._refuse(r, order)
        if self.guard is not None:
            refused = self.guard.refusal(r.ts_ns, False)
            if refused is not None:
                return self._refuse(r, refused)
        filled = order.total - order.remaining
        new_price = r.price or order.price
        new_total = r.quantity or order.total
        if new_price == order.price and new_total == order.total:
            return self._refuse(r, Reason.AMEND_NO_CHANGE)
        if new_total <= filled:
            return self._refuse(r, Reason.AMEND_BELOW_FILLED)
        book = self.book
        if new_price == order.price and new_total < order.total:
            book.reduce(order, new_total - filled)
            order.total = new_total
            self.seq += 1
            return [OrderAmended(self.name, self.seq, r.ts_ns, r.request_id, order.order_id, order.account_id,
                                 new_price * self._tick, order.remaining * self._lot, kept_priority=True)]
        if order.tif == POST_ONLY and book.crosses(order.side, new_price):
            return self._refuse(r, Reason.POST_ONLY_WOULD_TAKE)
        book.remove(order.order_id)
        self.seq += 1
        events: list = [OrderAmended(self.name, self.seq, r.ts_ns, r.request_id, order.order_id,
                                     order.account_id, new_price * self._tick, (new_total - filled) * self._lot,
                                     kept_priority=False)]
        self._execute(order.order_id, order.account_id, order.side, new_price, new_total - filled, new_total,
                      order.tif, STP_ON_AMEND, order.maker_ppm, r.taker_ppm, r.ts_ns, events, is_market=False)
        return events

    # ---- views --------------------------------------------------------------
    def depth(self, levels: int) -> dict:
        """Aggregated top of book in public units, as of ``seq`` (a mark for ``depth_changes``)."""
        self.changes.mark(self.seq, self.book)
        bids, asks = self.book.depth(levels)
        tick, lot = self._tick, self._lot
        return {"market": self.name, "seq": self.seq,
                "bids": [(p * tick, q * lot, n) for p, q, n in bids],
                "asks": [(p * tick, q * lot, n) for p, q, n in asks]}

    def depth_changes(self, since: int) -> dict | None:
        """Every level touched after the read at sequence ``since``, with its quantity now
        (0: gone), best first, in public units; and the best bid and ask. None when
        that is no longer known (``exchange.matching.depth_changes``): read ``depth``
        again."""
        self.changes.mark(self.seq, self.book)
        touched = self.changes.since(since, self.seq)
        if touched is None:
            return None
        tick, lot, book = self._tick, self._lot, self.book
        out = {"market": self.name, "seq": self.seq}
        best = []
        for name, side, prices, best_first in (("bids", book.bids, touched[0], True),
                                               ("asks", book.asks, touched[1], False)):
            levels, top = side.levels, side.best()
            out[name] = [(p * tick, levels[p].qty * lot if p in levels else 0)
                         for p in sorted(prices, reverse=best_first)]
            best.append([] if top is None else [(top * tick, levels[top].qty * lot)])
        out["best"] = tuple(best)
        return out

    def canonical(self) -> tuple:
        guard = () if self.guard is None else (self.guard.canonical(),)     # a venue without rules keeps its hash
        return (self.name, self.seq, self.last_price, self.trade_count, self.book.canonical(), *guard)

    def check_invariants(self) -> None:
        self.book.check_invariants()

