"""The perpetual insurance fund's ledger: typed entries, the hash chain, the draw cap,
and a verification that catches any altered, removed or reordered entry."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from exchange.perp.fund import GENESIS, SIGNS, EntryKind, PerpFund, verify


def a_fund() -> PerpFund:
    fund = PerpFund(["BTC-PERP", "ETH-PERP"], max_draw_ppm=500_000)
    fund.record(EntryKind.TOP_UP, "BTC-PERP", 1_000_000, 1, (("operator", "ops-1"),))
    fund.record(EntryKind.LIQUIDATION_SURPLUS, "BTC-PERP", 2_500, 2, (("liquidation", 7), ("price", 39_000)))
    fund.record(EntryKind.BANKRUPTCY_LOSS, "BTC-PERP", -4_000, 3, (("liquidation", 8),))
    fund.record(EntryKind.ADL_START, "BTC-PERP", 0, 4, (("shortfall", 9_000), ("drawdown_ppm", 4_000)))
    fund.record(EntryKind.TOP_UP, "ETH-PERP", 50, 5)
    return fund


def test_balances_follow_the_entries_and_the_chain_links_them():
    fund = a_fund()
    assert fund.balances == {"BTC-PERP": 998_500, "ETH-PERP": 50}
    assert fund.entries[0].prev == GENESIS
    assert all(e.prev == before.digest for before, e in zip(fund.entries, fund.entries[1:]))
    assert verify([e.to_plain() for e in fund.entries], fund.balances, fund.head) == []
    fund.check_invariants()


def test_one_bankruptcy_draws_at_most_its_share_of_the_fund():
    fund = a_fund()
    assert fund.payable("BTC-PERP", 100) == 100
    assert fund.payable("BTC-PERP", 10**9) == 499_250                  # half of 998,500
    assert fund.payable("ETH-PERP", 10**9) == 25


def test_wrong_entries_are_refused_and_change_nothing():
    fund = a_fund()
    before = (dict(fund.balances), fund.head)
    for kind, market, amount in ((EntryKind.TOP_UP, "BTC-PERP", -1), (EntryKind.BANKRUPTCY_LOSS, "BTC-PERP", 5),
                                 (EntryKind.ADL_END, "BTC-PERP", 3), (EntryKind.TOP_UP, "DOGE-PERP", 1),
                                 (EntryKind.BANKRUPTCY_LOSS, "ETH-PERP", -51)):
        with pytest.raises(ValueError):
            fund.record(kind, market, amount, 9)
    assert (fund.balances, fund.head) == before


def test_any_alteration_is_found():
    fund = a_fund()
    plain = [e.to_plain() for e in fund.entries]
    altered = [list(e) for e in plain]
    altered[1][3] = 25_000                                            # a surplus made larger
    assert "entry 2: digest does not match its content" in verify(altered, fund.balances)
    assert any("balance" in p for p in verify(altered, fund.balances))
    assert "entry 2: does not follow the entry before it" in verify(plain[:1] + plain[2:], None)   # one removed
    swapped = [plain[1], plain[0]] + plain[2:]
    assert "entry 1: numbered 2" in verify(swapped)
    assert verify(plain[:-1], None, fund.head) == ["the published head is not the last entry's digest"]
    details = [list(e) for e in plain]
    details[3][5] = [["shortfall", 1], ["drawdown_ppm", 4_000]]       # the ADL record's inputs rewritten
    assert verify(details) == ["entry 4: digest does not match its content"]


@given(st.lists(st.tuples(st.sampled_from(list(EntryKind)), st.integers(1, 10**6)), max_size=40))
def test_a_fund_built_by_record_always_verifies(moves):
    fund = PerpFund(["M"])
    for ts, (kind, amount) in enumerate(moves):
        signed = SIGNS[kind] * min(amount, fund.balances["M"] if SIGNS[kind] < 0 else amount)
        if SIGNS[kind] and not signed:
            continue                                                  # an empty fund pays nothing
        shard = ts % 2
        details = (("shard", shard), ("through", fund.fees_through.get(("M", shard), 0) + signed)) \
            if kind == EntryKind.FEE_SHARE else ()
        if kind == EntryKind.COMPENSATION:
            seq, through = fund.paid.get(("M", shard), (0, 0))
            details = (("account", 7), ("shard", shard), ("seq", seq + 1), ("through", through - signed),
                       ("operator", "op"), ("reason", "why"))
        fund.record(kind, "M", signed, ts, details)
    assert verify([e.to_plain() for e in fund.entries], fund.balances, fund.head) == []


def test_drawdown_is_measured_from_the_highest_balance_of_the_window_including_the_one_before_it():
    from exchange.perp.fund import EntryKind
    second = 10**9
    fund = PerpFund(["M"])
    assert fund.drawdown_ppm("M", 0, 3_600 * second) == 0                       # never held anything
    fund.record(EntryKind.TOP_UP, "M", 1_000, 0)
    fund.record(EntryKind.LIQUIDATION_SURPLUS, "M", 250, 100 * second)          # high: 1,250
    fund.record(EntryKind.BANKRUPTCY_LOSS, "M", -500, 7_000 * second)           # 750
    # an hour's window at 7,000 s: it opens at 3,400 s with 1,250 in the fund: 500 / 1,250 below it
    assert fund.drawdown_ppm("M", 7_000 * second, 3_600 * second) == 400_000
    fund.record(EntryKind.BANKRUPTCY_LOSS, "M", -250, 7_000 * second + 5)       # 500, the same second
    assert fund.drawdown_ppm("M", 7_000 * second + 9, 3_600 * second) == 600_000
    fund.record(EntryKind.TOP_UP, "M", 1_500, 8_000 * second)                   # 2,000: a new high
    assert fund.drawdown_ppm("M", 8_000 * second, 3_600 * second) == 0
    assert fund.drawdown_ppm("M", 20_000 * second, 3_600 * second) == 0         # nothing in the window: the balance


def test_fee_shares_must_step_each_shard_s_cumulative():
    fund = PerpFund(["M"])
    with pytest.raises(ValueError):                                   # a fee share names its shard and through
        fund.record(EntryKind.FEE_SHARE, "M", 10, 1)
    fund.record(EntryKind.FEE_SHARE, "M", 10, 1, (("shard", 0), ("through", 10)))
    fund.record(EntryKind.FEE_SHARE, "M", 7, 2, (("shard", 1), ("through", 7)))
    fund.record(EntryKind.FEE_SHARE, "M", 5, 3, (("shard", 0), ("through", 15)))
    assert fund.fees_through == {("M", 0): 15, ("M", 1): 7} and fund.balances == {"M": 22}
    assert verify([e.to_plain() for e in fund.entries], fund.balances, fund.head) == []
    fund.record(EntryKind.FEE_SHARE, "M", 5, 4, (("shard", 0), ("through", 15)))   # the same fees counted twice
    assert verify([e.to_plain() for e in fund.entries]) == [
        "entry 4: a fee share of 5 does not take shard 0 from 15 to 15"]
