"""A shard's order and trade history and a market's rolling 24 hours survive a restart
from a snapshot: the actors (without Ray) write one to LMDB in a temp dir, and new
actors on the same directory restore the same views."""
from __future__ import annotations

from actors.market_actor import MarketActor
from actors.shard_actor import AccountShardActor
from exchange.messages.records import OrderAccepted, OrderClosed


def test_the_shards_history_is_in_its_snapshot(tmp_path):
    actor = AccountShardActor(None, 0, data_dir=str(tmp_path))
    actor._publish([OrderAccepted(7, 60 * 10**9, 11, 3, "BTC-USDT", 2, 50_000 * 10**6, 10**8, "c"),
                    OrderClosed("BTC-USDT", 9, 61 * 10**9, 11, 3, 2, 10**8)])
    actor.journal.snapshot(actor._state()).result(10)
    actor.journal.store.close()
    again = AccountShardActor(None, 0, data_dir=str(tmp_path))
    assert again.get_order(3, 11) == actor.get_order(3, 11) and again.get_order(3, 11)["status"] == "CANCELED"
    assert again.history.state() == actor.history.state()
    again.journal.store.close()


def test_the_markets_rolling_day_is_in_its_snapshot(tmp_path):
    market = MarketActor(None, "BTC-USDT", data_dir=str(tmp_path))
    for seq in (1, 2):
        market.ticker.record(seq * 60 * 10**9, seq, 50_000 * 10**6 + seq, 10**7)
    market.journal.snapshot(market._state()).result(10)
    market.journal.store.close()
    again = MarketActor(None, "BTC-USDT", data_dir=str(tmp_path))
    assert again.ticker.state() == market.ticker.state() and again.ticker.window(3 * 60 * 10**9)["count"] == 2
    again.journal.store.close()
