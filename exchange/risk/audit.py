"""The audit trail (rulebook 4.6: "風控模塊需要添加操作留痕記錄"): every operator action
and every automatic risk action, hash-chained so that altering, removing or reordering
an entry is detectable.

An ``AuditEntry`` says who (an operator, or the rule engine: ``"auto"``), when
(``ts_ns``), what (the command or the action), on what (``target``: an
account, a market, an asset, a rule), why (the operator's reason, or the
figures that crossed the threshold), the value before and after, and the
rule id. Each entry carries the hash of the one before it (``prev``) and its
own (``hash``: sha256 over its canonical JSON with ``prev``), so the chain's
head hash commits to the whole history; ``verify`` recomputes every hash and
link and names the first entry that does not match.

Each actor that takes risk actions keeps its own chain (a shard its
freezes, restrictions and threshold crossings; a market its modes and
breaker trips) inside its domain state, so the chain is rebuilt by journal
replay and carried by snapshots like everything else, and the same commands
always give the same hashes. ``AuditLog.entries_max`` bounds memory: older
entries leave the log (``dropped`` counts them) but the chain stays
verifiable from the first kept entry's ``prev``, which the log remembers as
its ``base``.
"""
from __future__ import annotations

import hashlib
from collections import deque
from typing import NamedTuple

GENESIS = "0" * 64


class AuditEntry(NamedTuple):
    seq: int
    ts_ns: int
    who: str
    what: str
    target: str
    before: str
    after: str
    why: str
    rule: str
    prev: str
    hash: str

    def view(self) -> dict:
        return self._asdict()


def entry_hash(seq, ts_ns, who, what, target, before, after, why, rule, prev) -> str:
    body = repr((seq, ts_ns, who, what, target, before, after, why, rule, prev)).encode()
    return hashlib.sha256(body).hexdigest()


class AuditLog:
    """One actor's chain of audit entries (see the module docstring)."""

    __slots__ = ("name", "entries", "entries_max", "base", "dropped", "seq")

    def __init__(self, name: str, entries_max: int = 100_000):
        self.name = name                   # whose chain: "shard:0", "market:BTC-USDT"
        self.entries: deque = deque()
        self.entries_max = entries_max
        self.base = GENESIS                # the prev of the first entry kept
        self.dropped = 0
        self.seq = 0

    @property
    def head(self) -> str:
        return self.entries[-1].hash if self.entries else self.base

    def append(self, ts_ns: int, who: str, what: str, target: str, before: str, after: str, why: str,
               rule: str) -> AuditEntry:
        self.seq += 1
        prev = self.head
        entry = AuditEntry(self.seq, ts_ns, who, what, target, before, after, why, rule, prev,
                           entry_hash(self.seq, ts_ns, who, what, target, before, after, why, rule, prev))
        self.entries.append(entry)
        if len(self.entries) > self.entries_max:
            self.base = self.entries.popleft().hash
            self.dropped += 1
        return entry

    def query(self, since_ns: int = 0, until_ns: int | None = None, who: str | None = None,
              target: str | None = None, rule: str | None = None, limit: int = 1_000) -> list[AuditEntry]:
        """Entries in ``[since_ns, until_ns]`` by ``who`` (operator), about ``target`` (an account id
        as text matches its restrictions in any market too) and ``rule``, oldest first."""
        out = []
        for e in self.entries:
            if e.ts_ns < since_ns or (until_ns is not None and e.ts_ns > until_ns):
                continue
            if who is not None and e.who != who or rule is not None and e.rule != rule:
                continue
            if target is not None and e.target != target and not e.target.startswith(f"{target}/"):
                continue
            out.append(e)
            if len(out) >= limit:
                break
        return out

    def canonical(self) -> tuple:
        return (self.seq, self.base, self.dropped, self.head)

    def snapshot(self) -> dict:
        return {"name": self.name, "seq": self.seq, "base": self.base, "dropped": self.dropped,
                "entries": [list(e) for e in self.entries]}

    def restore(self, data: dict) -> None:
        self.seq, self.base, self.dropped = data["seq"], data["base"], data["dropped"]
        self.entries = deque(AuditEntry(*e) for e in data["entries"])


def verify(entries: list, base: str = GENESIS) -> tuple[bool, int | None, str]:
    """Check a chain: every entry's hash recomputed from its fields and every ``prev`` the hash
    before it (the first one's ``base``). Return (ok, the first bad entry's seq or None, why)."""
    prev = base
    last_seq = None
    for raw in entries:
        e = raw if type(raw) is AuditEntry else AuditEntry(*(raw[f] for f in AuditEntry._fields)) \
            if isinstance(raw, dict) else AuditEntry(*raw)
        if e.prev != prev:
            return False, e.seq, "its prev is not the hash of the entry before it (removed or reordered)"
        if entry_hash(*e[:-1]) != e.hash:
            return False, e.seq, "its hash does not match its fields (altered)"
        if last_seq is not None and e.seq != last_seq + 1:
            return False, e.seq, "its sequence number does not follow the one before"
        prev, last_seq = e.hash, e.seq
    return True, None, "ok"
