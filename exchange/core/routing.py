"""Routing: which account shard owns an account (pure, stable functions), and each
shard's house account.

The hash is SplitMix64's finaliser, so consecutive account ids spread evenly
and the mapping never depends on the process (unlike the salted ``hash()``).
"""
from __future__ import annotations

MASK64 = (1 << 64) - 1


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a stable 64-bit mix of an integer."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def shard_for(account_id: int, shards: int) -> int:
    """Return the index of the shard that owns ``account_id`` (0 <= i < shards)."""
    if type(account_id) is not int:
        return 0          # a malformed id: any shard will reject it as such
    return mix64(account_id) % shards


def house_account(shard: int, shards: int) -> int:
    """The shard's house account: the address of commands to the shard itself rather than to
    a client's account (the perpetual fee sweep). The first negative id, counting down from
    -1, that routes to ``shard``: no client can open it (account ids are positive), and the
    door's ownership check passes on that shard only."""
    account = -1
    while shard_for(account, shards) != shard:
        account -= 1
    return account
