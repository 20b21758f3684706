"""Auto-deleveraging: the ranking, taking exactly what is needed, skipping linked
accounts, quintiles, pseudonyms."""
from __future__ import annotations

from fractions import Fraction

from hypothesis import given, strategies as st

from exchange.perp.adl import Candidate, allocate, plan, pseudonym, quintiles, ranking, score

K = 1
MARK = 100


def short(account: int, lots: int, entry: int, equity: int) -> Candidate:
    return Candidate(account, -lots, -lots * entry * K, equity)


def test_scores_by_hand_profit_times_leverage_loss_over_leverage():
    # short 10 from 120, mark 100: PnL +200 on 1,200 (1/6); notional 1,000 on equity 100: 10x -> 10/6
    assert score(short(1, 10, 120, 100), MARK, K) == Fraction(10, 6)
    # short 10 from 80, mark 100: PnL -200 on 800 (-1/4); 1,000 on 500: 2x -> -1/8
    assert score(short(2, 10, 80, 500), MARK, K) == Fraction(-1, 8)
    assert score(short(3, 10, 80, 0), MARK, K) is None                # no equity: being liquidated itself


def test_the_plan_takes_exactly_what_is_needed_in_rank_order():
    candidates = [short(1, 10, 120, 100),     # 10/6
                  short(2, 30, 110, 1_000),   # PnL 300/3,300 = 1/11, 3,000/1,000 = 3x -> 3/11
                  short(3, 5, 150, 100),      # 250/750 = 1/3, 500/100 = 5x -> 5/3
                  short(4, 50, 90, 10_000)]   # a loss: last
    adl = plan(+1, 9_000, 22, candidates, MARK, K)
    assert [(t.account_id, t.lots) for t in adl.takes] == [(1, 10), (3, 5), (2, 7)]   # 10/6 = 5/3: lower id first
    assert adl.left == 0 and adl.skipped_linked == () and adl.wanted == 22
    assert sum(t.lots for t in adl.takes) == 22                       # no overshoot


def test_linked_accounts_are_skipped_and_listed():
    candidates = [short(1, 10, 120, 100), short(2, 10, 110, 100)]
    adl = plan(+1, 9_000, 5, candidates, MARK, K, linked=frozenset({1}))
    assert [(t.account_id, t.lots) for t in adl.takes] == [(2, 5)] and adl.skipped_linked == (1,)


def test_same_side_positions_are_never_candidates_and_running_out_is_reported():
    candidates = [Candidate(7, 10, 1_000, 100), short(2, 4, 110, 100)]
    adl = plan(+3, 9_000, 10, candidates, MARK, K)
    assert [(t.account_id, t.lots) for t in adl.takes] == [(2, 4)] and adl.left == 6


candidate_lists = st.lists(st.tuples(st.integers(1, 100), st.integers(50, 150), st.integers(-50, 500)),
                           max_size=30)


@given(candidate_lists, st.integers(0, 2_000))
def test_a_plan_never_overshoots_and_follows_the_ranking(rows, wanted):
    candidates = [short(i, lots, entry, equity) for i, (lots, entry, equity) in enumerate(rows, 1)]
    adl = plan(+1, 9_000, wanted, candidates, MARK, K)
    taken = sum(t.lots for t in adl.takes)
    assert taken + adl.left == wanted and taken <= wanted
    order = [c.account_id for _, c in ranking(candidates, MARK, K)]
    assert [t.account_id for t in adl.takes] == order[:len(adl.takes)]
    assert all(t.lots == abs(next(c.lots for c in candidates if c.account_id == t.account_id))
               for t in adl.takes[:-1])                              # all but the last are closed whole


@given(candidate_lists, st.lists(st.integers(1, 300), max_size=8))
def test_one_ranking_shared_in_turn_takes_only_what_each_needs_in_rank_order(rows, wanted):
    """``allocate`` (an ADL round for several bankrupt positions): each takes exactly its need
    while lots last, nobody beyond; the takes, in turn, walk the ranking without skipping or
    taking more than a position holds; the first is what ``plan`` alone would take."""
    candidates = [short(i, lots, entry, equity) for i, (lots, entry, equity) in enumerate(rows, 1)]
    ranked = ranking(candidates, MARK, K)
    takes = allocate(ranked, wanted)
    supply = sum(abs(c.lots) for _, c in ranked)
    for want, own in zip(wanted, takes):
        got = sum(lots for _, lots in own)
        assert got == min(want, supply) and all(lots > 0 for _, lots in own)
        supply -= got
    walked: list[list[int]] = []
    for account, lots in (t for own in takes for t in own):
        if walked and walked[-1][0] == account:
            walked[-1][1] += lots
        else:
            walked.append([account, lots])
    assert [a for a, _ in walked] == [c.account_id for _, c in ranked][:len(walked)]
    held = {c.account_id: abs(c.lots) for _, c in ranked}
    assert all(lots <= held[a] for a, lots in walked) and all(lots == held[a] for a, lots in walked[:-1])
    if wanted:
        assert takes[0] == [(t.account_id, t.lots) for t in plan(+1, 9_000, wanted[0], candidates, MARK, K).takes]


def test_quintiles_split_each_side_first_to_go_is_5():
    candidates = [short(i, 10, 100 + i, 100) for i in range(1, 11)]   # higher entry: more profit, higher rank
    q = quintiles(candidates, MARK, K)
    assert [q[i] for i in range(10, 0, -1)] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_pseudonyms_are_stable_per_key_and_differ_across_keys():
    assert pseudonym(b"k", 42) == pseudonym(b"k", 42) != pseudonym(b"other", 42)
    assert pseudonym(b"k", 42) != pseudonym(b"k", 43) and len(pseudonym(b"k", 42)) == 16
