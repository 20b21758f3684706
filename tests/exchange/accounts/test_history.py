"""The order and trade history (``exchange.accounts.history``) against the engine it follows:
after a random command stream (the engine property test's), every order the engine still
holds is NEW or PARTIALLY_FILLED in the history with the quantity the book has filled,
every other order is in a final status, and each account's trades are exactly the fill
sides it took part in, with the fee it paid. Then the bounds, and a snapshot round trip."""
from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings

from exchange.accounts.history import History
from exchange.core.reasons import CloseReason
from exchange.messages.records import Fill, OrderAccepted, OrderClosed
from tests.exchange.support import CONFIG
from tests.exchange.test_engine_properties import ACCOUNT_IDS, Stream, streams

SCALES = {m.name: m.base.scale for m in CONFIG.market_list}
FINAL = {"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}


def history_of(events: list, orders_max: int = 10**6, trades_max: int = 10**6) -> History:
    history = History(orders_max, trades_max, SCALES.__getitem__)
    history.record(events, lambda account: True)
    return history


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_the_history_agrees_with_the_engine_after_any_stream(ops):
    stream = Stream()
    for op in ops:
        stream.run(stream.command_for(op))
    events, seen_requests = [], set()
    for command, result in zip(stream.commands, stream.results):
        key = (getattr(command, "account_id", None), getattr(command, "request_id", None))
        if key not in seen_requests:                 # a repeated request's answer is not applied again
            seen_requests.add(key)
            events += result
    history = history_of(events)
    live = stream.engine.shard.orders
    accepted = {e.order_id: e for e in events if type(e) is OrderAccepted}
    closed = {e.order_id: e for e in events if type(e) is OrderClosed}
    placed = {(c.account_id, c.request_id): c for c in stream.commands if hasattr(c, "order_type")}
    for order_id, first in accepted.items():
        seen = history.order(first.account_id, order_id)
        assert seen["market"] == first.market and seen["side"] == first.side
        command = placed[first.account_id, first.request_id]
        assert (seen["order_type"], seen["tif"]) == (command.order_type, command.tif)     # as placed
        if order_id in live:
            record = live[order_id]
            assert seen["status"] in ("NEW", "PARTIALLY_FILLED")
            assert seen["executed"] == (record.total - record.remaining) * record.market.lot_minor
            assert seen["quantity"] == record.total * record.market.lot_minor
            assert seen["price"] == record.price * record.market.tick_minor
        else:
            assert seen["status"] in FINAL
            if CloseReason(closed[order_id].reason) is CloseReason.FILLED:
                assert seen["executed"] == seen["quantity"] and seen["status"] == "FILLED"
        assert history.order(first.account_id + 1000, order_id) is None          # nobody else's
    sides: dict = defaultdict(list)
    for f in (e for e in events if type(e) is Fill):
        sides[f.taker_account, f.market].append((f.seq, f.taker_order_id, f.taker_fee, False))
        sides[f.maker_account, f.market].append((f.seq, f.maker_order_id, f.maker_fee, True))
    for account in ACCOUNT_IDS:
        for market in SCALES:
            kept = history.account_trades(account, market, limit=10**6)
            assert [(t["trade_id"], t["order_id"], t["fee"], t["is_maker"]) for t in kept] == sides[account, market]
            orders = history.account_orders(account, market, limit=10**6)
            assert [o["order_id"] for o in orders] == sorted(i for i, e in accepted.items()
                                                              if e.account_id == account and e.market == market)
    again = History(10**6, 10**6, SCALES.__getitem__)
    again.restore(history.state())
    assert again.state() == history.state() and again.by_account == history.by_account


def test_an_order_kept_before_types_were_recorded_reads_as_a_good_till_cancelled_limit():
    history = history_of([OrderAccepted(1, 5, 1, 7, "BTC-USDT", 1, 10**9, 10**8, "", 2, 2)])       # MARKET, IOC
    state = history.state()
    assert history.order(7, 1)["order_type"] == 2
    state["orders"] = [row[:-2] for row in state["orders"]]                     # as an older snapshot wrote it
    again = History(10, 10, SCALES.__getitem__)
    again.restore(state)
    assert (again.order(7, 1)["order_type"], again.order(7, 1)["tif"]) == (1, 1)


def _fill(seq: int, taker: int, maker: int) -> Fill:
    return Fill("BTC-USDT", seq, seq, 50_000 * 10**6, 10**7, 2 * seq, taker, 1, 2 * seq + 1, maker, 5, -1)


def test_only_the_sides_this_shard_holds_are_kept():
    history = History(100, 100, SCALES.__getitem__)
    history.record([_fill(1, 7, 8), _fill(2, 8, 9)], lambda account: account == 8)
    kept = history.account_trades(8, "BTC-USDT")
    assert [(t["trade_id"], t["is_maker"], t["is_buyer"]) for t in kept] == [(1, True, False), (2, False, True)]
    assert history.account_trades(7, "BTC-USDT") == [] and kept[0]["quote_quantity"] == 5_000 * 10**6    # 0.1 BTC at 50,000


def test_the_oldest_orders_and_trades_go_first_whoever_they_belong_to():
    accepted = [OrderAccepted(i, i, i, 1 + i % 3, "BTC-USDT", 1, 10**9, 10**8, "") for i in range(1, 21)]
    history = History(5, 4, SCALES.__getitem__)
    history.record(accepted + [_fill(s, 1 + s % 2, 3) for s in range(1, 11)], lambda account: True)
    assert sorted(history.orders) == [16, 17, 18, 19, 20]
    assert sum(len(o) for o in history.by_account.values()) == 5
    assert [t[1] for t in history.state()["trades"]] == [9, 9, 10, 10]        # each fill: taker and maker sides
    assert history.account_orders(2, "BTC-USDT", limit=1) == [history.order(2, 19)]
    assert [o["order_id"] for o in history.account_orders(2, "BTC-USDT")] == [16, 19]
    assert [o["order_id"] for o in history.account_orders(2, "BTC-USDT", from_order_id=17)] == [19]
