"""The price-time priority order book of one market (ticks and lots only).

Structure, chosen for speed in pure Python:
- per side a dict ``price -> Level`` and a heap of prices (bids negated) for
  O(1) best price; empty levels are deleted at once and the heap top is cleaned
  eagerly, so ``best_bid``/``best_ask`` are a peek;
- a Level is a deque in time priority plus its open quantity and order count;
  a cancel is O(1): the order is marked dead (remaining 0) and dropped lazily
  when it reaches the front of its deque;
- ``orders`` maps order id -> RestingOrder for cancel/amend;
- each side notes the prices whose level changed (``touched``) for the exact depth
  diffs (``exchange/matching/depth_changes.py``).

The book knows nothing of balances or fees; ``take`` returns what matched and
the market engine turns it into events.
"""
from __future__ import annotations

from collections import deque
from heapq import heappop, heappush, heapify, nsmallest

from exchange.core.buckets import BucketMap
from exchange.matching.orders import BUY, RestingOrder, StpMode

EXPIRE_TAKER = int(StpMode.EXPIRE_TAKER)
EXPIRE_MAKER = int(StpMode.EXPIRE_MAKER)


class Level:
    __slots__ = ("queue", "qty", "count")

    def __init__(self) -> None:
        self.queue: deque[RestingOrder] = deque()
        self.qty = 0
        self.count = 0


class BookSide:
    """One side of the book. ``sign`` is -1 for bids (max-heap via negation)."""

    __slots__ = ("levels", "heap", "sign", "touched")

    def __init__(self, sign: int) -> None:
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []
        self.sign = sign
        self.touched: set[int] = set()      # prices whose level changed since the last read (depth_changes)

    def best(self) -> int | None:
        heap = self.heap
        return heap[0] * self.sign if heap else None

    def add(self, order: RestingOrder) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = Level()
            heappush(self.heap, order.price * self.sign)
        level.queue.append(order)
        level.qty += order.remaining
        level.count += 1
        self.touched.add(order.price)

    def drop_level(self, price: int) -> None:
        del self.levels[price]
        self._clean_top()

    def _clean_top(self) -> None:
        heap, levels, sign = self.heap, self.levels, self.sign
        while heap and heap[0] * sign not in levels:
            heappop(heap)
        if len(heap) > 2 * len(levels) + 64:  # stale prices deep in the heap: rebuild, in place (``take``
            heap[:] = [p * sign for p in levels]        # holds the list: a new one would leave it stale)
            heapify(heap)

    def prices_best_first(self, limit: int | None = None) -> list[int]:
        keys = [p * self.sign for p in self.levels]
        keys.sort()
        prices = [k * self.sign for k in keys]
        return prices if limit is None else prices[:limit]

    def top(self, n: int) -> list[tuple[int, int, int]]:
        """Return the best ``n`` levels as (price, qty, order count)."""
        levels = self.levels
        return [(k * self.sign, levels[k * self.sign].qty, levels[k * self.sign].count)
                for k in nsmallest(n, (p * self.sign for p in levels))]


