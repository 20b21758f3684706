"""An operator raises a perpetual market's maintenance rate for now, and restores it
(rulebook 5.1.2 (三) and 5.2.2.3 (三): 對於期貨合約，可臨時提高其維持保證金率).

``SetMaintenanceMargin`` goes to every shard (as its house account) through the
operator door; each shard's desk checks the operator (``exchange.risk.admin``: the
``risk`` or ``admin`` role, and a reason) and applies it:

- the market's base maintenance rate becomes ``maintenance_ppm``, at least the
  configured one (0 restores the configured rate); the base initial rate moves up
  by as much, so the warning line, (maintenance + initial) / 2, stays between
  them, and the top tier's initial rate must stay at most 100%
  (INVALID_MAINTENANCE_RATE);
- every position in the market is re-valued at the market's next mark
  (``ZoneIndex.touch_market``): one now at or under the raised maintenance is
  due, and the liquidator, which asks the shards who is due, liquidates it like
  any other, so the liquidator and the shards agree by construction;
- new orders hold at least the raised initial rate: an order is held at no more
  than the leverage the tier now allows (``PerpDesk.place``); a chosen leverage
  above it is kept for when the rate is restored.

The raise is the desk's state (``PerpDesk.raised``: market -> ppm above the
configuration; snapshotted and in the canonical state); with a risk rulebook the
shard's audit chain records each change with the rates before and after.

Reasons, in order: REASON_REQUIRED, UNKNOWN_OPERATOR, OPERATOR_NOT_PERMITTED
(``permit``), UNKNOWN_MARKET, INVALID_MAINTENANCE_RATE; UNKNOWN_COMMAND on a shard
without a risk rulebook (no operators).
"""
from __future__ import annotations

from dataclasses import replace

from exchange.core.money import format_decimal
from exchange.core.reasons import Reason
from exchange.messages.records import OperatorActed, OrderRejected, SetMaintenanceMargin
from exchange.perp.rules import PerpMarket
from exchange.risk.admin import permit

RULE = "R-5.2.2.3-maintenance-margin"       # cited in the shard's audit chain


def raised(configured: PerpMarket, ppm: int) -> PerpMarket:
    """``configured`` with both base rates ``ppm`` higher (ValueError if the tiers refuse it)."""
    tiers = configured.tiers
    return replace(configured, tiers=replace(tiers, base_maintenance_ppm=tiers.base_maintenance_ppm + ppm,
                                             base_initial_ppm=tiers.base_initial_ppm + ppm))


def apply(desk, cmd: SetMaintenanceMargin) -> list:
    gate = desk.shard.risk
    if gate is None:
        return _reject(cmd, Reason.UNKNOWN_COMMAND)
    refused = permit(gate.rulebook, cmd)
    if refused is not None:
        return _reject(cmd, refused)
    configured = desk.configured.get(cmd.market)
    if configured is None:
        return _reject(cmd, Reason.UNKNOWN_MARKET)
    base = configured.tiers.base_maintenance_ppm
    rate = cmd.maintenance_ppm or base
    if rate < base:
        return _reject(cmd, Reason.INVALID_MAINTENANCE_RATE)
    before = _rates(desk.markets[cmd.market])
    try:
        desk.raise_maintenance(cmd.market, rate - base)     # (refuses rates the tiers refuse, changing nothing)
    except ValueError:
        return _reject(cmd, Reason.INVALID_MAINTENANCE_RATE)
    acted = OperatorActed(cmd.request_id, cmd.ts_ns, cmd.operator, "maintenance-margin", cmd.market, before,
                          _rates(desk.markets[cmd.market]), cmd.reason, RULE)
    gate.audit.append(acted.ts_ns, acted.operator, acted.command, acted.target, acted.before, acted.after,
                      acted.reason, acted.rule)
    return [acted]


def _rates(market: PerpMarket) -> str:
    """The base rates as the config writes them: "maintenance 0.005 initial 0.01"."""
    tiers = market.tiers
    return f"maintenance {_ratio(tiers.base_maintenance_ppm)} initial {_ratio(tiers.base_initial_ppm)}"


def _ratio(ppm: int) -> str:
    text = format_decimal(ppm, 6)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _reject(cmd, reason: Reason) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), 0, RULE)]
