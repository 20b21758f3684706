"""Account routing is a stable, even hash."""
from __future__ import annotations

from collections import Counter

from exchange.core.routing import mix64, shard_for


def test_shard_for_with_the_same_account_is_the_same_shard_every_time():
    assert [shard_for(12345, 4) for _ in range(3)] == [shard_for(12345, 4)] * 3
    assert mix64(1) == 0x910A2DEC89025CC1          # SplitMix64 of 1: fixed forever, never salted


def test_shard_for_with_consecutive_accounts_spreads_them_evenly():
    counts = Counter(shard_for(account, 8) for account in range(1, 80_001))
    assert set(counts) == set(range(8))
    assert max(counts.values()) - min(counts.values()) < 800      # within 1% of 10,000 each


def test_shard_for_with_a_malformed_id_picks_a_shard_that_will_reject_it():
    assert shard_for("x", 4) == 0 and shard_for(None, 4) == 0
