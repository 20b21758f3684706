"""Funding: the premium index, the rate, and the payments between longs and shorts.

Every interval (8 h by default, 1 h possible) longs pay shorts the rate
times their position's value at the mark when the rate is positive, shorts
pay longs when it is negative.

- **Premium samples** every few seconds (the caller's timer, ``ts_ns`` its
  own): ``(max(0, best bid - index) - max(0, index - best ask)) / index``.
- **Premium index** of an interval: the samples' average weighted 1, 2, ...,
  n in the order taken (the sampler takes them at a fixed spacing, so the
  ordinal is the time): later samples weigh more, and the last minutes of
  an interval cannot be gamed by a short burst.
- **Rate** = premium + clamp(interest - premium, -clamp, +clamp), then
  capped at +-cap (per market). Interest 0.01% and clamp 0.05% per interval
  by default.
- **Payments** are per lot: one lot's funding, ``mark * k * |rate|``, rounded
  up (the payers owe it), times each position's lots, paid by one side and
  received by the other. Long and short lots are equal in number, so the
  payments sum to exactly zero, wherever the positions are (each shard can
  settle its own accounts and the venue still sums to zero); the rounding,
  under one minor unit a lot, goes to the receivers.

Rates are ints in ``FUNDING_ONE`` = 10^8 units (the venues' eight decimals:
0.01% = 10_000); amounts are quote minor units.
"""
from __future__ import annotations

from dataclasses import dataclass

FUNDING_ONE = 100_000_000


@dataclass(frozen=True, slots=True)
class FundingRules:
    interval_ns: int = 8 * 3600 * 10**9
    interest: int = 10_000              # 0.01% per interval
    clamp: int = 50_000                 # 0.05%
    cap: int = 750_000                  # 0.75% per interval, either way
    max_samples: int = 5_760            # one every 5 s over 8 h

    def __post_init__(self):
        if self.interval_ns <= 0 or self.clamp < 0 or self.cap < 0 or self.max_samples <= 0:
            raise ValueError("interval_ns and max_samples must be positive; clamp and cap non-negative")


def premium(index: int, best_bid: int | None, best_ask: int | None) -> int:
    """One premium sample in ``FUNDING_ONE`` units (truncated toward zero); a missing side counts as none."""
    above = max(0, best_bid - index) if best_bid is not None else 0
    below = max(0, index - best_ask) if best_ask is not None else 0
    difference = (above - below) * FUNDING_ONE
    return difference // index if difference >= 0 else -(-difference // index)


class PremiumIndex:
    """The premium samples of the current interval and their weighted average."""

    def __init__(self, max_samples: int):
        self.max_samples = max_samples
        self.samples: list[int] = []

    def add(self, sample: int) -> bool:
        """Record a sample; False (nothing recorded) once the interval holds ``max_samples``."""
        if len(self.samples) >= self.max_samples:
            return False
        self.samples.append(sample)
        return True

    def average(self) -> int:
        """Sum of i * sample_i over sum of i (i = 1..n), truncated toward zero; 0 with no samples."""
        n = len(self.samples)
        if not n:
            return 0
        weighted = sum(i * s for i, s in enumerate(self.samples, 1))
        weights = n * (n + 1) // 2
        return weighted // weights if weighted >= 0 else -(-weighted // weights)

    def reset(self) -> None:
        self.samples.clear()


def funding_rate(average_premium: int, rules: FundingRules) -> int:
    """premium + clamp(interest - premium, +-clamp), capped at +-cap."""
    adjust = min(rules.clamp, max(-rules.clamp, rules.interest - average_premium))
    return min(rules.cap, max(-rules.cap, average_premium + adjust))


def per_lot(mark: int, k: int, rate: int) -> int:
    """One lot's funding at ``mark`` ticks (``k`` quote minor units per tick per lot), rounded up."""
    return -((-mark * k * abs(rate)) // FUNDING_ONE)


def payments(positions: list[tuple[int, int]], mark: int, k: int, rate: int) -> dict[int, int]:
    """What each account pays (> 0) or receives (< 0) for ``positions`` = [(account, lots)]
    at ``mark`` and ``rate``: longs pay when the rate is positive, shorts when negative."""
    if rate == 0:
        return {}
    amount = per_lot(mark, k, rate) * (1 if rate > 0 else -1)
    out: dict[int, int] = {}
    for account, lots in positions:
        if lots:
            out[account] = out.get(account, 0) + lots * amount
    return out
