"""Conservation of every asset: the one formula the Engine, the client's audit
and ``exchange verify`` apply.

Per asset, what is held must equal what came in:

    held = every shard's accounts, fee account and what its products hold
           (``AccountShard.totals``; margin: its books and funds on their way
           into a pool) + the pools' cash + the insurance fund's holdings (its
           balance and covers on their way)
    came in = deposits - withdrawals + the fund's deposits
              + credits from outside the fund (covers a test applies by hand)

``imbalance`` returns held - came in per asset: all zero when sound.
"""
from __future__ import annotations


def held(assets: list, shard_totals: list[list[int]], pool_cash: dict[str, int],
         fund_holdings: dict[str, int]) -> dict[str, int]:
    """Per asset name: what the shards, the pools and the fund hold (``shard_totals``:
    one list per shard, by asset index)."""
    return {a.name: sum(t[a.index] for t in shard_totals) + pool_cash.get(a.name, 0) + fund_holdings.get(a.name, 0)
            for a in assets}


def imbalance(assets: list, shard_totals: list[list[int]], deposited: list[list[int]], withdrawn: list[list[int]],
              pool_cash: dict[str, int], fund_holdings: dict[str, int], fund_deposited: dict[str, int],
              outside_credits: dict[str, int] | None = None) -> dict[str, int]:
    """Per asset name: held - came in (module docstring). ``shard_totals``,
    ``deposited`` and ``withdrawn`` hold one list per shard, by asset index."""
    outside = outside_credits or {}
    holding = held(assets, shard_totals, pool_cash, fund_holdings)
    return {a.name: holding[a.name] - (sum(d[a.index] for d in deposited) - sum(w[a.index] for w in withdrawn)
                                       + fund_deposited.get(a.name, 0) + outside.get(a.name, 0))
            for a in assets}
