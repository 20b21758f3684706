"""The perpetual insurance fund: an append-only, hash-chained ledger anyone can verify
(rulebook 4.4.5; seed 002).

Each market has its own fund. Money moves only by typed entries:

- ``TOP_UP``: an operator adds capital (the seed capital is one);
- ``LIQUIDATION_SURPLUS``: a liquidation filled better than the bankruptcy
  price pays the difference in;
- ``BANKRUPTCY_LOSS``: one filled worse is paid out of the fund (negative);
- ``FEE_SHARE``: a market's share of its trading fees, swept from a shard
  (``exchange.perp.fees``); details: the ``shard`` and ``through``, all that
  shard has moved for the market so far, so each entry's amount is its
  ``through`` less the one before it (``verify`` checks);
- ``ADL_START`` / ``ADL_END``: no money; the trigger values and the plan's
  inputs and amounts, so every deleveraging is on the record;
- ``COMPENSATION``: an operator pays a harmed account out of the fund instead
  of rolling trades back (``exchange.perp.compensation``); details: the
  ``account``, its ``shard``, the payment's number ``seq`` among the fund's
  payments to that shard from that market and ``through``, all of them
  together (``verify`` checks both follow on), the ``operator`` and ``reason``.

Every entry carries its number, kind, market, signed amount, ``ts_ns``,
details (key/value pairs of ints and strings) and the digest of the entry
before it; its own digest is SHA-256 over the previous digest and the
entry's canonical bytes. ``verify`` recomputes the chain and the balances
from the entries alone and lists every mismatch, so a reader needs nothing
but the entries (and the published head) to check the fund.

A draw is limited to the market's cap (``max_draw_ppm``) of its balance per bankruptcy
(``payable``): one bankruptcy can never empty the fund, and what it cannot
pay goes to auto-deleveraging. A balance never goes negative. ``drawdown_ppm``
is how far the balance is below its highest over a window (the liquidator's
ADL trigger, ``adl_drawdown`` in the rules; published in ``view``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import IntEnum

from exchange.core.money import PPM

GENESIS = "0" * 64


class EntryKind(IntEnum):
    TOP_UP = 1
    LIQUIDATION_SURPLUS = 2
    BANKRUPTCY_LOSS = 3
    FEE_SHARE = 4
    ADL_START = 5
    ADL_END = 6
    COMPENSATION = 7


SIGNS = {EntryKind.TOP_UP: 1, EntryKind.LIQUIDATION_SURPLUS: 1, EntryKind.FEE_SHARE: 1,
         EntryKind.BANKRUPTCY_LOSS: -1, EntryKind.ADL_START: 0, EntryKind.ADL_END: 0,
         EntryKind.COMPENSATION: -1}
COMPENSATION_DETAILS = {"account", "shard", "seq", "through", "operator", "reason"}


@dataclass(frozen=True, slots=True)
class FundEntry:
    n: int
    kind: EntryKind
    market: str
    amount: int                       # signed: > 0 into the fund, < 0 out of it
    ts_ns: int
    details: tuple                    # ((key, value), ...): ints and strings
    prev: str
    digest: str

    def to_plain(self) -> list:
        return [self.n, int(self.kind), self.market, self.amount, self.ts_ns,
                [list(pair) for pair in self.details], self.prev, self.digest]

    @classmethod
    def from_plain(cls, data: list) -> "FundEntry":
        n, kind, market, amount, ts_ns, details, prev, digest = data
        return cls(n, EntryKind(kind), market, amount, ts_ns, tuple(tuple(p) for p in details), prev, digest)


def entry_digest(prev: str, n: int, kind: int, market: str, amount: int, ts_ns: int, details: tuple) -> str:
    body = entry_text(n, kind, market, amount, ts_ns, details)
    return hashlib.sha256(prev.encode() + body.encode()).hexdigest()


def entry_text(n: int, kind: int, market: str, amount: int, ts_ns: int, details) -> str:
    """The text an entry's digest covers after the previous digest (published with it)."""
    return json.dumps([n, int(kind), market, amount, ts_ns, [list(p) for p in details]],
                      separators=(",", ":"), ensure_ascii=True)


