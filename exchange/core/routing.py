"""Routing: which account shard owns an account (pure, stable functions), and each
shard's house account.

The hash is SplitMix64's finaliser, so consecutive account ids spread evenly
and the mapping never depends on the process (unlike the salted ``hash()``).

**Shards added to a running exchange** (issue 17) do not move an account: a
``ShardLayout`` keeps the earlier shard counts, each with the account id below which
it still routes. An account id (a house account's by its absolute value) below an
earlier layout's bound is routed over that layout's count, as it was when it opened;
every id from the last bound on spreads over every shard. Accounts opened once the new
shards run get ids above the bound, so only they go to the new shards. Re-sharding
the accounts already open (moving them) is another matter: ``docs/DEPLOY.md``.
"""
from __future__ import annotations

from dataclasses import dataclass

MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class ShardLayout:
    """``count`` shards now; ``earlier``: ``(below, shards)`` pairs, bounds and counts rising,
    each count below ``count``: an account id whose absolute value is below ``below`` is
    routed over ``shards`` (the first pair that covers it)."""
    count: int
    earlier: tuple[tuple[int, int], ...] = ()

    def over(self, account_id: int) -> int:
        """How many shards ``account_id`` is spread over."""
        size = -account_id if account_id < 0 else account_id
        for below, shards in self.earlier:
            if size < below:
                return shards
        return self.count

    def counts(self) -> tuple[int, ...]:
        """Every count this layout routes over, oldest first."""
        return (*(shards for _, shards in self.earlier), self.count)


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a stable 64-bit mix of an integer."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def shard_for(account_id: int, shards: int | ShardLayout) -> int:
    """Return the index of the shard that owns ``account_id`` (0 <= i < the shard count)."""
    if type(account_id) is not int:
        return 0          # a malformed id: any shard will reject it as such
    if type(shards) is not int:
        shards = shards.over(account_id)
    return mix64(account_id) % shards


def house_account(shard: int, shards: int | ShardLayout) -> int:
    """The shard's house account: the address of commands to the shard itself rather than to
    a client's account (the perpetual fee sweep). The first negative id, counting down from
    -1 (from the bound of the first layout that has the shard, for a shard added later),
    that routes to ``shard``: no client can open it (account ids are positive), and the
    door's ownership check passes on that shard only."""
    account = -1
    if type(shards) is not int:
        bounds = (0, *(below for below, _ in shards.earlier))
        account = -max(1, next(b for b, n in zip(bounds, shards.counts()) if shard < n))
    while shard_for(account, shards) != shard:
        account -= 1
    return account
