"""The risk rulebook in force: every rule a machine enforces, its thresholds,
its action, and the rulebook's published hash (issue 15, seed 003).

Each rule has a **stable id** naming the rulebook section it comes from
(``R-4.2.5-cancel-ladder``), the rulebook's own values as defaults, and an
**action** chosen from the rulebook's list (4.2: every trading rule gets
"不採取限制", no restriction, beside the restrictions):

- ``none``: monitor only. Crossing the threshold is recorded (a
  ``RiskAction`` event with action ``none``, and the audit trail); nothing is
  refused.
- ``alert``: recorded and raised as an alert (the rulebook's warning notice).
- ``restrict-open``: the account may only reduce exposure ("限制開倉"); for a
  per-order rule, the order is refused.
- ``restrict-open-close``: the account may not trade at all ("限制開平倉");
  cancels still work.
- ``freeze``: trading and withdrawals refused.

A market-wide rule maps the same scale onto the market: ``restrict-open``
makes it reduce-only ("可平不可開"), ``restrict-open-close`` and ``freeze``
halt it.

Thresholds come from ``config/risk.toml`` (``load_rulebook``; any rule or
key left out keeps the rulebook's value). Amounts the rulebook gives in BTC
(1,000 BTC of wash trading, 5,000 BTC positions) are written as decimal
strings and held in BTC minor units; the "BTC equivalent" of another asset is
its value at the index (``exchange.risk.value``). ``Rulebook.digest()`` is the
published hash of the rules in force: it changes with any threshold, action or
exemption, including a change an operator makes at run time
(``Rulebook.replace``).

Operators (4.6: who may act, with which role) are in the same file,
``[operators.<name>] roles = [...]``; ``exchange.risk.admin`` says which role
permits which command.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from exchange.core.money import MoneyFormatError, parse_decimal

DEFAULT_RISK_PATH = Path(__file__).resolve().parent.parent.parent / "config" / "risk.toml"
BTC_SCALE = 8                 # the rulebook's "BTC equivalent" unit: satoshis


class Action(IntEnum):
    NONE = 0
    ALERT = 1
    RESTRICT_OPEN = 2
    RESTRICT_OPEN_CLOSE = 3
    FREEZE = 4


ACTION_NAMES = {"none": Action.NONE, "alert": Action.ALERT, "restrict-open": Action.RESTRICT_OPEN,
                "restrict-open-close": Action.RESTRICT_OPEN_CLOSE, "freeze": Action.FREEZE}
ACTION_TEXT = {value: name for name, value in ACTION_NAMES.items()}


class RulebookError(ValueError):
    """A risk file that names an unknown rule or key, or holds a bad value."""


# A parameter's kind says how its text is read: ``int`` a whole number >= 0,
# ``btc`` a decimal BTC amount (held in satoshis), ``quote`` a decimal amount of
# the index quote asset (held in its minor units at ``quote_scale``), ``tiers``
# a list of fee tier names.
INT, BTC, QUOTE, TIERS = "int", "btc", "quote", "tiers"


@dataclass(frozen=True, slots=True)
class RuleDef:
    """A rule as the rulebook writes it: its id, section, what it watches, its
    default action and its parameters ``name -> (kind, default)``."""
    id: str
    section: str
    title: str
    action: Action
    params: dict


RULE_DEFS = (
    # 4.1 accounts
    RuleDef("R-4.1.4-account-lock", "4.1.4/4.1.6", "suspected credential theft: the account is locked, nothing "
            "but an operator's unlock changes it", Action.FREEZE, {}),
    # 4.2 trading
    RuleDef("R-4.2.1-wash-trade", "4.2.1", "wash trading: volume traded between accounts an operator linked, "
            "per window", Action.NONE, {"volume_btc": (BTC, "1000"), "window_s": (INT, 86_400)}),
    RuleDef("R-4.2.4-over-trading-warning", "4.2.4", "over-trading (fee-discount farming): an account's volume "
            "per window, warning level", Action.ALERT, {"volume_btc": (BTC, "1000"), "window_s": (INT, 86_400)}),
    RuleDef("R-4.2.4-over-trading-block", "4.2.4", "over-trading: an account's volume per window, trading "
            "blocked", Action.RESTRICT_OPEN_CLOSE, {"volume_btc": (BTC, "5000"), "window_s": (INT, 86_400),
                                                    "restrict_s": (INT, 86_400)}),
    RuleDef("R-4.2.5-cancel-ladder", "4.2.5", "frequent place/cancel: places plus cancels per account and market "
            "per window; first reach warns, a second within the window restricts opening, a third opening and "
            "closing, each for restrict_s", Action.RESTRICT_OPEN_CLOSE,
            {"count": (INT, 500), "window_s": (INT, 86_400), "restrict_s": (INT, 1_800),
             "exempt_tiers": (TIERS, ("market_maker",))}),
    RuleDef("R-4.2.6-self-trade", "4.2.6", "self-trading: volume one owner trades with itself, per window",
            Action.NONE, {"volume_btc": (BTC, "1000"), "window_s": (INT, 86_400)}),
    RuleDef("R-4.2.7-price-band", "4.2.7", "a spot or margin limit order priced further than band_bps from its "
            "market's index is refused (a fat-finger guard: 4.2.7's 5% band for a new contract's first 15 "
            "minutes is the perpetual's listing band)", Action.RESTRICT_OPEN, {"band_bps": (INT, 5_000)}),
    # 4.3 positions
    RuleDef("R-4.3.1-position-limit", "4.3.1", "tiered position limit on a BTC perpetual: the market's "
            "position_limit (5,000 BTC), plus step_btc for each step_equity of the perpetual wallet's collateral, "
            "at most max_btc; an operator's hedge exemption lifts it (套期保值...審批制)", Action.RESTRICT_OPEN,
            {"step_equity": (QUOTE, "10000000"), "step_btc": (BTC, "1000"), "max_btc": (BTC, "20000")}),
    RuleDef("R-4.3.3-large-trader", "4.3.3", "large-trader report: positions at or above this BTC equivalent",
            Action.ALERT, {"position_btc": (BTC, "5000")}),
    # 4.4 withdrawals
    RuleDef("R-4.4.2-large-withdrawal", "4.4.2/4.4.3", "a withdrawal worth more than this is queued for "
            "queue_s and needs an operator's approval", Action.RESTRICT_OPEN,
            {"value_btc": (BTC, "1000"), "queue_s": (INT, 86_400)}),
    RuleDef("R-4.4.3-credential-change", "4.4.3", "no withdrawal within lock_s of a credential change",
            Action.FREEZE, {"lock_s": (INT, 86_400)}),
    RuleDef("R-5.2.2.4-blocklist", "5.2.2.4", "a withdrawal to an address on the high-risk blocklist is "
            "refused and alerted", Action.FREEZE, {}),
    # 5.2.2 emergencies: abusive traffic (5.2.2.1), one-sided markets (5.2.2.2), frozen assets (5.2.2.3)
    RuleDef("R-5.2.2.1-order-rate", "5.2.2.1", "unfilled orders per account: a token bucket of burst orders "
            "refilled at refill_per_s; an order that fills gives its token back", Action.RESTRICT_OPEN,
            {"burst": (INT, 100), "refill_per_s": (INT, 10), "exempt_tiers": (TIERS, ("market_maker",))}),
    RuleDef("R-5.2.2.1-request-rate", "5.2.2.1", "requests per account: a token bucket of burst commands "
            "refilled at refill_per_s", Action.RESTRICT_OPEN,
            {"burst": (INT, 600), "refill_per_s": (INT, 100), "exempt_tiers": (TIERS, ("market_maker",))}),
    RuleDef("R-5.2.2.1-open-orders", "5.2.2.1", "open orders per account: base, plus per_step for each "
            "step_equity of equity (index quote asset), at most max", Action.RESTRICT_OPEN,
            {"base": (INT, 200), "step_equity": (QUOTE, "1000"), "per_step": (INT, 10), "max": (INT, 5_000)}),
    RuleDef("R-5.2.2.2-circuit-breaker", "5.2.2.2", "a market halts when its last price or its index moves more "
            "than move_bps within window_s; it resumes after cool_s or by an operator. Alert by default: a halt "
            "in a crash also stops the liquidations' orders, so the rulebook leaves halting to the risk desk "
            "(5.2.2.2 協同相關部門); restrict-open or restrict-open-close makes it automatic",
            Action.ALERT, {"move_bps": (INT, 1_000), "window_s": (INT, 300), "cool_s": (INT, 600)}),
    RuleDef("R-5.2.2.2-market-mode", "5.2.2.2", "an operator sets a market open, reduce-only or halted",
            Action.RESTRICT_OPEN_CLOSE, {}),
    RuleDef("R-5.2.2.3-freeze", "5.2.2.3", "an operator freezes an account's or an asset's trading, "
            "withdrawals or both", Action.FREEZE, {}),
)
RULE_IDS = tuple(d.id for d in RULE_DEFS)
_DEFS = {d.id: d for d in RULE_DEFS}


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule in force: its action and its parameters (ints, or a tuple of names)."""
    id: str
    action: Action
    params: tuple              # ((name, value), ...) in the definition's order

    def __getitem__(self, name: str):
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(f"{self.id}: no parameter {name!r}")

    @property
    def section(self) -> str:
        return _DEFS[self.id].section

    def view(self) -> dict:
        return {"id": self.id, "section": self.section, "action": ACTION_TEXT[self.action],
                **{k: list(v) if type(v) is tuple else v for k, v in self.params}}


