"""A market's mode and its circuit breaker (rulebook 5.2.2.2, 5.2.2.3).

A market is ``OPEN``, ``REDUCE_ONLY`` ("可平不可開": only orders that may
only shrink a position, a perpetual's reduce-only orders; a spot market has
no positions, so it takes no new orders) or ``HALTED`` (no new orders and no
amends; cancels always work, so a trader can pull liquidity). The market is
the one authority on its mode: ``MarketEngine.submit`` and ``amend`` ask
``MarketGuard.refusal`` and answer a refused order as any market rejection
(``OrderClosed`` REJECTED), which releases its hold on the shard.

Who sets the mode:
- an operator (``SetMarketMode``, ``R-5.2.2.2-market-mode``), until another
  operator command changes it (``until_ns`` 0) or until a time;
- the **circuit breaker** (``R-5.2.2.2-circuit-breaker``): when the
  market's last trade price, or its index, moves more than ``move_bps``
  within ``window_s`` (from the lowest to the highest price seen in the
  window), the market goes to the rule's action (``restrict-open``:
  reduce-only; ``restrict-open-close`` or ``freeze``: halted) for ``cool_s``
  and then reopens by itself, or earlier by an operator. Under ``none`` and
  ``alert`` the trip is only recorded. A trip forgets the window, so the
  prices that tripped it do not trip it again when it reopens.

Every change, and every breaker trip recorded only, goes into the market's
audit chain (``audit``, ``exchange.risk.audit``); the latest are in ``changes``. Time is the requests' ``ts_ns``: the guard reads
no clock; an automatic reopening happens at the first request or price at
or after ``until_ns``. The window's low and high are kept in monotonic
deques (``exchange.pricing.price_range``), so each price costs O(1) amortized
whatever the trade rate.
"""
from __future__ import annotations

from collections import deque
from typing import NamedTuple

from exchange.core.reasons import Reason
from exchange.pricing.price_range import PriceRange
from exchange.messages.records import OperatorActed, OrderRejected, SetMarketMode, SetRiskRule
from exchange.risk.admin import permit
from exchange.risk.audit import AuditLog
from exchange.risk.rulebook import Action, Rulebook, RulebookError

OPEN, REDUCE_ONLY, HALTED = 0, 1, 2
MODE_NAMES = ("open", "reduce-only", "halted")
BREAKER, MODE_RULE = "R-5.2.2.2-circuit-breaker", "R-5.2.2.2-market-mode"
NANOS = 1_000_000_000
MARKET_RULES = {int(Reason.MARKET_HALTED): MODE_RULE, int(Reason.MARKET_REDUCE_ONLY): MODE_RULE,
                int(Reason.CIRCUIT_BREAKER): BREAKER}     # a market's refusal -> the rule it cites


class ModeChange(NamedTuple):
    """A market's mode changed: when, to what, under which rule, until when (0: until
    changed), by whom (``"breaker"`` for the circuit breaker, else the operator), why, and
    the figures that tripped a breaker (``value`` the move in bps, ``limit`` the rule's)."""
    ts_ns: int
    market: str
    before: int
    mode: int
    rule: str
    action: int
    until_ns: int
    by: str
    reason: str
    value: int = 0
    limit: int = 0


