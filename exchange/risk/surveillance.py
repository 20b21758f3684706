"""Trade surveillance (rulebook 4.2.1 wash trading, 4.2.4 over-trading, 4.2.6
self-trading, 4.3.3 large-trader reports; seed 003): sliding volume windows and
position totals, and the alerts they raise. The caller acts on an alert (records
it, restricts the accounts it names under its action); nothing here refuses
anything.

- **Volume windows.** Every fill adds its BTC-equivalent quantity (satoshis: the
  caller converts, ``btc_equivalent``) to the over-trading windows of its taker
  and of its maker (once if they are one account; both rules,
  ``R-4.2.4-over-trading-warning`` and ``-block``, each its own window); to the
  self-trade window (``R-4.2.6-self-trade``) of the owner group if taker and
  maker share one (or are the same account); to the wash window
  (``R-4.2.1-wash-trade``) of the suspected group if two different accounts of
  one suspected group trade. A fill at ``t`` counts in a window of ``window_s``
  at time ``T`` while ``t >= T - window_s x 10**9``: a fill exactly ``window_s``
  old still counts, one nanosecond older does not.
- **Groups.** ``link(a, b, kind)`` joins the groups of ``a`` and ``b``
  (transitive): ``owner`` (one owner's accounts; self-trade and large-trader)
  or ``suspected`` (operator's suspicion; wash trade). A group is named by its
  lowest account id; joining two merges their windows (entries and sums) from
  then on. Volume traded before a link is not reassigned; links are never
  undone (an operator's mistake is corrected by a new Surveillance).
- **Alerts, and re-arming.** A window is *armed* or not; a new window is armed.
  When a fill lands in an armed window whose sum (with that fill) is at or
  above the rule's threshold, one Alert is raised and the window is disarmed.
  It is re-armed as soon as its sum falls below the threshold (volume leaving
  the window, or a threshold raised by ``set_rulebook``) or it holds nothing;
  so one crossing gives one alert however long the sum stays at or above, and
  a second needs a fall below first. A window that is armed and already at or
  above the threshold (after a merge, or a threshold lowered) alerts at its
  next fill. The alert carries the action of the rule in force, ``NONE``
  included (monitor only: the caller records it).
- **Large traders.** ``observe_position`` holds each account's position per
  market (BTC-equivalent satoshis, signed); an owner group's total is the sum
  of the absolute sizes over its accounts and markets (gross: a short in one
  market does not offset a long in another). The group's report is raised, and
  re-armed, by the same rule against ``position_btc``, at each position update.
- **Time** is the latest ``ts_ns`` seen: an input stamped earlier is taken at
  that latest time (it is not lost; it expires a little late). Every input
  first expires every window to the time, so the state is always exact.
- **Memory** is bounded by the windows: each window rule keeps one
  ``(ts_ns, amount)`` entry per fill it counted within its window and one
  ``(ts_ns, account)`` reference in the rule's expiry queue (both dropped at
  the first input after they leave the window; a window left empty is
  deleted); one position per open (account, market); one group entry per
  linked account. Lengthening a window does not bring back entries already
  dropped.

All amounts are integers (satoshis); nothing here reads a clock or does I/O.
"""
from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from heapq import merge

from exchange.core.money import mul_div_floor
from exchange.risk.rulebook import BTC_SCALE, Action, Rulebook

WASH_TRADE = "R-4.2.1-wash-trade"
OVER_TRADING_WARNING = "R-4.2.4-over-trading-warning"
OVER_TRADING_BLOCK = "R-4.2.4-over-trading-block"
SELF_TRADE = "R-4.2.6-self-trade"
LARGE_TRADER = "R-4.3.3-large-trader"
WINDOW_RULES = (WASH_TRADE, OVER_TRADING_WARNING, OVER_TRADING_BLOCK, SELF_TRADE)
RULES = WINDOW_RULES + (LARGE_TRADER,)
OWNER, SUSPECTED = "owner", "suspected"
LINK_KINDS = (OWNER, SUSPECTED)
GROUP_KIND = {WASH_TRADE: SUSPECTED, SELF_TRADE: OWNER}        # window rules kept per group
NS_PER_S = 1_000_000_000
SNAPSHOT_VERSION = 1


