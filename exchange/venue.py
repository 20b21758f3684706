"""Which products this venue runs, composed in one place.

An ``AccountShard`` knows only spot accounts, orders and settlement; products
plug into it (``exchange.accounts.product``) and are chosen here, not in the
accounts layer. The Engine, the snapshot (``restore_shard``) and the shard
actor build their shards with ``new_shard``, so every shard of the venue runs
the same products in the same order (the order their state enters
``AccountShard.canonical``): the margin desk, and the perpetual desk when the
config has ``[perp.*]`` markets (a venue without them keeps the state it had),
and the risk rulebook's pre-trade gate and cashier (withdrawals under review)
when the config has a ``[risk]`` table, and the OTC desk's crossings
(``exchange.otc.crossing``) when it has an ``[otc]`` desk.
"""
from __future__ import annotations

from exchange.accounts.shard import AccountShard
from exchange.matching.market import MarketEngine
from exchange.config import ExchangeConfig
from exchange.core.routing import ShardLayout
from exchange.margin.desk import MarginDesk
from exchange.otc.crossing import OtcCrossings
from exchange.perp.desk import PerpDesk
from exchange.perp.rules import perp_markets
from exchange.risk.cashier import Cashier
from exchange.risk.gate import RiskGate
from exchange.risk.modes import MarketGuard


def new_shard(config: ExchangeConfig, shard_index: int = 0, shards: int | ShardLayout = 1) -> AccountShard:
    """A shard of ``shards`` (``shard_index`` of them) with every product of the venue plugged in."""
    shard = AccountShard(config, shard_index, shards)
    shard.plug(MarginDesk(config, shard.ledger))
    perps = perp_markets(config)
    if perps:
        shard.plug(PerpDesk(config, shard.ledger, perps))
    if config.risk is not None:
        shard.plug(Cashier(config, shard.ledger, config.risk))
        shard.risk = RiskGate(config.risk, config, {**config.markets, **{n: p.spec for n, p in perps.items()}},
                              f"shard:{shard_index}")
    if "otc" in config.sections:
        shard.plug(OtcCrossings(config, shard.ledger))
    return shard


def new_market(config: ExchangeConfig, spec) -> MarketEngine:
    """A market of the venue (spot or perpetual ``spec``): its book, and its mode and circuit
    breaker (``exchange.risk.modes``) when the config has a rulebook."""
    market = MarketEngine(spec)
    if config.risk is not None:
        market.guard = MarketGuard(spec.name, config.risk)
    return market
