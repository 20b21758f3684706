"""The fee share (``exchange.perp.fees``): each perpetual market's fund receives exactly its
share of the fees the market's fills charged, once, whatever answers are lost on the way;
only the liquidator may sweep; a venue can turn it off."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from exchange.accounts.access import Role
from exchange.core.money import PPM
from exchange.core.reasons import Reason
from exchange.core.routing import house_account
from exchange.messages.records import PerpFeesSwept, SweepPerpFees
from exchange.perp import fees
from exchange.perp.fund import EntryKind, verify
from tests.exchange.perp.test_desk import ALICE, BOB, BUY, CAROL, PERP, SELL, check, harness, names, perp_config
from tests.exchange.support import btc, usdt

TS = 10**15


def trade(ex, qty: str = "0.5", price: str = "40000", seller=BOB, buyer=ALICE) -> int:
    """One fill between two accounts; returns the fees it charged (taker + maker)."""
    assert "OrderAccepted" in names(ex.perp(seller, SELL, usdt(price), btc(qty)))
    events = ex.perp(buyer, BUY, usdt(price), btc(qty))
    return sum(e.fee for e in events if type(e).__name__ == "PositionChanged")


def fee_shares(ex) -> list[tuple[int, tuple]]:
    return [(e.amount, e.details) for e in ex.engine.perp_fund.entries if e.kind == EntryKind.FEE_SHARE]


def test_the_fund_receives_exactly_its_share_of_the_fees_once():
    ex = harness()
    ledger = ex.engine.shard.ledger
    charged = trade(ex) + trade(ex, "0.3", seller=ALICE, buyer=CAROL)
    assert charged > 0 and ex.engine.shard.perp.fee_income == {PERP: charged}
    before = ledger.fees[:]
    ex.engine.sweep_perp_fees(TS)
    share = charged // 10                                               # fee_share 0.1, rounded down
    assert fee_shares(ex) == [(share, (("shard", 0), ("through", share)))]
    assert before[2] - ledger.fees[2] == share and ex.engine.perp_fund.balances[PERP] == share
    ex.engine.sweep_perp_fees(TS + 1)                                   # nothing new: no entry
    assert len(fee_shares(ex)) == 1
    more = trade(ex, "0.2", "40100")
    ex.engine.sweep_perp_fees(TS + 2)
    assert [a for a, _ in fee_shares(ex)] == [share, (charged + more) // 10 - share]
    fund = ex.engine.perp_fund
    assert verify([e.to_plain() for e in fund.entries], fund.balances, fund.head) == []
    check(ex)                                                           # conservation: fees moved, not made


def test_a_sweep_whose_answer_was_lost_is_counted_by_the_next_one():
    ex = harness()
    charged = trade(ex)
    desk, fund = ex.engine.shard.perp, ex.engine.perp_fund
    lost = ex.engine.apply(SweepPerpFees("pfee:lost", TS, house_account(0, 1), PERP, 0), Role.LIQUIDATOR)
    assert lost == [PerpFeesSwept("pfee:lost", TS, house_account(0, 1), PERP, charged // 10, charged // 10)]
    assert fund.balances[PERP] == 0                                     # the shard moved it, the fund never heard
    assert fees.in_flight(ex.engine.perps, [desk.fee_swept], fund.fees_through) == {"USDT": charged // 10}
    more = trade(ex, "0.1")
    ex.engine.sweep_perp_fees(TS)
    assert fund.balances[PERP] == (charged + more) // 10                 # both, once
    assert fees.in_flight(ex.engine.perps, [desk.fee_swept], fund.fees_through) == {"USDT": 0}
    check(ex)


def test_only_the_liquidator_sweeps():
    ex = harness()
    trade(ex)
    events = ex.engine.apply(SweepPerpFees("x", TS, house_account(0, 1), PERP, 0), Role.CLIENT)
    assert events[0].reason == Reason.NOT_PERMITTED and ex.engine.shard.perp.fee_swept == {}


def test_a_market_with_no_fee_share_sends_nothing():
    ex = harness(perp_config(fee_share="0"))
    trade(ex)
    sent = []
    steps = ex.engine.perp_liquidator.sweep(0, 1, TS)
    assert next(steps, None) is None and not sent
    assert ex.engine.shard.perp.fee_swept == {} and fee_shares(ex) == []


def test_house_accounts_route_to_their_shard_and_no_client_can_have_one():
    from exchange.core.routing import shard_for
    for shards in (1, 2, 3, 8):
        accounts = [house_account(i, shards) for i in range(shards)]
        assert [shard_for(a, shards) for a in accounts] == list(range(shards)) and all(a < 0 for a in accounts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(share=st.sampled_from(["0.05", "0.1", "0.333", "1"]),
       moves=st.lists(st.tuples(st.sampled_from(["trade", "sweep", "lost"]), st.integers(1, 40)), max_size=14))
def test_whatever_sweeps_and_lost_answers_the_fund_ends_with_exactly_the_share(share, moves):
    """A reference model: the fund's fee shares sum to floor(fees x share), and conservation
    (with what is in flight) holds after every step."""
    ex = harness(perp_config(fee_share=share))
    share_ppm, charged, rid = ex.engine.perps[PERP].fee_share_ppm, 0, 0
    for move, size in moves:
        if move == "trade":
            charged += trade(ex, f"0.{size:03d}", str(39_000 + 10 * size), *((BOB, ALICE) if size % 2 else (ALICE, BOB)))
        elif move == "sweep":
            ex.engine.sweep_perp_fees(TS + rid)
            check(ex)
        else:
            rid += 1
            known = ex.engine.perp_fund.fees_through.get((PERP, 0), 0)
            ex.engine.apply(SweepPerpFees(f"lost-{rid}", TS, house_account(0, 1), PERP, known), Role.LIQUIDATOR)
    ex.engine.sweep_perp_fees(TS + 10**6)
    assert sum(a for a, _ in fee_shares(ex)) == charged * share_ppm // PPM
    check(ex)