class OrderBook:
    """Both sides plus the order index. Mutated only by the market engine."""

    __slots__ = ("bids", "asks", "orders")

    def __init__(self) -> None:
        self.bids = BookSide(-1)
        self.asks = BookSide(1)
        self.orders = BucketMap()            # order id -> RestingOrder

    def best_bid(self) -> int | None:
        return self.bids.best()

    def best_ask(self) -> int | None:
        return self.asks.best()

    def side_of(self, side: int) -> BookSide:
        return self.bids if side == BUY else self.asks

    def add(self, order: RestingOrder) -> None:
        self.orders[order.order_id] = order
        (self.bids if order.side == BUY else self.asks).add(order)

    def remove(self, order_id: int) -> RestingOrder | None:
        """Take an order off the book (O(1)); return it, or None if not resting."""
        order = self.orders.pop(order_id, None)
        if order is None:
            return None
        book_side = self.bids if order.side == BUY else self.asks
        level = book_side.levels[order.price]
        level.qty -= order.remaining
        level.count -= 1
        order.remaining = 0  # dead: skipped when it reaches the front
        book_side.touched.add(order.price)
        if level.count == 0:
            book_side.drop_level(order.price)
        return order

    def reduce(self, order: RestingOrder, new_remaining: int) -> None:
        """Lower an order's open quantity in place, keeping its time priority."""
        book_side = self.side_of(order.side)
        book_side.levels[order.price].qty -= order.remaining - new_remaining
        order.remaining = new_remaining
        book_side.touched.add(order.price)

    def crosses(self, side: int, limit: int) -> bool:
        """Would an order on ``side`` at ``limit`` take liquidity right now?"""
        if side == BUY:
            best = self.asks.best()
            return best is not None and best <= limit
        best = self.bids.best()
        return best is not None and best >= limit

    def fillable(self, side: int, limit: int, qty: int, account_id: int, stp: int) -> bool:
        """Can ``qty`` fill at once up to ``limit`` (for FOK), honouring STP?

        Own orders are skipped under expire-maker (they would be cancelled) and
        end the walk under expire-taker/expire-both (the taker would expire).
        """
        opposite = self.asks if side == BUY else self.bids
        need = qty
        for price in opposite.prices_best_first():
            if (price > limit) if side == BUY else (price < limit):
                break
            for maker in opposite.levels[price].queue:
                if not maker.remaining:
                    continue
                if maker.account_id == account_id:
                    if stp == EXPIRE_MAKER:
                        continue
                    return False
                need -= maker.remaining
                if need <= 0:
                    return True
        return False

    def take(self, side: int, limit: int, qty: int, account_id: int, stp: int,
             fills: list, expired_makers: list) -> tuple[int, bool]:
        """Match an incoming order against the opposite side.

        Appends ``(maker, fill_qty, price)`` to ``fills`` and STP-expired makers
        (with their open quantity at expiry) to ``expired_makers``. Returns the
        taker's unfilled quantity and whether STP expired the taker.
        """
        opposite = self.asks if side == BUY else self.bids
        levels, heap, sign, touched = opposite.levels, opposite.heap, opposite.sign, opposite.touched
        buckets = self.orders.buckets
        while qty and heap:
            price = heap[0] * sign
            if (price > limit) if side == BUY else (price < limit):
                break
            touched.add(price)
            level = levels[price]
            queue = level.queue
            while qty:
                maker = queue[0]
                open_qty = maker.remaining
                if not open_qty:
                    queue.popleft()
                    continue
                if maker.account_id == account_id:
                    if stp == EXPIRE_TAKER:
                        return qty, True
                    queue.popleft()
                    oid = maker.order_id
                    del buckets[(oid >> 10) & 63][oid]
                    level.qty -= open_qty
                    level.count -= 1
                    maker.remaining = 0
                    expired_makers.append((maker, open_qty))
                    if stp != EXPIRE_MAKER:  # expire both
                        if not level.count:
                            opposite.drop_level(price)
                        return qty, True
                elif open_qty <= qty:
                    queue.popleft()
                    oid = maker.order_id
                    del buckets[(oid >> 10) & 63][oid]
                    qty -= open_qty
                    level.qty -= open_qty
                    level.count -= 1
                    maker.remaining = 0
                    fills.append((maker, open_qty, price))
                else:
                    maker.remaining = open_qty - qty
                    level.qty -= qty
                    fills.append((maker, qty, price))
                    qty = 0
                    break
                if not level.count:
                    break
            if not level.count:
                opposite.drop_level(price)
        return qty, False

    def depth(self, n: int) -> tuple[list, list]:
        """Top ``n`` aggregated levels per side: ([(price, qty, count)], [...])."""
        return self.bids.top(n), self.asks.top(n)

    def canonical(self) -> tuple:
        """All open orders in priority order, for hashing and snapshots."""
        out = []
        for book_side in (self.bids, self.asks):
            for price in book_side.prices_best_first():
                out.extend(o.key() for o in book_side.levels[price].queue if o.remaining)
        return tuple(out)

    def check_invariants(self) -> None:
        """Assert the book is consistent and not crossed (raises AssertionError)."""
        bid, ask = self.best_bid(), self.best_ask()
        assert bid is None or ask is None or bid < ask, f"crossed book {bid} >= {ask}"
        live = 0
        for book_side in (self.bids, self.asks):
            for price, level in book_side.levels.items():
                open_orders = [o for o in level.queue if o.remaining]
                assert open_orders and len(open_orders) == level.count, "level count mismatch"
                assert sum(o.remaining for o in open_orders) == level.qty, "level qty mismatch"
                assert all(o.price == price and self.orders[o.order_id] is o for o in open_orders)
                live += len(open_orders)
            assert set(book_side.levels) <= {p * book_side.sign for p in book_side.heap}
        assert live == len(self.orders), "order index mismatch"
