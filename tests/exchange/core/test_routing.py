"""Account routing is a stable, even hash; shards added later move no account."""
from __future__ import annotations

from collections import Counter

from hypothesis import given, strategies as st

from exchange.core.routing import ShardLayout, house_account, mix64, shard_for


def test_shard_for_with_the_same_account_is_the_same_shard_every_time():
    assert [shard_for(12345, 4) for _ in range(3)] == [shard_for(12345, 4)] * 3
    assert mix64(1) == 0x910A2DEC89025CC1          # SplitMix64 of 1: fixed forever, never salted


def test_shard_for_with_consecutive_accounts_spreads_them_evenly():
    counts = Counter(shard_for(account, 8) for account in range(1, 80_001))
    assert set(counts) == set(range(8))
    assert max(counts.values()) - min(counts.values()) < 800      # within 1% of 10,000 each


def test_shard_for_with_a_malformed_id_picks_a_shard_that_will_reject_it():
    assert shard_for("x", 4) == 0 and shard_for(None, 4) == 0


# ---- shards added to a running exchange (issue 17) -----------------------------------------

GROWN = ShardLayout(4, ((1_000_000, 2),))       # 2 shards, then 2 more for ids from 1,000,000 on


@given(st.integers(-2**62, 2**62), st.integers(1, 64))
def test_a_layout_never_grown_routes_as_its_count(account, count):
    assert shard_for(account, ShardLayout(count)) == shard_for(account, count)


@given(st.integers(-999_999, 999_999))
def test_an_account_below_the_bound_stays_on_the_shard_it_had_before_shards_were_added(account):
    assert shard_for(account, GROWN) == shard_for(account, 2)


def test_accounts_from_the_bound_on_spread_over_every_shard_old_and_new():
    counts = Counter(shard_for(account, GROWN) for account in range(1_000_000, 1_040_000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 9_500
    assert {shard_for(a, ShardLayout(8, ((100, 2), (5_000, 4)))) for a in range(100, 5_000)} == {0, 1, 2, 3}


def test_every_shard_of_a_grown_layout_has_a_house_account_the_old_ones_unchanged():
    for shard in range(4):
        house = house_account(shard, GROWN)
        assert house < 0 and shard_for(house, GROWN) == shard
    assert [house_account(s, GROWN) for s in (0, 1)] == [house_account(s, 2) for s in (0, 1)]
    assert house_account(3, GROWN) <= -1_000_000 and GROWN.counts() == (2, 4)
