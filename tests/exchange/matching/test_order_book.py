"""exchange.matching.order_book: price-time priority, lazy cancels, STP while matching,
FOK look-ahead, aggregated depth and self-checks (ticks and lots only)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from exchange.matching.order_book import OrderBook
from exchange.matching.orders import RestingOrder
from tests.exchange.support import BUY, EXPIRE_BOTH, EXPIRE_MAKER, EXPIRE_TAKER, GTC, SELL

TAKER_ACCOUNT = 99


def order(order_id: int, side: int, price: int, qty: int, account: int | None = None) -> RestingOrder:
    return RestingOrder(order_id, order_id if account is None else account, side, price, qty, qty, 0, GTC, order_id)


def book_with(*orders: RestingOrder) -> OrderBook:
    book = OrderBook()
    for o in orders:
        book.add(o)
    book.check_invariants()
    return book


def take(book: OrderBook, side: int, limit: int, qty: int, account: int = TAKER_ACCOUNT, stp: int = EXPIRE_TAKER):
    fills, expired = [], []
    left, taker_expired = book.take(side, limit, qty, account, stp, fills, expired)
    book.check_invariants()
    return left, taker_expired, [(m.order_id, q, p) for m, q, p in fills], [(m.order_id, q) for m, q in expired]


def test_empty_book_with_no_orders_has_no_best_prices_and_no_depth():
    book = OrderBook()
    assert (book.best_bid(), book.best_ask()) == (None, None)
    assert book.depth(5) == ([], [])
    assert not book.crosses(BUY, 10**9) and not book.crosses(SELL, 1)
    book.check_invariants()


def test_depth_with_several_levels_aggregates_best_first():
    book = book_with(order(1, BUY, 100, 5), order(2, BUY, 102, 1), order(3, BUY, 100, 2),
                     order(4, SELL, 105, 3), order(5, SELL, 104, 4), order(6, SELL, 105, 6))
    assert (book.best_bid(), book.best_ask()) == (102, 104)
    assert book.depth(10) == ([(102, 1, 1), (100, 7, 2)], [(104, 4, 1), (105, 9, 2)])
    assert book.depth(1) == ([(102, 1, 1)], [(104, 4, 1)])


def test_take_with_one_level_fills_in_time_priority():
    book = book_with(order(1, SELL, 100, 2), order(2, SELL, 100, 3), order(3, SELL, 100, 4))
    left, expired, fills, _ = take(book, BUY, 100, 6)
    assert (left, expired) == (0, False)
    assert fills == [(1, 2, 100), (2, 3, 100), (3, 1, 100)]
    assert book.orders[3].remaining == 3 and book.depth(5)[1] == [(100, 3, 1)]


def test_take_with_several_levels_fills_best_price_first_and_stops_at_limit():
    book = book_with(order(1, SELL, 103, 5), order(2, SELL, 101, 1), order(3, SELL, 102, 2))
    left, _, fills, _ = take(book, BUY, 102, 10)
    assert fills == [(2, 1, 101), (3, 2, 102)]
    assert left == 7
    assert book.best_ask() == 103


def test_take_with_sell_taker_fills_highest_bids_first():
    book = book_with(order(1, BUY, 99, 5), order(2, BUY, 101, 1), order(3, BUY, 100, 2))
    left, _, fills, _ = take(book, SELL, 100, 4)
    assert fills == [(2, 1, 101), (3, 2, 100)] and left == 1
    assert book.best_bid() == 99


def test_remove_with_resting_order_drops_it_lazily_and_updates_level():
    book = book_with(order(1, SELL, 100, 2), order(2, SELL, 100, 3), order(3, SELL, 101, 1))
    removed = book.remove(1)
    assert removed is not None and removed.order_id == 1
    book.check_invariants()
    assert book.depth(5)[1] == [(100, 3, 1), (101, 1, 1)]
    assert book.remove(1) is None
    _, _, fills, _ = take(book, BUY, 101, 4)
    assert fills == [(2, 3, 100), (3, 1, 101)]


def test_remove_with_last_order_of_best_level_moves_best_price():
    book = book_with(order(1, BUY, 100, 1), order(2, BUY, 98, 1))
    book.remove(1)
    book.check_invariants()
    assert book.best_bid() == 98
    book.remove(2)
    assert book.best_bid() is None and book.depth(5) == ([], [])


def test_reduce_with_smaller_remaining_keeps_queue_position():
    book = book_with(order(1, SELL, 100, 5), order(2, SELL, 100, 5))
    book.reduce(book.orders[1], 2)
    book.check_invariants()
    assert book.depth(1)[1] == [(100, 7, 2)]
    _, _, fills, _ = take(book, BUY, 100, 3)
    assert fills == [(1, 2, 100), (2, 1, 100)]


def test_take_with_expire_taker_stops_before_own_order_and_keeps_it():
    book = book_with(order(1, SELL, 100, 1), order(2, SELL, 100, 1, account=TAKER_ACCOUNT), order(3, SELL, 100, 1))
    left, expired, fills, gone = take(book, BUY, 100, 3, stp=EXPIRE_TAKER)
    assert (left, expired, fills, gone) == (2, True, [(1, 1, 100)], [])
    assert [o.order_id for o in book.asks.levels[100].queue if o.remaining] == [2, 3]


def test_take_with_expire_maker_removes_own_order_and_continues():
    book = book_with(order(1, SELL, 100, 1, account=TAKER_ACCOUNT), order(2, SELL, 100, 2))
    left, expired, fills, gone = take(book, BUY, 100, 2, stp=EXPIRE_MAKER)
    assert (left, expired, fills, gone) == (0, False, [(2, 2, 100)], [(1, 1)])
    assert book.orders == {}


def test_take_with_expire_both_removes_own_order_and_stops():
    book = book_with(order(1, SELL, 100, 4, account=TAKER_ACCOUNT), order(2, SELL, 100, 2))
    left, expired, fills, gone = take(book, BUY, 100, 2, stp=EXPIRE_BOTH)
    assert (left, expired, fills, gone) == (2, True, [], [(1, 4)])
    assert list(book.orders) == [2]


def test_take_with_expire_both_on_last_order_of_level_drops_level():
    book = book_with(order(1, SELL, 100, 4, account=TAKER_ACCOUNT), order(2, SELL, 101, 2))
    left, expired, _, gone = take(book, BUY, 101, 2, stp=EXPIRE_BOTH)
    assert (left, expired, gone) == (2, True, [(1, 4)])
    assert book.best_ask() == 101


@pytest.mark.parametrize("stp,qty,expected", [
    (EXPIRE_TAKER, 1, True),      # fills from order 1 before reaching its own order
    (EXPIRE_TAKER, 2, False),     # would reach its own order: the taker would expire
    (EXPIRE_BOTH, 2, False),
    (EXPIRE_MAKER, 2, True),      # own order skipped (it would be expired), 1 + 3 available
    (EXPIRE_MAKER, 4, True),
    (EXPIRE_MAKER, 5, False),
])
def test_fillable_with_own_order_in_the_way_honours_stp(stp, qty, expected):
    book = book_with(order(1, SELL, 100, 1), order(2, SELL, 100, 5, account=TAKER_ACCOUNT), order(3, SELL, 101, 3))
    assert book.fillable(BUY, 101, qty, TAKER_ACCOUNT, stp) is expected
    assert book.fillable(BUY, 100, 2, TAKER_ACCOUNT, EXPIRE_MAKER) is False  # order 3 is beyond the limit


def test_fillable_with_cancelled_orders_ignores_them():
    book = book_with(order(1, SELL, 100, 5), order(2, SELL, 100, 1))
    book.remove(1)
    assert not book.fillable(BUY, 100, 2, TAKER_ACCOUNT, EXPIRE_TAKER)
    assert book.fillable(BUY, 100, 1, TAKER_ACCOUNT, EXPIRE_TAKER)


def test_book_with_many_dropped_deep_levels_keeps_heap_bounded_and_best_correct():
    book = OrderBook()
    for i in range(1, 2001):
        book.add(order(i, SELL, 1000 + i, 1))
    for i in range(2000, 1, -1):     # drop every level except the best, deepest first
        book.remove(i)
    book.check_invariants()
    assert book.best_ask() == 1001
    book.remove(1)
    book.check_invariants()
    assert book.best_ask() is None
    assert len(book.asks.heap) <= 64
    book.add(order(5000, SELL, 1500, 1))   # a price that was stale in the heap before
    book.add(order(5001, SELL, 1400, 1))
    assert book.best_ask() == 1400
    book.check_invariants()


def test_check_invariants_with_crossed_book_fails():
    book = book_with(order(1, BUY, 100, 1))
    book.add(order(2, SELL, 100, 1))
    with pytest.raises(AssertionError, match="crossed"):
        book.check_invariants()


def test_check_invariants_with_corrupted_level_quantity_fails():
    book = book_with(order(1, BUY, 100, 1))
    book.bids.levels[100].qty += 1
    with pytest.raises(AssertionError, match="qty"):
        book.check_invariants()


def test_canonical_with_mixed_orders_lists_bids_then_asks_in_priority():
    book = book_with(order(1, BUY, 99, 1), order(2, BUY, 100, 1), order(3, BUY, 100, 1), order(4, SELL, 102, 1),
                     order(5, SELL, 101, 1))
    assert [k[0] for k in book.canonical()] == [2, 3, 1, 5, 4]


# ---- against a naive model ------------------------------------------------------

class NaiveBook:
    """Open orders in a list; the best maker is found by sorting every time."""

    def __init__(self):
        self.orders: list[list] = []   # [order_id, account, side, price, remaining, arrival]
        self.arrival = 0

    def submit(self, order_id, account, side, price, qty, stp):
        fills, expired = [], []
        while qty:
            makers = [o for o in self.orders if o[2] != side and (o[3] <= price if side == BUY else o[3] >= price)]
            if not makers:
                break
            maker = min(makers, key=lambda o: (o[3] if side == BUY else -o[3], o[5]))
            if maker[1] == account:
                if stp == EXPIRE_TAKER:
                    return fills, expired, qty, True
                self.orders.remove(maker)
                expired.append((maker[0], maker[4]))
                if stp == EXPIRE_BOTH:
                    return fills, expired, qty, True
                continue
            q = min(qty, maker[4])
            fills.append((maker[0], q, maker[3]))
            maker[4] -= q
            qty -= q
            if not maker[4]:
                self.orders.remove(maker)
        if qty:
            self.arrival += 1
            self.orders.append([order_id, account, side, price, qty, self.arrival])
        return fills, expired, qty, False

    def cancel(self, order_id):
        self.orders = [o for o in self.orders if o[0] != order_id]

    def priority(self):
        bids = sorted((o for o in self.orders if o[2] == BUY), key=lambda o: (-o[3], o[5]))
        asks = sorted((o for o in self.orders if o[2] == SELL), key=lambda o: (o[3], o[5]))
        return [(o[0], o[3], o[4]) for o in bids + asks]


ops = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 3), st.sampled_from([BUY, SELL]), st.integers(95, 105),
              st.integers(1, 6), st.sampled_from([EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH])),
    st.tuples(st.just("cancel"), st.integers(0, 10**6)),
), max_size=120)


@settings(max_examples=80, deadline=None, database=None)
@given(ops)
def test_order_book_with_random_operations_matches_naive_model(operations):
    book, model = OrderBook(), NaiveBook()
    next_id = 0
    for op in operations:
        if op[0] == "submit":
            _, account, side, price, qty, stp = op
            next_id += 1
            fills, expired = [], []
            left, taker_expired = book.take(side, price, qty, account, stp, fills, expired)
            if left and not taker_expired:
                book.add(RestingOrder(next_id, account, side, price, left, qty, 0, GTC, next_id))
            m_fills, m_expired, m_left, m_taker_expired = model.submit(next_id, account, side, price, qty, stp)
            assert [(m.order_id, q, p) for m, q, p in fills] == m_fills
            assert [(m.order_id, q) for m, q in expired] == m_expired
            assert (left, taker_expired) == (m_left, m_taker_expired)
        else:
            live = sorted(book.orders)
            if live:
                victim = live[op[1] % len(live)]
                assert book.remove(victim) is not None
                model.cancel(victim)
        book.check_invariants()
        assert [(k[0], k[3], k[4]) for k in book.canonical()] == model.priority()


def test_a_take_that_rebuilds_the_heap_midway_goes_on_matching_the_next_levels():
    """Deep levels cancelled leave stale prices in the heap; when a take drops enough levels
    that the heap is rebuilt (``_clean_top``), the take must go on with the rebuilt heap
    (it kept the old list once: the next level it read was one it had just dropped)."""
    book = OrderBook()
    for price in range(101, 201):                               # 100 ask levels of 1 lot
        book.add(order(price, SELL, price, 1))
    for price in range(131, 201):                               # the 70 deepest cancelled: stale in the heap
        assert book.remove(price) is not None
    fills, expired = [], []
    left, _ = book.take(BUY, 130, 27, 999, EXPIRE_TAKER, fills, expired)
    assert left == 0 and [p for _, _, p in fills] == list(range(101, 128))
    assert book.best_ask() == 128 and len(book.orders) == 3
