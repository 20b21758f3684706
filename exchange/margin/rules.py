"""Margin and lending rules from the config: lines, borrow limits, rate curves.

Every number the margin desk and the lending pools enforce comes from the
``[margin]`` and ``[lending.<ASSET>]`` sections (rulebook 4.2.2, 4.4.3, 5.4.4;
seed 001). Ratios and rates are written as decimal strings and held as ints in
parts per million (``"1.1"`` -> 1_100_000).

Margin level = total assets / total liabilities, both valued at index prices.
The lines, from healthy to worst:
- ``initial_level``: a transfer out of a margin book (and so a withdrawal of
  those funds) must leave at least this level; below it they are blocked, and
  released by themselves once the level is back above (rulebook 4.4.3);
- ``warning_level``: the account is notified;
- ``margin_call_level``: the account is asked to add collateral;
- ``liquidation_level``: the liquidator takes the book over (rulebook 5.4.4:
  assets / liabilities <= 110%).

Borrow limits (rulebook 5.4.4: "the most a user may borrow is 0.5x to 3x, by
leverage and user level") are a table ``borrow_limits.<user level>.<tier>``
of the largest ``liabilities / equity`` allowed; a tier named ``"10x"`` allows
at most 9 (10x leverage = equity + 9x borrowed, the seed's example).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from exchange.margin.lending import RateCurve
from exchange.core.money import PPM, MoneyFormatError, parse_decimal


class RulesError(ValueError):
    """A margin or lending section that cannot be used (key, reason)."""


class Zone(IntEnum):
    """Where a margin level stands against the lines (the numbers are the ones
    ``MarginLevelChanged.zone`` has always carried: keep them)."""
    HEALTHY = 0          # at or above the warning line (or no debt)
    WARNING = 1          # under the warning line
    MARGIN_CALL = 2      # under the margin-call line
    LIQUIDATION = 3      # at or under the liquidation line: the liquidator takes the book over


@dataclass(frozen=True, slots=True)
class MarginRules:
    markets: frozenset[str]                      # markets with margin trading
    initial_level_ppm: int
    warning_level_ppm: int
    margin_call_level_ppm: int
    liquidation_level_ppm: int
    borrow_limits_ppm: dict[str, dict[str, int]]  # user level -> leverage tier -> max liabilities/equity
    default_user_level: str
    default_leverage_tier: str
    liquidation_step_bps: int                    # each liquidation step widens the IOC limit by this
    liquidation_max_steps: int

    def borrow_limit_ppm(self, user_level: str, tier: str) -> int:
        return self.borrow_limits_ppm[user_level][tier]

    def zone(self, level_ppm: int | None) -> Zone:
        """The level's zone (no level, i.e. no debt: healthy)."""
        if level_ppm is None or level_ppm >= self.warning_level_ppm:
            return Zone.HEALTHY
        if level_ppm > self.liquidation_level_ppm:
            return Zone.WARNING if level_ppm >= self.margin_call_level_ppm else Zone.MARGIN_CALL
        return Zone.LIQUIDATION


DEFAULT_RESERVE_ACCOUNT = 1_000_000_000
DISABLED = MarginRules(frozenset(), 2 * PPM, 15 * PPM // 10, 13 * PPM // 10, 11 * PPM // 10, {}, "", "", 100, 10)


def parse_margin_rules(raw: dict[str, Any], markets: dict) -> MarginRules:
    """Validate the ``[margin]`` section (absent: margin trading disabled)."""
    if not raw:
        return DISABLED
    enabled = raw.get("markets", [])
    if not isinstance(enabled, list) or any(m not in markets for m in enabled):
        raise RulesError("margin.markets: must list configured markets")
    levels = [_ratio(raw, key) for key in ("initial_level", "warning_level", "margin_call_level",
                                            "liquidation_level")]
    if not levels[0] >= levels[1] > levels[2] > levels[3] > PPM:
        raise RulesError("margin: need initial >= warning > margin_call > liquidation > 1")
    limits: dict[str, dict[str, int]] = {}
    table = raw.get("borrow_limits", {})
    if not isinstance(table, dict) or not table:
        raise RulesError("margin.borrow_limits: a table of user levels is required")
    for level, tiers in table.items():
        if not isinstance(tiers, dict) or not tiers:
            raise RulesError(f"margin.borrow_limits.{level}: a table of leverage tiers is required")
        limits[level] = {}
        for tier, text in tiers.items():
            leverage = _tier_leverage(tier)
            multiple = _ratio({tier: text}, tier)
            if not 0 < multiple <= (leverage - 1) * PPM:
                raise RulesError(f"margin.borrow_limits.{level}.{tier}: must be in (0, {leverage - 1}]")
            limits[level][tier] = multiple
    default_level = raw.get("default_user_level", next(iter(limits)))
    default_tier = raw.get("default_leverage_tier", next(iter(limits[default_level])) if default_level in limits
                           else "")
    if default_level not in limits or default_tier not in limits[default_level]:
        raise RulesError("margin.default_user_level / default_leverage_tier: not in borrow_limits")
    step_bps = _int(raw, "liquidation_step_bps", 1, 5_000, 100)
    max_steps = _int(raw, "liquidation_max_steps", 1, 1_000, 10)
    return MarginRules(frozenset(enabled), *levels, limits, default_level, default_tier, step_bps, max_steps)


def parse_reserve_account(raw: dict[str, Any]) -> int:
    """``[lending] reserve_account``: the exchange's account that receives the reserve."""
    value = (raw or {}).get("reserve_account", DEFAULT_RESERVE_ACCOUNT)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise RulesError("lending.reserve_account: a positive account id")
    return value


def parse_rate_curves(raw: dict[str, Any], assets: dict) -> dict[str, RateCurve]:
    """Validate ``[lending.<ASSET>]`` sections: one kinked curve per lendable asset."""
    curves = {}
    for asset, section in (raw or {}).items():
        if asset == "reserve_account":
            continue
        if asset not in assets or not isinstance(section, dict):
            raise RulesError(f"lending.{asset}: unknown asset or not a table")
        values = [_ratio(section, key, f"lending.{asset}.") for key in
                  ("base_rate", "slope1", "slope2", "optimal_utilization", "reserve_factor")]
        try:
            curves[asset] = RateCurve(*values)
        except ValueError as exc:
            raise RulesError(f"lending.{asset}: {exc}") from None
    return curves


def _ratio(section: dict, key: str, prefix: str = "margin.") -> int:
    text = section.get(key)
    try:
        value = parse_decimal(text, 6)
    except MoneyFormatError as exc:
        raise RulesError(f"{prefix}{key}: {exc}") from None
    if value < 0:
        raise RulesError(f"{prefix}{key}: must not be negative")
    return value


def _tier_leverage(tier: str) -> int:
    if not (isinstance(tier, str) and tier.endswith("x") and tier[:-1].isdigit() and int(tier[:-1]) >= 2):
        raise RulesError(f"margin.borrow_limits: leverage tier {tier!r} must look like '3x' (at least 2x)")
    return int(tier[:-1])


def _int(section: dict, key: str, low: int, high: int, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RulesError(f"margin.{key}: an integer in [{low}, {high}]")
    return value