class PerpFund:
    """The funds of every perpetual market and their one chain of entries."""

    def __init__(self, markets: list[str], max_draw_ppm: int = 500_000, draw_caps: dict[str, int] | None = None,
                 adl_drawdown: dict[str, tuple[int, int]] | None = None):
        caps = {market: max_draw_ppm for market in markets} | (draw_caps or {})
        if not all(0 < cap <= PPM for cap in caps.values()):
            raise ValueError("max_draw_ppm must be in (0, 1_000_000]")
        self.caps = caps
        self.adl_drawdown = dict(adl_drawdown or {})   # market -> (trigger ppm, window ns): published rules
        self.balances = {market: 0 for market in markets}
        self.entries: list[FundEntry] = []
        self._peaks: dict[str, tuple[int, int]] = {}   # market -> (second, highest balance in the window): a cache
        self.fees_through: dict[tuple[str, int], int] = {}  # (market, shard) -> fee share recorded from it, ever
        self.compensations: dict[tuple[str, int], list[FundEntry]] = {}   # (market, shard) -> its payments, by seq
        self.flows: dict[tuple[str, EntryKind], tuple[int, int]] = {}   # (market, kind) -> (entries, units moved)

    def paid_to(self, market: str, shard: int) -> tuple[int, int]:
        """(number, total) of the last compensation paid from ``market``'s fund to ``shard``."""
        entries = self.compensations.get((market, shard))
        if not entries:
            return 0, 0
        details = dict(entries[-1].details)
        return details["seq"], details["through"]

    @property
    def paid(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(market, shard) -> ``paid_to``: what conservation counts against the shards' credits."""
        return {key: self.paid_to(*key) for key in sorted(self.compensations)}

    def cap(self, market: str) -> int:
        """The most of the market's fund one bankruptcy draws, in ppm of its balance."""
        return self.caps[market]

    @property
    def head(self) -> str:
        return self.entries[-1].digest if self.entries else GENESIS

    def payable(self, market: str, loss: int) -> int:
        """How much of ``loss`` the market's fund pays now: at most its cap of its balance."""
        return min(loss, self.balances[market] * self.caps[market] // PPM)

    def record(self, kind: EntryKind, market: str, amount: int, ts_ns: int, details: tuple = ()) -> FundEntry:
        """Append an entry; the amount's sign must match the kind (zero for ADL records).
        Raises ValueError for a wrong sign, an unknown market or a balance that would go negative."""
        sign = SIGNS[kind]
        if market not in self.balances:
            raise ValueError(f"no fund for market {market!r}")
        if (sign == 0 and amount != 0) or (sign > 0 and amount <= 0) or (sign < 0 and amount >= 0):
            raise ValueError(f"{kind.name} cannot carry an amount of {amount}")
        if self.balances[market] + amount < 0:
            raise ValueError(f"the {market} fund holds {self.balances[market]}, cannot pay {-amount}")
        if kind == EntryKind.FEE_SHARE and not {"shard", "through"} <= dict(details).keys():
            raise ValueError("a FEE_SHARE entry names its shard and through")
        if kind == EntryKind.COMPENSATION:
            paid = dict(details)
            if not COMPENSATION_DETAILS <= paid.keys():
                raise ValueError(f"a COMPENSATION entry names its {', '.join(sorted(COMPENSATION_DETAILS))}")
            seq, through = self.paid_to(market, paid["shard"])
            if (paid["seq"], paid["through"]) != (seq + 1, through - amount):
                raise ValueError("a COMPENSATION entry follows the one before it to its shard")
        n, prev = len(self.entries) + 1, self.head
        entry = FundEntry(n, kind, market, amount, ts_ns, details, prev,
                          entry_digest(prev, n, kind, market, amount, ts_ns, details))
        self.entries.append(entry)
        self.balances[market] += amount
        if kind == EntryKind.FEE_SHARE:
            fee = dict(details)
            self.fees_through[(market, fee["shard"])] = fee["through"]
        elif kind == EntryKind.COMPENSATION:
            self.compensations.setdefault((market, dict(details)["shard"]), []).append(entry)
        count, moved = self.flows.get((market, kind), (0, 0))
        self.flows[(market, kind)] = (count + 1, moved + abs(amount))
        cached = self._peaks.get(market)
        if cached is not None and self.balances[market] > cached[1]:
            self._peaks[market] = (cached[0], self.balances[market])
        return entry

    def drawdown_ppm(self, market: str, ts_ns: int, window_ns: int, pending: int = 0) -> int:
        """How far the market's balance, less ``pending`` (draws promised and not recorded yet),
        is below its highest over the ``window_ns`` before ``ts_ns``, in ppm of that high (0
        for a fund that never held anything). The high is found once a second (a scan of the
        window's entries) and raised as entries come."""
        second = ts_ns // 10**9
        cached = self._peaks.get(market)
        if cached is None or cached[0] != second:
            balance = peak = self.balances[market]
            for entry in reversed(self.entries):
                if entry.market != market:
                    continue
                if entry.ts_ns < ts_ns - window_ns:
                    break
                balance -= entry.amount                 # the balance before this entry
                peak = max(peak, balance)
            cached = self._peaks[market] = (second, peak)
        peak = max(cached[1], self.balances[market])
        return (peak - self.balances[market] + pending) * PPM // peak if peak > 0 else 0

    def replay(self, plain: list) -> FundEntry:
        """Append an entry as stored (``to_plain``), re-recording it: ValueError unless it is the
        next entry and its digest is what its content gives (a journal replayed is checked)."""
        stored = FundEntry.from_plain(plain)
        n, prev = len(self.entries) + 1, self.head
        if (stored.n, stored.prev, stored.digest) != (n, prev, entry_digest(prev, n, stored.kind, stored.market,
                                                                           stored.amount, stored.ts_ns,
                                                                           stored.details)):
            raise ValueError(f"fund entry {stored.n} does not follow the chain")
        return self.record(stored.kind, stored.market, stored.amount, stored.ts_ns, stored.details)

    def view(self) -> dict:
        """What anyone may read: balances, caps, the ADL trigger, the chain's head and length,
        and per market the units each kind of entry moved and the ADL rounds."""
        return {"balances": dict(self.balances), "max_draw_ppm": dict(self.caps),
                "adl_drawdown_ppm": {m: ppm for m, (ppm, _) in sorted(self.adl_drawdown.items())},
                "drawdown_window_s": {m: window // 10**9 for m, (_, window) in sorted(self.adl_drawdown.items())},
                "head": self.head, "entries": len(self.entries),
                "flows": {m: {k.name.lower(): moved for (market, k), (_, moved) in sorted(self.flows.items())
                              if market == m and SIGNS[k]} for m in sorted(self.balances)},
                "adl_rounds": {m: self.flows.get((m, EntryKind.ADL_START), (0, 0))[0] for m in sorted(self.balances)}}

    def check_invariants(self) -> None:
        assert verify([e.to_plain() for e in self.entries], self.balances) == []

    def canonical(self) -> tuple:
        return (tuple(sorted(self.caps.items())), tuple(sorted(self.balances.items())), self.head, len(self.entries))


def verify(entries: list[list], balances: dict[str, int] | None = None, head: str | None = None) -> list[str]:
    """Every problem found recomputing the chain and the balances from ``entries`` (plain
    lists, as published); empty when all is consistent. ``balances`` and ``head``, if
    given, are what the fund claims and are checked against the recomputation."""
    problems: list[str] = []
    computed: dict[str, int] = {market: 0 for market in (balances or {})}
    through: dict[tuple, int] = {}                  # (market, shard) -> the last fee share's cumulative
    paid: dict[tuple, tuple] = {}                   # (market, shard) -> the last compensation's (seq, through)
    prev = GENESIS
    for position, data in enumerate(entries, 1):
        try:
            entry = FundEntry.from_plain(data)
        except (ValueError, TypeError) as exc:
            problems.append(f"entry {position}: unreadable ({exc})")
            break
        if entry.n != position:
            problems.append(f"entry {position}: numbered {entry.n}")
        if entry.prev != prev:
            problems.append(f"entry {position}: does not follow the entry before it")
        if entry.digest != entry_digest(entry.prev, entry.n, entry.kind, entry.market, entry.amount,
                                        entry.ts_ns, entry.details):
            problems.append(f"entry {position}: digest does not match its content")
        sign = SIGNS[entry.kind]
        if (sign == 0 and entry.amount) or sign * entry.amount < 0 or (sign and not entry.amount):
            problems.append(f"entry {position}: {entry.kind.name} with amount {entry.amount}")
        computed[entry.market] = computed.get(entry.market, 0) + entry.amount
        if computed[entry.market] < 0:
            problems.append(f"entry {position}: the {entry.market} fund goes negative")
        if entry.kind == EntryKind.FEE_SHARE:
            fee = dict(entry.details)
            key = (entry.market, fee.get("shard"))
            if fee.get("through") != through.get(key, 0) + entry.amount:
                problems.append(f"entry {position}: a fee share of {entry.amount} does not take shard "
                                f"{fee.get('shard')} from {through.get(key, 0)} to {fee.get('through')}")
            through[key] = fee.get("through")
        elif entry.kind == EntryKind.COMPENSATION:
            details = dict(entry.details)
            key = (entry.market, details.get("shard"))
            seq, total = paid.get(key, (0, 0))
            if (details.get("seq"), details.get("through")) != (seq + 1, total - entry.amount):
                problems.append(f"entry {position}: compensation {details.get('seq')} through "
                                f"{details.get('through')} does not follow {seq} through {total} to shard "
                                f"{details.get('shard')}")
            paid[key] = (details.get("seq"), details.get("through"))
        prev = entry.digest
    if balances is not None:
        for market in sorted(set(computed) | set(balances)):
            if computed.get(market, 0) != balances.get(market, 0):
                problems.append(f"{market}: balance {balances.get(market, 0)} but the entries give "
                                f"{computed.get(market, 0)}")
    if head is not None and head != prev:
        problems.append("the published head is not the last entry's digest")
    return problems
