"""A perpetual market's funding settlements and a shard's perpetual income and withdrawals
survive a restart: the actors (without Ray) keep them in their snapshots, and rebuild them
by replaying their journals (LMDB in a temp dir), and the market keeps no more settlements
than ``[limits] history_fundings_max``."""
from __future__ import annotations

import asyncio

from actors.capability import Keyring, Role
from actors.perp_market_actor import PerpMarketActor
from actors.shard_actor import AccountShardActor
from exchange.messages.records import (Deposit, FundingDue, FundingPaid, OpenAccount, PositionChanged,
                                       RequestWithdrawal, WithdrawalUpdated)
from exchange.risk.withdrawals import WithdrawalState
from tests.actors.test_limits import config_with, mine

PERP = "BTC-USDT-PERP"
HOUR_NS = 3600 * 10**9
START = 1_000 * 8 * HOUR_NS                       # a funding time (8-hour intervals)


def priced(market: PerpMarketActor, intervals: int) -> None:
    """Price the market once an hour for ``intervals`` 8-hour intervals (a settlement each)."""
    for hour in range(intervals * 8 + 1):
        market._price(START + hour * HOUR_NS + 1, 400_000 + hour)


def test_the_markets_settlements_are_kept_in_time_order_and_carried_by_its_snapshot(tmp_path):
    market = PerpMarketActor(None, PERP, data_dir=str(tmp_path))
    priced(market, 3)
    settled = market.funding_history()
    assert [s[0] for s in settled] == [START + n * 8 * HOUR_NS for n in range(1, 4)]
    assert all(rate == 10_000 for _, rate, _ in settled)              # no book: no premium, the interest
    dues = [e for _, e in market.stream.entries if type(e) is FundingDue]       # what the shards were sent
    assert settled == [(e.ts_ns, e.rate, e.mark) for e in dues]
    assert market.funding_history(start_ns=START + 9 * HOUR_NS, limit=1) == settled[1:2]
    assert market.funding_history(end_ns=START + 16 * HOUR_NS) == settled[:2]
    market.journal.snapshot(market._state()).result(10)
    market.journal.store.close()
    again = PerpMarketActor(None, PERP, data_dir=str(tmp_path))
    assert again.funding_history() == settled and again.fundings.state() == market.fundings.state()
    again.journal.store.close()


def test_the_markets_settlements_come_back_from_its_journal_alone(tmp_path):
    keyring = Keyring.mint()
    market = PerpMarketActor(None, PERP, data_dir=str(tmp_path), keyring=keyring)
    index = keyring.capability(Role.INDEX)

    async def price_a_day() -> None:
        for hour in range(25):
            await market.set_index_prices(index, {"BTC": 40_000 * 10**6}, START + hour * HOUR_NS + 1)
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            task.cancel()                        # the pushes to shards that are not running
    asyncio.run(price_a_day())
    settled = market.funding_history()
    assert len(settled) == 3
    market.journal.store.close()
    again = PerpMarketActor(None, PERP, data_dir=str(tmp_path))
    assert again.funding_history() == settled
    again.journal.store.close()


def test_a_market_keeps_history_fundings_max_settlements_the_newest(tmp_path):
    market = PerpMarketActor(config_with(tmp_path, history_fundings_max=2), PERP)
    priced(market, 5)
    assert [s[0] for s in market.funding_history(limit=1000)] == [START + n * 8 * HOUR_NS for n in (4, 5)]


def test_the_shards_income_and_withdrawals_are_in_its_snapshot(tmp_path):
    actor = AccountShardActor(None, 0, data_dir=str(tmp_path))
    actor._publish([FundingPaid(PERP, 5, START, 3, 10_000, 4_000),
                    PositionChanged(PERP, 9, START + 1, 3, 11, 0, 0, 2_500, 40, 0),
                    WithdrawalUpdated("w-1", START + 2, 3, 1024, "USDT", 10**8, int(WithdrawalState.APPROVED), 0, "",
                                      0, "", "TQ-cold"),
                    WithdrawalUpdated("w-1", START + 3, 3, 1024, "USDT", 10**8, int(WithdrawalState.CONFIRMED), 0,
                                      "", 0, "tx-9", "TQ-cold")])
    income = actor.income_history(3)
    assert [(e["kind"], e["amount"]) for e in income] == [(2, -4_000), (1, 2_500), (3, -40)]
    (withdrawal,) = actor.withdrawal_history(3)
    assert (withdrawal["state"], withdrawal["txid"], withdrawal["final_ns"]) == (6, "tx-9", START + 3)
    actor.journal.snapshot(actor._state()).result(10)
    actor.journal.store.close()
    again = AccountShardActor(None, 0, data_dir=str(tmp_path))
    assert again.income_history(3) == income and again.withdrawal_history(3) == [withdrawal]
    assert again.income_history(3, kind=3) == income[2:] and again.withdrawal_history(3, "BTC") == []
    again.journal.store.close()


def test_the_shards_withdrawals_come_back_from_its_journal_alone(tmp_path):
    keyring = Keyring.mint()
    actor = AccountShardActor(None, 0, data_dir=str(tmp_path), keyring=keyring)
    actor.set_index_prices(keyring.capability(Role.INDEX), {}, {"BTC": 40_000 * 10**6, "USDT": 10**6})
    (alice,) = mine(actor, 1)
    asyncio.run(actor._execute([OpenAccount("o", 0, alice), Deposit("d", 0, alice, "USDT", 10**9),
                                RequestWithdrawal("w-alice-1", 0, alice, "USDT", 10**8, "TQ-cold"),
                                RequestWithdrawal(77, 0, alice, "USDT", 2 * 10**8, "TQ-hot")]))
    kept = actor.withdrawal_history(alice)
    assert [(w["request_id"], w["destination"], w["state"]) for w in kept] == \
        [("w-alice-1", "TQ-cold", int(WithdrawalState.APPROVED)), (77, "TQ-hot", int(WithdrawalState.APPROVED))]
    actor.journal.store.close()
    again = AccountShardActor(None, 0, data_dir=str(tmp_path))
    assert again.withdrawal_history(alice) == kept
    again.journal.store.close()
