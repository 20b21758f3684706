"""A limit on everything that grows with input (Core v2 §5; TigerBeetle's habit).

Every queue and map an actor or the domain keeps for work in flight has a
configured maximum (``[limits]`` in the config); reaching it refuses new work
with ``Reason.OVERLOADED`` and changes nothing, never unbounded memory. Each
field says what it bounds and who enforces it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Limits:
    batch_commands_max: int = 10_000         # commands in one execute call (shard actor)
    pending_commands_max: int = 100_000      # commands waiting for a market's or the pool's answer (per shard)
    link_requests_max: int = 200_000         # requests staged or queued to one peer, not yet acknowledged (per link)
    push_entries_max: int = 500_000          # entries queued for one shard by a market or the pool
    pool_requests_max: int = 100_000         # pool requests awaiting an answer (per shard's margin desk)
    liquidations_max: int = 1_000            # liquidations the liquidator drives at once
    streams_max: int = 10_000                # subscribed account streams (per shard)
    stream_events_max: int = 100_000         # events one stream keeps for its consumer
    history_orders_max: int = 100_000        # orders kept in the order history (per shard)
    history_trades_max: int = 100_000        # trades kept in the trade history (per shard)
    history_income_max: int = 100_000        # perpetual income entries kept (funding, PnL, fees; per shard)
    history_withdrawals_max: int = 100_000   # withdrawals kept in the withdrawal history (per shard)
    history_fundings_max: int = 1_000        # funding settlements a perpetual market keeps (per market)
    client_in_flight_max: int = 100_000      # commands one client has sent and not had answered


def parse_limits(section: dict) -> Limits:
    """``[limits]``: every key a known limit, every value an int >= 1 (raises ValueError)."""
    if not isinstance(section, dict):
        raise ValueError("limits: must be a table")
    known = {f.name for f in fields(Limits)}
    values = {}
    for key, value in section.items():
        if key not in known:
            raise ValueError(f"limits.{key}: unknown limit (known: {', '.join(sorted(known))})")
        if type(value) is not int or value < 1:
            raise ValueError(f"limits.{key}: must be an integer >= 1")
        values[key] = value
    return Limits(**values)