class MarketGuard:
    """One market's mode and circuit breaker (see the module docstring)."""

    __slots__ = ("market", "mode", "rule", "until_ns", "_rulebook", "windows", "changes", "audit", "_breaker")

    def __init__(self, market: str, rulebook: Rulebook):
        self.market = market
        self.mode = OPEN
        self.rule = ""
        self.until_ns = 0
        self.rulebook = rulebook                   # (the setter reads the breaker's thresholds once)
        self.windows = {"last": PriceRange(), "index": PriceRange()}
        self.changes: deque = deque(maxlen=1_000)   # the latest changes, for views (the audit chain keeps all)
        self.audit = AuditLog(f"market:{market}")

    @property
    def rulebook(self) -> Rulebook:
        return self._rulebook

    @rulebook.setter
    def rulebook(self, rulebook: Rulebook) -> None:
        self._rulebook = rulebook
        rule = rulebook[BREAKER]
        self._breaker = (rule, rule["move_bps"], rule["window_s"], rule["window_s"] * NANOS)

    def refusal(self, ts: int, reduce_only: bool) -> Reason | None:
        """Why an order (or amend: ``reduce_only`` False) may not enter now, or None."""
        if self.until_ns and ts >= self.until_ns:
            self._set(ts, OPEN, "", 0, "breaker" if self.rule == BREAKER else "schedule", "cooling period over")
        mode = self.mode
        if mode == OPEN:
            return None
        if mode == HALTED:
            return Reason.CIRCUIT_BREAKER if self.rule == BREAKER else Reason.MARKET_HALTED
        if reduce_only:
            return None
        return Reason.CIRCUIT_BREAKER if self.rule == BREAKER else Reason.MARKET_REDUCE_ONLY

    def observe(self, ts: int, price: int, source: str = "last") -> ModeChange | None:
        """A trade (``last``) or index price; trips the breaker if it moved too far."""
        if self.until_ns and ts >= self.until_ns:
            self._set(ts, OPEN, "", 0, "breaker", "cooling period over")
        rule, move_bps, window_s, window_ns = self._breaker
        if not move_bps or not window_s or price <= 0:
            return None
        low, high = self.windows[source].add(ts, price, window_ns)
        if (high - low) * 10_000 <= low * move_bps:
            return None
        moved = (high - low) * 10_000 // low
        for w in self.windows.values():
            w.clear()
        action = int(rule.action)
        if action < Action.RESTRICT_OPEN or self.mode == HALTED:
            change = ModeChange(ts, self.market, self.mode, self.mode, BREAKER, action, 0, "breaker",
                                f"{source} price moved {moved} bps in {window_s} s", moved, move_bps)
            self._record(change)
            return change
        mode = REDUCE_ONLY if action == Action.RESTRICT_OPEN else HALTED
        return self._set(ts, mode, BREAKER, ts + rule["cool_s"] * NANOS, "breaker",
                         f"{source} price moved {moved} bps in {window_s} s", moved, move_bps, action)

    def set_mode(self, ts: int, mode: int, until_ns: int, operator: str, reason: str) -> ModeChange:
        """An operator's mode (``R-5.2.2.2-market-mode``); OPEN also ends a breaker's halt."""
        return self._set(ts, mode, MODE_RULE if mode != OPEN else "", until_ns, operator, reason,
                         action=int(Action.RESTRICT_OPEN if mode == REDUCE_ONLY else
                                    Action.RESTRICT_OPEN_CLOSE if mode == HALTED else Action.NONE))

    def _set(self, ts, mode, rule, until_ns, by, reason, value=0, limit=0, action=0) -> ModeChange:
        change = ModeChange(ts, self.market, self.mode, mode, rule or self.rule, action, until_ns, by, reason,
                            value, limit)
        self.mode, self.rule, self.until_ns = mode, rule, until_ns
        self._record(change)
        return change

    def _record(self, c: ModeChange) -> None:
        self.changes.append(c)
        after = MODE_NAMES[c.mode] + (f" until {c.until_ns}" if c.until_ns else "")
        self.audit.append(c.ts_ns, c.by if c.by != "breaker" else "auto", "market-mode", c.market,
                          MODE_NAMES[c.before], after, c.reason, c.rule)

    def view(self) -> dict:
        return {"market": self.market, "mode": MODE_NAMES[self.mode], "rule": self.rule, "until_ns": self.until_ns}

    def canonical(self) -> tuple:
        return (self.mode, self.rule, self.until_ns, self.audit.canonical(), tuple(self.windows["last"].low),
                tuple(self.windows["last"].high), tuple(self.windows["index"].low),
                tuple(self.windows["index"].high))

    def snapshot(self) -> list:
        return [self.mode, self.rule, self.until_ns,
                [[list(w.low), list(w.high)] for w in (self.windows["last"], self.windows["index"])],
                self.audit.snapshot()]

    def restore(self, data: list) -> None:
        self.mode, self.rule, self.until_ns, windows, audit = data
        self.audit.restore(audit)
        for w, (low, high) in zip((self.windows["last"], self.windows["index"]), windows):
            w.low, w.high = deque(tuple(x) for x in low), deque(tuple(x) for x in high)


def apply_set_mode(guard: MarketGuard, cmd: SetMarketMode) -> list:
    """An operator's ``SetMarketMode`` on ``guard``'s market: the operator, their role and the
    reason checked (``exchange.risk.admin``), the mode (INVALID_MARKET_MODE) and its end
    (INVALID_RESTRICTION: not after the command); ``[OperatorActed]`` or the refusal."""
    reason = permit(guard.rulebook, cmd)
    if reason is None and not 0 <= cmd.mode <= 2:
        reason = Reason.INVALID_MARKET_MODE
    if reason is None and 0 < cmd.until_ns <= cmd.ts_ns:
        reason = Reason.INVALID_RESTRICTION
    if reason is not None:
        return [OrderRejected(cmd.request_id, 0, int(reason), 0, MODE_RULE)]
    before = guard.view()
    guard.set_mode(cmd.ts_ns, cmd.mode, cmd.until_ns, cmd.operator, cmd.reason)
    return [OperatorActed(cmd.request_id, cmd.ts_ns, cmd.operator, "set-market-mode", guard.market,
                          _mode_text(before), _mode_text(guard.view()), cmd.reason, MODE_RULE)]


def apply_rule_change(guard: MarketGuard, cmd: SetRiskRule) -> list:
    """An operator's ``SetRiskRule`` on a market (the breaker reads the same rulebook as the
    shards): checked as the shards check it, audited in the market's chain."""
    reason = permit(guard.rulebook, cmd)
    if reason is None and cmd.rule not in guard.rulebook.rules:
        reason = Reason.UNKNOWN_RULE
    if reason is None:
        try:
            updated = guard.rulebook.changed(cmd.rule, cmd.key, cmd.value)
        except RulebookError:
            reason = Reason.INVALID_RULE_VALUE
    if reason is not None:
        return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), 0, cmd.rule)]
    before, guard.rulebook = guard.rulebook.text(cmd.rule, cmd.key), updated
    after = updated.text(cmd.rule, cmd.key)
    target = f"{cmd.rule}.{cmd.key}"
    guard.audit.append(cmd.ts_ns, cmd.operator, "set-rule", target, before, after, cmd.reason, cmd.rule)
    return [OperatorActed(cmd.request_id, cmd.ts_ns, cmd.operator, "set-rule", target, before, after, cmd.reason,
                          cmd.rule)]


def _mode_text(view: dict) -> str:
    return view["mode"] + (f" until {view['until_ns']}" if view["until_ns"] else "")