@dataclass(frozen=True, slots=True)
class Rulebook:
    """Every rule in force, the operators and their roles, and the published hash."""
    rules: dict                              # rule id -> Rule, in RULE_DEFS order
    operators: dict = field(default_factory=dict)     # operator name -> frozenset of roles
    quote_scale: int = 6                     # the index quote asset's scale, for QUOTE parameters

    def __getitem__(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def canonical(self) -> tuple:
        return (tuple((r.id, int(r.action), r.params) for r in self.rules.values()),
                tuple(sorted((name, tuple(sorted(roles))) for name, roles in self.operators.items())))

    def digest(self) -> str:
        """The published hash of the rulebook in force (sha256 of its canonical form)."""
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    def replace(self, rule_id: str, key: str, text) -> "Rulebook":
        """This rulebook with one threshold (or ``key == "action"``, the action) changed;
        raises RulebookError for an unknown rule, key or a bad value."""
        if rule_id not in self.rules:
            raise RulebookError(f"unknown rule {rule_id!r}")
        rule = self.rules[rule_id]
        if key == "action":
            action = _action(rule_id, text)
            new = Rule(rule_id, action, rule.params)
        else:
            spec = _DEFS[rule_id].params.get(key)
            if spec is None:
                raise RulebookError(f"{rule_id}: unknown parameter {key!r}")
            value = _value(f"{rule_id}.{key}", spec[0], text, self.quote_scale)
            new = Rule(rule_id, rule.action, tuple((k, value if k == key else v) for k, v in rule.params))
        return Rulebook({**self.rules, rule_id: new}, self.operators, self.quote_scale)

    def changed(self, rule_id: str, key: str, text: str) -> "Rulebook":
        """``replace`` from a value written as an operator types it (``SetRiskRule.value``): an
        action's name, an int's digits, a decimal amount, or comma-separated fee tiers."""
        if rule_id not in self.rules:
            raise RulebookError(f"unknown rule {rule_id!r}")
        spec = _DEFS[rule_id].params.get(key)
        if key != "action" and spec is None:
            raise RulebookError(f"{rule_id}: unknown parameter {key!r}")
        if spec is not None and spec[0] == INT:
            if not text.isdigit() or not text.isascii():
                raise RulebookError(f"{rule_id}.{key}: not a whole number")
            return self.replace(rule_id, key, int(text))
        if spec is not None and spec[0] == TIERS:
            return self.replace(rule_id, key, [t for t in text.split(",") if t])
        return self.replace(rule_id, key, text)

    def text(self, rule_id: str, key: str) -> str:
        """A parameter's (or the action's) value as ``changed`` reads it."""
        rule = self.rules[rule_id]
        if key == "action":
            return ACTION_TEXT[rule.action]
        value = rule[key]
        if type(value) is tuple:
            return ",".join(value)
        if _DEFS[rule_id].params[key][0] in (BTC, QUOTE):
            scale = BTC_SCALE if _DEFS[rule_id].params[key][0] == BTC else self.quote_scale
            whole, frac = divmod(value, 10 ** scale)
            return f"{whole}.{frac:0{scale}d}".rstrip("0").rstrip(".") if frac else str(whole)
        return str(value)

    def view(self) -> dict:
        return {"digest": self.digest(), "rules": [r.view() for r in self.rules.values()],
                "operators": {name: sorted(roles) for name, roles in sorted(self.operators.items())}}


def parse_rulebook(raw: dict, quote_scale: int = 6, file: str = "<risk>") -> Rulebook:
    """The rulebook of a parsed risk TOML document: ``[rules."<id>"]`` tables
    (``action`` and parameters) and ``[operators.<name>] roles``; anything left out keeps
    the rulebook's default. Raises RulebookError naming the file and key."""
    if not isinstance(raw, dict):
        raise RulebookError(f"{file}: must be a table")
    unknown = set(raw) - {"rules", "operators"}
    if unknown:
        raise RulebookError(f"{file}: unknown section {sorted(unknown)[0]!r}")
    given = raw.get("rules", {})
    if not isinstance(given, dict):
        raise RulebookError(f"{file}: rules: must be a table")
    for rule_id in given:
        if rule_id not in _DEFS:
            raise RulebookError(f"{file}: rules.{rule_id}: unknown rule (known: {', '.join(RULE_IDS)})")
    rules = {}
    for d in RULE_DEFS:
        section = given.get(d.id, {})
        if not isinstance(section, dict):
            raise RulebookError(f"{file}: rules.{d.id}: must be a table")
        for key in section:
            if key != "action" and key not in d.params:
                raise RulebookError(f"{file}: rules.{d.id}.{key}: unknown parameter "
                                    f"(known: action, {', '.join(d.params) or '-'})")
        action = _action(f"{file}: rules.{d.id}", section["action"]) if "action" in section else d.action
        params = tuple((key, _value(f"{file}: rules.{d.id}.{key}", kind, section.get(key, default), quote_scale))
                       for key, (kind, default) in d.params.items())
        rules[d.id] = Rule(d.id, action, params)
    operators = {}
    for name, section in raw.get("operators", {}).items():
        roles = section.get("roles") if isinstance(section, dict) else None
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
            raise RulebookError(f"{file}: operators.{name}.roles: must be a list of role names")
        operators[name] = frozenset(roles)
    return Rulebook(rules, operators, quote_scale)


def load_rulebook(path: str | Path | None = None, quote_scale: int = 6) -> Rulebook:
    """The rulebook in ``path`` (``config/risk.toml`` when None)."""
    path = Path(path) if path else DEFAULT_RISK_PATH
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulebookError(f"{path}: {exc}") from exc
    return parse_rulebook(raw, quote_scale, str(path))


def default_rulebook(quote_scale: int = 6) -> Rulebook:
    """The rulebook's own values, no operators."""
    return parse_rulebook({}, quote_scale)


def _action(where: str, text) -> Action:
    if text not in ACTION_NAMES:
        raise RulebookError(f"{where}.action: must be one of {', '.join(ACTION_NAMES)}")
    return ACTION_NAMES[text]


def _value(where: str, kind: str, value, quote_scale: int):
    if kind == INT:
        if type(value) is not int or value < 0:
            raise RulebookError(f"{where}: must be an integer >= 0")
        return value
    if kind == TIERS:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise RulebookError(f"{where}: must be a list of fee tier names")
        return tuple(sorted(value))
    try:
        amount = parse_decimal(value, BTC_SCALE if kind == BTC else quote_scale)
    except MoneyFormatError as exc:
        raise RulebookError(f"{where}: {exc}") from None
    if amount < 0:
        raise RulebookError(f"{where}: must be >= 0")
    return amount
