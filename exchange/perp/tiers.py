"""Tiered risk limits (rulebook 4.3.2): margin rates that rise with a position's size.

A market has a base maintenance rate (rulebook: 0.50%), a base initial rate
(1.00%), a step rate added to both per tier (0.50%), a step of position
notional (``step_notional``, quote minor units) and a number of steps. Tier
``t`` (0 .. ``steps``) covers notionals up to ``(t + 1) * step_notional``; its
rates are ``base + t * step_rate``.

- **Maintenance** is computed on the position's own tier with a per-tier
  deduction, ``notional * maintenance_rate(t) - deduction(t)``, where the
  deduction makes the requirement continuous at every tier boundary (a
  position one unit over a boundary does not jump by the whole step's rate
  on everything below it). The same holds for the initial requirement.
- **Risk limit**: the account chooses a tier for each position (raising or
  lowering it explicitly); the position's notional may not exceed that
  tier's ceiling, and its leverage may not exceed ``1 / initial_rate`` of
  that tier (``max_leverage``). A position can still grow past the top
  tier's ceiling by the mark moving (a long in a rally): its requirements
  then continue at the top tier's rates (``bracket``).
- **Warning line** at (maintenance + initial) / 2 (rulebook 4.3.2).

Rates are ints in parts per million (``exchange.core.money.PPM``), written in
the config as decimal fractions (``"0.005"``). Requirements are rounded up
(the account owes them): ``mul_div_ceil``.
"""
from __future__ import annotations

from dataclasses import dataclass

from exchange.core.money import PPM, mul_div_ceil


@dataclass(frozen=True, slots=True)
class RiskTiers:
    base_maintenance_ppm: int = 5_000       # 0.50%
    base_initial_ppm: int = 10_000          # 1.00%
    step_ppm: int = 5_000                   # +0.50% per tier, to both
    step_notional: int = 0                  # quote minor units per tier
    steps: int = 9                          # tiers 0 .. steps

    def __post_init__(self):
        if not 0 < self.base_maintenance_ppm < self.base_initial_ppm:
            raise ValueError("0 < base maintenance < base initial is required")
        if self.step_ppm < 0 or self.step_notional <= 0 or self.steps < 0:
            raise ValueError("step_ppm >= 0, step_notional > 0 and steps >= 0 are required")
        if self.initial_ppm(self.steps) > PPM:
            raise ValueError("the top tier's initial rate exceeds 100%")

    # ---- rates ------------------------------------------------------------------
    def maintenance_ppm(self, tier: int) -> int:
        return self.base_maintenance_ppm + tier * self.step_ppm

    def initial_ppm(self, tier: int) -> int:
        return self.base_initial_ppm + tier * self.step_ppm

    def max_leverage(self, tier: int) -> int:
        """The highest whole leverage the tier allows: floor(1 / initial rate)."""
        return PPM // self.initial_ppm(tier)

    # ---- tiers ------------------------------------------------------------------
    def ceiling(self, tier: int) -> int:
        """The largest position notional the tier (as a risk limit) allows."""
        return (tier + 1) * self.step_notional

    def tier_of(self, notional: int) -> int | None:
        """The lowest tier whose ceiling holds ``notional``; None beyond the top tier."""
        tier = max(0, -(-abs(notional) // self.step_notional) - 1)
        return tier if tier <= self.steps else None

    def bracket(self, notional: int) -> int:
        """The tier whose rates a position of ``notional`` pays: ``tier_of``, or the top tier beyond it."""
        tier = self.tier_of(notional)
        return self.steps if tier is None else tier

    def deduction(self, tier: int) -> int:
        """What the tier's rate over-counts below its floor, in quote minor units times PPM:
        sum over the boundaries below it of boundary x step rate."""
        return self.step_notional * self.step_ppm * tier * (tier + 1) // 2

    # ---- requirements (quote minor units, rounded up) ------------------------------
    def maintenance(self, notional: int) -> int:
        """The maintenance margin of a position of ``notional``; continuous across tiers."""
        return self._required(notional, self.maintenance_ppm)

    def initial(self, notional: int) -> int:
        """The initial margin at the tier rates (the floor any chosen leverage respects)."""
        return self._required(notional, self.initial_ppm)

    def warning(self, notional: int) -> int:
        """The warning line, (maintenance + initial) / 2, rounded up (``lines``)."""
        return self.lines(notional)[1]

    def lines(self, notional: int) -> tuple[int, int]:
        """(``maintenance``, ``warning``) of a position of ``notional`` at once (a mark re-values
        every position: one bracket for both)."""
        notional = abs(notional)
        tier = self.bracket(notional)
        deduction = self.deduction(tier)
        maintenance = mul_div_ceil(notional * self.maintenance_ppm(tier) - deduction, 1, PPM)
        initial = mul_div_ceil(notional * self.initial_ppm(tier) - deduction, 1, PPM)
        return maintenance, mul_div_ceil(maintenance + initial, 1, 2)

    def _required(self, notional: int, rate) -> int:
        notional = abs(notional)
        tier = self.bracket(notional)
        return mul_div_ceil(notional * rate(tier) - self.deduction(tier), 1, PPM)
