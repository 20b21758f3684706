"""Which products this venue runs, composed in one place.

An ``AccountShard`` knows only spot accounts, orders and settlement; products
plug into it (``exchange.accounts.product``) and are chosen here, not in the
accounts layer. The Engine, the snapshot (``restore_shard``) and the shard
actor build their shards with ``new_shard``, so every shard of the venue runs
the same products in the same order (the order their state enters
``AccountShard.canonical``): the margin desk, and the perpetual desk when the
config has ``[perp.*]`` markets (a venue without them keeps the state it had).
"""
from __future__ import annotations

from exchange.accounts.shard import AccountShard
from exchange.config import ExchangeConfig
from exchange.margin.desk import MarginDesk
from exchange.perp.desk import PerpDesk
from exchange.perp.rules import perp_markets


def new_shard(config: ExchangeConfig, shard_index: int = 0, shards: int = 1) -> AccountShard:
    """A shard of ``shards`` (``shard_index`` of them) with every product of the venue plugged in."""
    shard = AccountShard(config, shard_index, shards)
    shard.plug(MarginDesk(config, shard.ledger))
    perps = perp_markets(config)
    if perps:
        shard.plug(PerpDesk(config, shard.ledger, perps))
    return shard
