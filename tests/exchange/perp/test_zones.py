"""The zone index (``exchange.perp.zones``): a mark re-values only the positions it can move,
and the zones it leaves are exactly those re-valuing every position gives (a reference pass
over every position after each mark), through rallies, crashes, funding and transfers."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from exchange.messages.records import FundingDue, MarkUpdated, TransferPerp
from exchange.perp.position import MarginMode
from exchange.perp.zones import INF, band
from ops.bench.liquidation import BEFORE, FIRST, NS, PERP, USDT, engine_with_positions

def full_pass(desk) -> dict:
    """Every position's zone at its market's mark, computed from scratch (nonzero ones)."""
    out = {}
    for account_id, wallet in desk.accounts.items():
        for name, position in wallet.positions.items():
            if not position.lots:
                continue
            market = desk.markets[name]
            mark = desk.marks[name][1]
            if position.mode == MarginMode.ISOLATED:
                key = (account_id, name)
                equity = position.margin + position.unrealized(mark, market.k)
                maintenance, warning = market.tiers.lines(position.notional(mark, market.k))
            else:
                key = (account_id, "")
                equity, maintenance, warning = desk._cross_lines(wallet, market.spec.quote.index)
            zone = 2 if equity <= maintenance else 1 if equity <= warning else 0
            if zone:
                out[key] = zone
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["mark", "mark", "mark", "funding", "transfer"]),
                          st.integers(-4_000, 4_000), st.integers(0, 299)), min_size=5, max_size=30))
def test_the_indexed_zones_are_those_a_full_pass_gives_after_every_mark(moves):
    engine = engine_with_positions(300, 11, NS)
    desk = engine.shard.perp
    ticks, seq = BEFORE * 10, 10**6
    for n, (move, size, who) in enumerate(moves):
        seq += 1
        if move == "mark":
            ticks = max(10, ticks + size * (10 if abs(size) > 3_000 else 1))      # now and then a jump
            desk.apply_event(MarkUpdated(PERP, seq, NS * (n + 2), ticks, ticks))
            assert desk.zones == full_pass(desk), (n, ticks)
        elif move == "funding":
            desk.apply_event(FundingDue(PERP, seq, NS * (n + 2), size * 10, ticks))
        else:
            account = FIRST + who
            amount = abs(size) * USDT
            engine.apply(TransferPerp(f"z{n}", NS, account, "USDT", amount, size >= 0))
        desk.check_invariants()


def test_a_small_move_re_values_only_the_positions_it_can_move():
    engine = engine_with_positions(300, 11, NS)
    desk = engine.shard.perp
    desk.apply_event(MarkUpdated(PERP, 10**6, 2 * NS, BEFORE * 10, BEFORE * 10))   # every position placed
    assert not desk.index.touched[PERP] and len(desk.index.prices) >= 300
    due = desk.index.due(PERP, BEFORE * 10 - 5)                  # 0.5 USDT lower: hardly anyone's line
    assert len(due) < 10
    crash = desk.index.due(PERP, BEFORE * 7)                     # 30% lower: every long
    assert len(crash) >= 140


def test_bands_by_hand():
    # a long liquidated at and under 36,000 ticks, warned at and under 37,000
    assert band(0, True, 36_000, 37_000) == (37_001, INF)
    assert band(1, True, 36_000, 37_000) == (36_001, 37_001)
    assert band(2, True, 36_000, 37_000) == (-INF, 36_001)
    assert band(0, True, None, None) == (1, INF)                 # never reaches either line
    # a short liquidated at and over 44,000, warned at and over 43,000
    assert band(0, False, 44_000, 43_000) == (-INF, 43_000)
    assert band(1, False, 44_000, 43_000) == (43_000, 44_000)
    assert band(2, False, 44_000, 43_000) == (44_000, INF)