def btc_equivalent(amount_minor: int, asset_scale: int, asset_price: int, btc_price: int) -> int:
    """Return ``amount_minor`` of an asset (``asset_scale`` decimals) in BTC satoshis at the
    index: ``amount x asset_price / btc_price``, both prices in the same quote units. The
    magnitude rounds down (toward zero): a signed amount converts to a signed result."""
    if asset_scale < 0 or asset_price <= 0 or btc_price <= 0:
        raise ValueError("btc_equivalent needs a scale >= 0 and positive prices")
    sats = mul_div_floor(abs(amount_minor) * asset_price, 10**BTC_SCALE, 10**asset_scale * btc_price)
    return -sats if amount_minor < 0 else sats


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule crossed: the action in force, the accounts it names (sorted), the market of the
    input that crossed it, the figures (measured value, threshold, the rule's other
    parameters) and a report (the triggering fill, or the large-trader report)."""
    ts_ns: int
    rule_id: str
    action: Action
    accounts: tuple[int, ...]
    market: str
    figures: tuple[tuple[str, int], ...]
    report: tuple[tuple[str, int | str], ...] = ()

    def figure(self, name: str) -> int:
        return dict(self.figures)[name]


class _Window:
    __slots__ = ("entries", "total", "armed")

    def __init__(self, entries=(), armed: bool = True):
        self.entries = deque(entries)                 # (ts_ns, amount), oldest first
        self.total = sum(amount for _, amount in self.entries)
        self.armed = armed


class Surveillance:
    """The volume windows, links and positions of every account, and the alerts they raise."""

    def __init__(self, rulebook: Rulebook):
        self._rulebook = rulebook
        self._clock_ns = 0
        self._windows = {rule: {} for rule in WINDOW_RULES}          # rule -> key -> _Window
        self._queues = {rule: deque() for rule in WINDOW_RULES}      # rule -> (ts_ns, account), oldest first
        self._group = {kind: {} for kind in LINK_KINDS}              # kind -> account -> group key
        self._members = {kind: {} for kind in LINK_KINDS}            # kind -> group key -> sorted accounts
        self._positions = {}                                         # (account, market) -> signed sats
        self._gross = {}                                             # account -> sum of |sats|
        self._reported = set()                                       # owner group keys disarmed
        self._alerts = dict.fromkeys(RULES, 0)

    # -- configuration ------------------------------------------------------------------

    def set_rulebook(self, rulebook: Rulebook) -> None:
        """Put ``rulebook`` in force: windows expire to the current time by the new lengths,
        and every window or group now below its threshold is re-armed."""
        self._rulebook = rulebook
        self._sweep(self._clock_ns)
        for rule in WINDOW_RULES:
            threshold = self._threshold(rule)
            for window in self._windows[rule].values():
                window.armed = window.armed or window.total < threshold
        threshold = self._threshold(LARGE_TRADER)
        self._reported = {key for key in self._reported if self._position_total(key) >= threshold}

    def link(self, a: int, b: int, kind: str) -> None:
        """Join the ``kind`` groups (``owner`` or ``suspected``) of accounts ``a`` and ``b``."""
        if kind not in LINK_KINDS:
            raise ValueError(f"link kind must be one of {', '.join(LINK_KINDS)}")
        key_a, key_b = self.group_key(kind, a), self.group_key(kind, b)
        if key_a == key_b:
            return
        members = tuple(sorted(self.members(kind, key_a) + self.members(kind, key_b)))
        key = members[0]
        for gone in (key_a, key_b):
            self._members[kind].pop(gone, None)
        self._members[kind][key] = members
        for account in members:
            self._group[kind][account] = key
        for rule in WINDOW_RULES:
            if GROUP_KIND.get(rule) == kind:
                self._merge_windows(rule, key_a, key_b, key)
        if kind == OWNER and (key_a in self._reported or key_b in self._reported):
            self._reported -= {key_a, key_b}
            self._reported.add(key)

    def group_key(self, kind: str, account: int) -> int:
        """The lowest account id of ``account``'s ``kind`` group (itself if not linked)."""
        return self._group[kind].get(account, account)

    def members(self, kind: str, key: int) -> tuple[int, ...]:
        """The accounts of the ``kind`` group named ``key``, sorted."""
        return self._members[kind].get(key, (key,))

    # -- inputs ---------------------------------------------------------------------------

    def observe_fill(self, ts_ns: int, market: str, base_asset: str, quantity_sats_btc_equiv: int,
                     taker: int, maker: int) -> list[Alert]:
        """Count a fill (its quantity in BTC-equivalent satoshis) in the windows it feeds
        (module docstring); return the alerts it raises: over-trading per account (lower id
        first, warning before block), then self-trade, then wash trade."""
        if quantity_sats_btc_equiv < 0:
            raise ValueError("a fill's quantity is >= 0")
        now = self._advance(ts_ns)
        fill = (("base_asset", base_asset), ("quantity_btc", quantity_sats_btc_equiv),
                ("taker", taker), ("maker", maker))
        feeds = [(rule, account, account, (account,)) for account in sorted({taker, maker})
                 for rule in (OVER_TRADING_WARNING, OVER_TRADING_BLOCK)]
        key = self.group_key(OWNER, taker)
        if key == self.group_key(OWNER, maker):
            feeds.append((SELF_TRADE, key, taker, self.members(OWNER, key)))
        key = self.group_key(SUSPECTED, taker)
        if taker != maker and key == self.group_key(SUSPECTED, maker):
            feeds.append((WASH_TRADE, key, taker, self.members(SUSPECTED, key)))
        alerts = []
        for rule, key, ref, accounts in feeds:
            window = self._windows[rule].get(key)
            if window is None:
                window = self._windows[rule][key] = _Window()
            window.entries.append((now, quantity_sats_btc_equiv))
            window.total += quantity_sats_btc_equiv
            self._queues[rule].append((now, ref))
            threshold = self._threshold(rule)
            if window.armed and window.total >= threshold:
                window.armed = False
                params = tuple((k, v) for k, v in self._rulebook[rule].params if k != "volume_btc")
                alerts.append(self._alert(now, rule, accounts, market, (("volume_btc", window.total),
                                          ("threshold_btc", threshold)) + params, fill))
        return alerts

    def observe_position(self, ts_ns: int, account: int, market: str, size_btc_sats: int, margin: int,
                         available: int, contract: str, size_lots: int | None = None) -> list[Alert]:
        """Set ``account``'s position in ``market`` (BTC-equivalent satoshis, signed; 0 when
        closed) and return the large-trader report it raises for the account's owner group,
        if any: the report names the account ("client number"), the contract, the position
        as passed (and ``size_lots`` when given), margin, available funds, the group's gross
        total and the time."""
        now = self._advance(ts_ns)
        old = self._positions.pop((account, market), 0)
        if size_btc_sats:
            self._positions[(account, market)] = size_btc_sats
        gross = self._gross.get(account, 0) + abs(size_btc_sats) - abs(old)
        if gross:
            self._gross[account] = gross
        else:
            self._gross.pop(account, None)
        key = self.group_key(OWNER, account)
        total, threshold = self._position_total(key), self._threshold(LARGE_TRADER)
        if total < threshold:
            self._reported.discard(key)
            return []
        if key in self._reported:
            return []
        self._reported.add(key)
        report = (("account", account), ("contract", contract), ("position_btc", size_btc_sats)) \
            + ((("size_lots", size_lots),) if size_lots is not None else ()) \
            + (("margin", margin), ("available", available), ("group_position_btc", total), ("ts_ns", now))
        return [self._alert(now, LARGE_TRADER, self.members(OWNER, key), market,
                            (("position_btc", total), ("threshold_btc", threshold)), report)]

    # -- reads ----------------------------------------------------------------------------

    def volume_btc(self, rule_id: str, account: int) -> int:
        """The sum in ``rule_id``'s window for ``account`` (its group's, for a group rule),
        as of the latest input."""
        kind = GROUP_KIND.get(rule_id)
        key = self.group_key(kind, account) if kind else account
        window = self._windows[rule_id].get(key)
        return window.total if window else 0

    def position_btc(self, account: int) -> int:
        """The gross position total of ``account``'s owner group (satoshis)."""
        return self._position_total(self.group_key(OWNER, account))

    def view(self) -> dict:
        """Counts for metrics: alerts raised per rule, accounts watched, windows and entries held."""
        watched = set(self._gross)
        for rule in (OVER_TRADING_WARNING, OVER_TRADING_BLOCK):
            watched.update(self._windows[rule])
        return {"alerts_by_rule": dict(self._alerts), "accounts_watched": len(watched),
                "windows": {rule: len(self._windows[rule]) for rule in WINDOW_RULES},
                "entries": sum(len(w.entries) for rule in WINDOW_RULES for w in self._windows[rule].values()),
                "linked_accounts": {kind: len(self._group[kind]) for kind in LINK_KINDS},
                "positions": len(self._positions)}

    # -- state ----------------------------------------------------------------------------

    def canonical(self) -> tuple:
        """All state, in a deterministic order (the expiry queues are derived from it)."""
        windows = tuple((rule, tuple((key, w.armed, tuple(w.entries))
                                     for key, w in sorted(self._windows[rule].items())))
                        for rule in WINDOW_RULES)
        groups = tuple((kind, tuple(sorted(self._members[kind].values()))) for kind in LINK_KINDS)
        return (self._clock_ns, windows, groups, tuple(sorted(self._positions.items())),
                tuple(sorted(self._reported)), tuple(self._alerts.items()))

    def state_hash(self) -> str:
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    def snapshot(self) -> dict:
        """The state as plain JSON-able data (``restore`` reads it back)."""
        clock, windows, groups, positions, reported, alerts = self.canonical()
        return {"version": SNAPSHOT_VERSION, "clock_ns": clock,
                "windows": {rule: [[key, armed, [list(e) for e in entries]] for key, armed, entries in held]
                            for rule, held in windows},
                "groups": {kind: [list(m) for m in held] for kind, held in groups},
                "positions": [[account, market, size] for (account, market), size in positions],
                "reported": list(reported), "alerts_by_rule": dict(alerts)}

    def restore(self, data: dict) -> None:
        """Replace the state by a ``snapshot``'s; the rulebook in force stays and applies
        (as by ``set_rulebook``) if it differs from the one the snapshot was taken under."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"surveillance snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}")
        self.__init__(self._rulebook)
        self._clock_ns = data["clock_ns"]
        for kind, groups in data["groups"].items():
            for members in groups:
                members = tuple(members)
                self._members[kind][members[0]] = members
                self._group[kind].update(dict.fromkeys(members, members[0]))
        for rule, held in data["windows"].items():
            refs = []
            for key, armed, entries in held:
                self._windows[rule][key] = _Window(map(tuple, entries), armed)
                refs.extend((ts, key) for ts, _ in entries)
            self._queues[rule].extend(sorted(refs))
        for account, market, size in data["positions"]:
            self._positions[(account, market)] = size
            self._gross[account] = self._gross.get(account, 0) + abs(size)
        self._reported = set(data["reported"])
        self._alerts.update(data["alerts_by_rule"])
        self.set_rulebook(self._rulebook)          # a no-op unless the rulebook changed since
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise AssertionError if the state is inconsistent."""
        for rule in WINDOW_RULES:
            cutoff, threshold = self._clock_ns - self._window_ns(rule), self._threshold(rule)
            kind = GROUP_KIND.get(rule)
            for key, window in self._windows[rule].items():
                times = [ts for ts, _ in window.entries]
                assert window.entries and times == sorted(times) and times[0] >= cutoff, (rule, key)
                assert window.total == sum(a for _, a in window.entries), (rule, key)
                assert window.armed or window.total >= threshold, (rule, key)
                assert kind is None or self.group_key(kind, key) == key, (rule, key)
        for kind in LINK_KINDS:
            for key, members in self._members[kind].items():
                assert len(members) > 1 and members[0] == key and list(members) == sorted(set(members))
                assert all(self._group[kind][m] == key for m in members)
            assert len(self._group[kind]) == sum(len(m) for m in self._members[kind].values())
        gross = {}
        for (account, _), size in self._positions.items():
            assert size != 0
            gross[account] = gross.get(account, 0) + abs(size)
        assert gross == self._gross
        threshold = self._threshold(LARGE_TRADER)
        assert all(self.group_key(OWNER, k) == k and self._position_total(k) >= threshold for k in self._reported)

    # -- internals ------------------------------------------------------------------------

    def _threshold(self, rule: str) -> int:
        return self._rulebook[rule]["position_btc" if rule == LARGE_TRADER else "volume_btc"]

    def _window_ns(self, rule: str) -> int:
        return self._rulebook[rule]["window_s"] * NS_PER_S

    def _position_total(self, key: int) -> int:
        return sum(self._gross.get(account, 0) for account in self.members(OWNER, key))

    def _advance(self, ts_ns: int) -> int:
        self._clock_ns = max(self._clock_ns, ts_ns)
        self._sweep(self._clock_ns)
        return self._clock_ns

    def _sweep(self, now: int) -> None:
        """Drop every window entry older than its window at ``now``; re-arm what falls below."""
        for rule in WINDOW_RULES:
            cutoff, threshold, queue = now - self._window_ns(rule), self._threshold(rule), self._queues[rule]
            windows, kind = self._windows[rule], GROUP_KIND.get(rule)
            while queue and queue[0][0] < cutoff:
                _, ref = queue.popleft()
                key = self.group_key(kind, ref) if kind else ref
                window = windows.get(key)
                if window is None:
                    continue                       # already expired through another reference
                while window.entries and window.entries[0][0] < cutoff:
                    window.total -= window.entries.popleft()[1]
                if not window.entries:
                    del windows[key]               # empty: as if new (armed)
                elif window.total < threshold:
                    window.armed = True

    def _merge_windows(self, rule: str, key_a: int, key_b: int, key: int) -> None:
        windows = self._windows[rule]
        held = [w for w in (windows.pop(key_a, None), windows.pop(key_b, None)) if w is not None]
        if not held:
            return
        entries = merge(*(w.entries for w in held), key=lambda entry: entry[0])
        window = windows[key] = _Window(entries, all(w.armed for w in held))
        window.armed = window.armed or window.total < self._threshold(rule)

    def _alert(self, now: int, rule: str, accounts: tuple, market: str, figures: tuple, report: tuple) -> Alert:
        self._alerts[rule] += 1
        return Alert(now, rule, self._rulebook[rule].action, tuple(accounts), market, figures, report)
