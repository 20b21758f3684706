"""Withdrawals: the state machine every withdrawal of one account shard goes through,
and the funds it holds (rulebook 4.4.2, 4.4.3, 5.2.2.3, 5.2.2.4; seed 003).

A ``WithdrawalDesk`` owns every withdrawal record of its shard and the high-risk
address blocklist. A withdrawal moves::

    REQUESTED -> CHECKED -> QUEUED (large: operator review) -> APPROVED -> SENT -> CONFIRMED
         \\-> REJECTED        QUEUED, APPROVED -> REJECTED (operator)     APPROVED, SENT -> REJECTED (failed)

REQUESTED and CHECKED are passed inside ``request`` (each record's ``history`` shows
them with their ``ts_ns``); QUEUED, APPROVED and SENT wait for a command; CONFIRMED
and REJECTED are final. A refused request is kept as a REJECTED record with its
reason and rule id: the rulebook wants every blocked application on file
("將提幣申請明細自動登記到系統中").

``request`` runs the rules in this order; every rule is evaluated and every one
that fires is recorded in ``fired``; the first one whose action is stronger than
``alert`` decides:

1. ``R-5.2.2.3-freeze``: the account's withdrawals are frozen or the asset's are
   suspended (double spend, main-net upgrade) -> REJECTED, WITHDRAWALS_FROZEN;
2. ``R-4.4.3-credential-change``: a credential changed less than ``lock_s`` before
   -> REJECTED, CREDENTIAL_CHANGED;
3. ``R-4.4.3-margin-line`` (``MARGIN_RULE``; not a rulebook entry, so always
   enforced unless a rulebook in force names it): the account is below its
   initial margin line -> REJECTED, BELOW_INITIAL_MARGIN;
4. ``R-5.2.2.4-blocklist``: the destination is blocklisted -> REJECTED,
   BLOCKLISTED_DESTINATION, and ``alert`` (the rulebook: refused and alerted);
5. ``R-4.4.2-large-withdrawal``: worth strictly more than ``value_btc`` -> QUEUED
   until ``ts_ns + queue_s``; an operator's ``approve`` is accepted from
   ``review_until_ns`` on ("系統通知 24 小時後，才能進行確認");

otherwise APPROVED at once. A rule whose action is ``none`` is only recorded, one
whose action is ``alert`` is recorded and sets ``alert``; neither stops the
withdrawal.

Funds are held from request to a final state: an accepted request's outcome
carries ``hold`` (the caller holds it in the ledger, having checked the balance
first), a later rejection carries ``release``, a confirmation ``spent``. The desk
keeps ``held[asset]``, always the sum of the amounts of its non-final withdrawals.
A refused command (``refused`` set) changes nothing.

The desk keeps at most ``records_max`` records, in request order: a request to a full
desk first drops the earliest requested final record (a user reads old withdrawals in
the account's history, ``exchange/accounts/withdrawal_history.py``; ids are never
reused), so only a desk whose every record is still open refuses (DESK_FULL).

Pure: time comes in as ``ts_ns``, ids from the caller (positive ints, e.g. a sequence
number).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import NamedTuple

from exchange.risk.rulebook import Action, Rulebook

FORMAT = 1
NS_PER_S = 1_000_000_000
INT64_MAX = 2**63 - 1
NAME_MAX, ADDRESS_MAX, TEXT_MAX = 32, 128, 256

FREEZE_RULE = "R-5.2.2.3-freeze"
CREDENTIAL_RULE = "R-4.4.3-credential-change"
MARGIN_RULE = "R-4.4.3-margin-line"
BLOCKLIST_RULE = "R-5.2.2.4-blocklist"
LARGE_RULE = "R-4.4.2-large-withdrawal"


class WithdrawalState(IntEnum):
    REQUESTED = 1
    CHECKED = 2
    QUEUED = 3
    APPROVED = 4
    SENT = 5
    CONFIRMED = 6
    REJECTED = 7


FINAL = frozenset({WithdrawalState.CONFIRMED, WithdrawalState.REJECTED})


class WithdrawalReason(IntEnum):
    """Why a command was refused (1xx, 2xx: nothing changed) or a withdrawal rejected
    (3xx by a rule at request, 4xx later). Numbers are stable and never reused."""
    # 1xx: the command itself
    INVALID_WITHDRAWAL_ID = 100       # not an int in 1..2**63-1
    DUPLICATE_WITHDRAWAL = 101        # the desk already has a withdrawal with this id
    INVALID_ACCOUNT = 102             # not an int in 1..2**63-1
    INVALID_ASSET = 103               # not a str of 1..32 characters
    NON_POSITIVE_AMOUNT = 104
    VALUE_OUT_OF_RANGE = 105          # an amount, value or timestamp beyond signed 64 bits (or negative)
    INVALID_DESTINATION = 106         # not a str of 1..128 characters
    DESK_FULL = 107                   # records_max records kept, every one still open
    UNKNOWN_WITHDRAWAL = 108
    INVALID_OPERATOR = 109            # not a str of 1..32 characters
    INVALID_TXID = 110                # not a str of 1..128 characters
    NOTE_TOO_LONG = 111               # a reason text longer than 256 characters
    BLOCKLIST_FULL = 112              # blocklist_max addresses blocked already
    # 2xx: the withdrawal is not in a state the command applies to
    ALREADY_FINAL = 200               # confirmed or rejected: nothing changes it
    NOT_QUEUED = 201                  # approve: only a queued withdrawal waits for an approval
    REVIEW_NOT_DUE = 202              # approve: before review_until_ns
    NOT_APPROVED = 203                # mark_sent / fail: the withdrawal still waits for its review
    ALREADY_SENT = 204                # reject / mark_sent: the transaction is out; confirm or fail it
    NOT_SENT = 205                    # confirm: nothing was broadcast yet
    # 3xx: rejected by a rule at request
    WITHDRAWALS_FROZEN = 300          # R-5.2.2.3-freeze: the account's or the asset's withdrawals
    CREDENTIAL_CHANGED = 301          # R-4.4.3-credential-change: within lock_s of a credential change
    BELOW_INITIAL_MARGIN = 302        # R-4.4.3-margin-line
    BLOCKLISTED_DESTINATION = 303     # R-5.2.2.4-blocklist
    # 4xx: rejected later
    OPERATOR_REJECTED = 400
    BROADCAST_FAILED = 401            # the transaction failed or was dropped: the funds return


class Firing(NamedTuple):
    """A rule whose condition held for a withdrawal; ``enforced`` when its action is
    stronger than alert (it refuses or queues)."""
    rule_id: str
    action: Action
    enforced: bool


@dataclass(frozen=True, slots=True)
class WithdrawalFacts:
    """What the caller knows about the account and asset when the request comes."""
    account_frozen_withdrawal: bool = False
    asset_withdrawals_suspended: bool = False
    last_credential_change_ns: int | None = None
    below_initial_margin: bool = False


@dataclass(frozen=True, slots=True)
class Withdrawal:
    withdrawal_id: int
    account: int
    asset: str
    amount: int                       # minor units of asset
    destination: str
    requested_ns: int
    value_btc_sats: int               # its BTC equivalent when requested
    state: WithdrawalState
    reason: WithdrawalReason | None = None     # set when REJECTED
    rule_id: str | None = None                 # the rule that rejected it at request
    review_until_ns: int | None = None         # set when it was QUEUED
    approver: str | None = None
    txid: str | None = None
    note: str | None = None                    # the operator's or the failure's text
    fired: tuple = ()                          # Firing, ... at request
    history: tuple = ()                        # ((ts_ns, state), ...)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def to_plain(self) -> list:
        return [self.withdrawal_id, self.account, self.asset, self.amount, self.destination, self.requested_ns,
                self.value_btc_sats, int(self.state), None if self.reason is None else int(self.reason),
                self.rule_id, self.review_until_ns, self.approver, self.txid, self.note,
                [[f.rule_id, int(f.action), f.enforced] for f in self.fired],
                [[ts, int(state)] for ts, state in self.history]]

    @classmethod
    def from_plain(cls, data: list) -> "Withdrawal":
        (wid, account, asset, amount, destination, requested_ns, value, state, reason, rule_id, review, approver,
         txid, note, fired, history) = data
        return cls(wid, account, asset, amount, destination, requested_ns, value, WithdrawalState(state),
                   None if reason is None else WithdrawalReason(reason), rule_id, review, approver, txid, note,
                   tuple(Firing(r, Action(a), e) for r, a, e in fired),
                   tuple((ts, WithdrawalState(s)) for ts, s in history))


@dataclass(frozen=True, slots=True)
class WithdrawalOutcome:
    """What a command did. ``refused``: the command was not applied and nothing changed
    (``withdrawal`` is then the record as it stands, or None for an unknown id).
    Otherwise ``withdrawal`` is the record after it, and ``hold``/``release``/``spent``
    say what the caller moves in the ledger, in ``withdrawal.asset``."""
    withdrawal_id: int
    refused: WithdrawalReason | None
    withdrawal: Withdrawal | None
    fired: tuple = ()
    alert: bool = False
    hold: int = 0
    release: int = 0
    spent: int = 0

    @property
    def state(self) -> WithdrawalState | None:
        return None if self.withdrawal is None else self.withdrawal.state

    @property
    def reason(self) -> WithdrawalReason | None:
        """The refusal, else the rejection's reason (None for a live or confirmed withdrawal)."""
        return self.refused if self.refused is not None else self.withdrawal.reason

    @property
    def rule_id(self) -> str | None:
        return None if self.refused is not None or self.withdrawal is None else self.withdrawal.rule_id


class WithdrawalDesk:
    """Every withdrawal record of one account shard, the funds they hold and the blocklist."""

    def __init__(self, rulebook: Rulebook, records_max: int = 100_000, blocklist_max: int = 100_000):
        self.rulebook = rulebook                 # the rulebook in force; the caller may swap it at run time
        self.records_max = records_max
        self.blocklist_max = blocklist_max
        self.withdrawals: dict[int, Withdrawal] = {}
        self.held: dict[str, int] = {}           # asset -> sum of non-final amounts (no zero entries)
        self.blocklist: set[str] = set()

    # ---- commands --------------------------------------------------------------------------
    def request(self, ts_ns: int, withdrawal_id: int, account: int, asset: str, amount: int, destination: str,
                value_btc_sats: int, facts: WithdrawalFacts) -> WithdrawalOutcome:
        """Check a withdrawal against the rules (module docstring) and record it: APPROVED or
        QUEUED with ``hold == amount``, or REJECTED by a rule (reason 3xx, ``rule_id``) holding
        nothing. Refused, changing nothing: INVALID_WITHDRAWAL_ID, DUPLICATE_WITHDRAWAL,
        INVALID_ACCOUNT, INVALID_ASSET, NON_POSITIVE_AMOUNT, VALUE_OUT_OF_RANGE,
        INVALID_DESTINATION, DESK_FULL (in that order). A full desk first drops its earliest
        requested final record; DESK_FULL only when every record is still open."""
        refused = self._validate_request(ts_ns, withdrawal_id, account, asset, amount, destination, value_btc_sats)
        dropped = None
        if refused is None and len(self.withdrawals) >= self.records_max:
            dropped = self._oldest_final()
            if dropped is None:
                refused = WithdrawalReason.DESK_FULL
        if refused is not None:
            return WithdrawalOutcome(withdrawal_id, refused, self.withdrawals.get(withdrawal_id)
                                     if type(withdrawal_id) is int else None)
        if dropped is not None:
            del self.withdrawals[dropped]                   # the account's history keeps it
        fired, decided = self._evaluate(ts_ns, destination, value_btc_sats, facts)
        alert = any(f.action == Action.ALERT or (f.rule_id == BLOCKLIST_RULE and f.action > Action.ALERT)
                    for f in fired)
        record = Withdrawal(withdrawal_id, account, asset, amount, destination, ts_ns, value_btc_sats,
                            WithdrawalState.REQUESTED, fired=tuple(fired),
                            history=((ts_ns, WithdrawalState.REQUESTED),))
        if decided is not None:
            rule_id, reason = decided
            record = self._moved(ts_ns, record, WithdrawalState.REJECTED, reason=reason, rule_id=rule_id)
            self.withdrawals[withdrawal_id] = record
            return WithdrawalOutcome(withdrawal_id, None, record, tuple(fired), alert)
        record = self._moved(ts_ns, record, WithdrawalState.CHECKED)
        if any(f.rule_id == LARGE_RULE and f.enforced for f in fired):
            until = min(INT64_MAX, ts_ns + self.rulebook[LARGE_RULE]["queue_s"] * NS_PER_S)
            record = self._moved(ts_ns, record, WithdrawalState.QUEUED, review_until_ns=until)
        else:
            record = self._moved(ts_ns, record, WithdrawalState.APPROVED)
        self.withdrawals[withdrawal_id] = record
        self.held[asset] = self.held.get(asset, 0) + amount
        return WithdrawalOutcome(withdrawal_id, None, record, tuple(fired), alert, hold=amount)

    def approve(self, ts_ns: int, withdrawal_id: int, operator: str) -> WithdrawalOutcome:
        """Approve a queued withdrawal after its review: QUEUED -> APPROVED. Refused:
        UNKNOWN_WITHDRAWAL, INVALID_OPERATOR, ALREADY_FINAL, NOT_QUEUED, REVIEW_NOT_DUE."""
        record, refused = self._find(withdrawal_id)
        refused = refused or _text(operator, NAME_MAX, WithdrawalReason.INVALID_OPERATOR) or self._final(record)
        if refused is None and record.state != WithdrawalState.QUEUED:
            refused = WithdrawalReason.NOT_QUEUED
        if refused is None and ts_ns < record.review_until_ns:
            refused = WithdrawalReason.REVIEW_NOT_DUE
        if refused is not None:
            return WithdrawalOutcome(withdrawal_id, refused, record)
        return self._apply(ts_ns, record, WithdrawalState.APPROVED, approver=operator)

    def reject(self, ts_ns: int, withdrawal_id: int, operator: str, reason: str) -> WithdrawalOutcome:
        """An operator rejects a withdrawal not yet sent: QUEUED or APPROVED -> REJECTED
        (OPERATOR_REJECTED, ``note`` = reason), releasing its funds. Refused:
        UNKNOWN_WITHDRAWAL, INVALID_OPERATOR, NOTE_TOO_LONG, ALREADY_FINAL, ALREADY_SENT."""
        record, refused = self._find(withdrawal_id)
        refused = (refused or _text(operator, NAME_MAX, WithdrawalReason.INVALID_OPERATOR)
                   or _note(reason) or self._final(record))
        if refused is None and record.state == WithdrawalState.SENT:
            refused = WithdrawalReason.ALREADY_SENT
        if refused is not None:
            return WithdrawalOutcome(withdrawal_id, refused, record)
        return self._apply(ts_ns, record, WithdrawalState.REJECTED, reason=WithdrawalReason.OPERATOR_REJECTED,
                           approver=operator, note=reason)

    def mark_sent(self, ts_ns: int, withdrawal_id: int, txid: str) -> WithdrawalOutcome:
        """The transaction was broadcast: APPROVED -> SENT. Refused: UNKNOWN_WITHDRAWAL,
        INVALID_TXID, ALREADY_FINAL, ALREADY_SENT, NOT_APPROVED."""
        record, refused = self._find(withdrawal_id)
        refused = refused or _text(txid, ADDRESS_MAX, WithdrawalReason.INVALID_TXID) or self._final(record)
        if refused is None and record.state == WithdrawalState.SENT:
            refused = WithdrawalReason.ALREADY_SENT
        if refused is None and record.state != WithdrawalState.APPROVED:
            refused = WithdrawalReason.NOT_APPROVED
        if refused is not None:
            return WithdrawalOutcome(withdrawal_id, refused, record)
        return self._apply(ts_ns, record, WithdrawalState.SENT, txid=txid)

    def confirm(self, ts_ns: int, withdrawal_id: int) -> WithdrawalOutcome:
        """The transaction reached its confirmations: SENT -> CONFIRMED, the hold is spent.
        Refused: UNKNOWN_WITHDRAWAL, ALREADY_FINAL, NOT_SENT."""
        record, refused = self._find(withdrawal_id)
        refused = refused or self._final(record)
        if refused is None and record.state != WithdrawalState.SENT:
            refused = WithdrawalReason.NOT_SENT
        if refused is not None:
            return WithdrawalOutcome(withdrawal_id, refused, record)
        return self._apply(ts_ns, record, WithdrawalState.CONFIRMED)

    def fail(self, ts_ns: int, withdrawal_id: int, reason: str) -> WithdrawalOutcome:
        """The broadcast failed or the transaction was dropped: APPROVED or SENT -> REJECTED
        (BROADCAST_FAILED), releasing the funds. Refused: UNKNOWN_WITHDRAWAL, NOTE_TOO_LONG,
        ALREADY_FINAL, NOT_APPROVED (a queued one is rejected by an operator instead)."""
        record, refused = self._find(withdrawal_id)
        refused = refused or _note(reason) or self._final(record)
        if refused is None and record.state not in (WithdrawalState.APPROVED, WithdrawalState.SENT):
            refused = WithdrawalReason.NOT_APPROVED
        if refused is not None:
            return WithdrawalOutcome(withdrawal_id, refused, record)
        return self._apply(ts_ns, record, WithdrawalState.REJECTED, reason=WithdrawalReason.BROADCAST_FAILED,
                           note=reason)

    def block_address(self, address: str) -> WithdrawalReason | None:
        """Put an address on the high-risk blocklist (5.2.2.4); blocking it twice is no
        change. Refused: INVALID_DESTINATION, BLOCKLIST_FULL."""
        refused = _text(address, ADDRESS_MAX, WithdrawalReason.INVALID_DESTINATION)
        if refused is None and address not in self.blocklist and len(self.blocklist) >= self.blocklist_max:
            refused = WithdrawalReason.BLOCKLIST_FULL
        if refused is None:
            self.blocklist.add(address)
        return refused

    def unblock_address(self, address: str) -> None:
        """Take an address off the blocklist (no change if it was not on it)."""
        self.blocklist.discard(address)

    def prune(self, before_ns: int) -> list[Withdrawal]:
        """Drop the final records whose last change is before ``before_ns`` (after the
        caller archived them) and return them, by id. Their ids may then be used again."""
        gone = [w for _, w in sorted(self.withdrawals.items()) if w.final and w.history[-1][0] < before_ns]
        for w in gone:
            del self.withdrawals[w.withdrawal_id]
        return gone

    # ---- views -----------------------------------------------------------------------------
    def get(self, withdrawal_id: int) -> Withdrawal | None:
        return self.withdrawals.get(withdrawal_id)

    def pending(self, account: int | None = None, destination: str | None = None) -> list[Withdrawal]:
        """The non-final withdrawals (optionally of one account or to one address), by id."""
        return [w for _, w in sorted(self.withdrawals.items()) if not w.final
                and (account is None or w.account == account)
                and (destination is None or w.destination == destination)]

    def due(self, ts_ns: int) -> list[Withdrawal]:
        """The queued withdrawals whose review is over at ``ts_ns``, by id."""
        return [w for w in self.pending() if w.state == WithdrawalState.QUEUED and w.review_until_ns <= ts_ns]

    # ---- self-checks and plain data --------------------------------------------------------
    def check_invariants(self) -> None:
        expected: dict[str, int] = {}
        for wid, w in self.withdrawals.items():
            assert wid == w.withdrawal_id and w.amount > 0, f"withdrawal {wid} malformed"
            assert w.history and w.history[-1][1] == w.state, f"withdrawal {wid}: history ends elsewhere"
            assert (w.reason is not None) == (w.state == WithdrawalState.REJECTED), f"withdrawal {wid}: reason"
            assert w.state != WithdrawalState.QUEUED or w.review_until_ns is not None, f"withdrawal {wid}: review"
            assert w.state not in (WithdrawalState.SENT, WithdrawalState.CONFIRMED) or w.txid, f"{wid}: txid"
            if not w.final:
                expected[w.asset] = expected.get(w.asset, 0) + w.amount
        assert expected == self.held, f"held {self.held} but the pending withdrawals hold {expected}"
        assert len(self.withdrawals) <= self.records_max and len(self.blocklist) <= self.blocklist_max

    def canonical(self) -> tuple:
        return (tuple(repr(w.to_plain()) for _, w in sorted(self.withdrawals.items())),
                tuple(sorted(self.blocklist)), tuple(sorted(self.held.items())))

    def state_hash(self) -> str:
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    def snapshot(self) -> dict:
        """Plain JSON-able data (``held`` is derived and recomputed on restore). The records
        stay in request order, which decides which final record a full desk drops."""
        return {"format": FORMAT, "withdrawals": [w.to_plain() for w in self.withdrawals.values()],
                "blocklist": sorted(self.blocklist)}

    @classmethod
    def restore(cls, state: dict, rulebook: Rulebook, records_max: int = 100_000,
                blocklist_max: int = 100_000) -> "WithdrawalDesk":
        """A desk from ``snapshot``'s output; ValueError for another format."""
        if state.get("format") != FORMAT:
            raise ValueError(f"withdrawal desk snapshot format {state.get('format')!r}, expected {FORMAT}")
        desk = cls(rulebook, records_max, blocklist_max)
        for plain in state["withdrawals"]:
            w = Withdrawal.from_plain(plain)
            desk.withdrawals[w.withdrawal_id] = w
            if not w.final:
                desk.held[w.asset] = desk.held.get(w.asset, 0) + w.amount
        desk.blocklist = set(state["blocklist"])
        desk.check_invariants()
        return desk

    # ---- helpers ---------------------------------------------------------------------------
    def _validate_request(self, ts_ns, withdrawal_id, account, asset, amount, destination,
                          value_btc_sats) -> WithdrawalReason | None:
        if not _id(withdrawal_id):
            return WithdrawalReason.INVALID_WITHDRAWAL_ID
        if withdrawal_id in self.withdrawals:
            return WithdrawalReason.DUPLICATE_WITHDRAWAL
        if not _id(account):
            return WithdrawalReason.INVALID_ACCOUNT
        if _text(asset, NAME_MAX, WithdrawalReason.INVALID_ASSET):
            return WithdrawalReason.INVALID_ASSET
        if type(amount) is not int or amount <= 0:
            return WithdrawalReason.NON_POSITIVE_AMOUNT
        if not all(type(v) is int and 0 <= v <= INT64_MAX for v in (ts_ns, value_btc_sats)) \
                or amount + self.held.get(asset, 0) > INT64_MAX:
            return WithdrawalReason.VALUE_OUT_OF_RANGE
        if _text(destination, ADDRESS_MAX, WithdrawalReason.INVALID_DESTINATION):
            return WithdrawalReason.INVALID_DESTINATION
        return None

    def _oldest_final(self) -> int | None:
        """The earliest requested final record's id (the records are kept in request order)."""
        return next((wid for wid, w in self.withdrawals.items() if w.final), None)

    def _evaluate(self, ts_ns: int, destination: str, value_btc_sats: int,
                  facts: WithdrawalFacts) -> tuple[list[Firing], tuple | None]:
        """Every rule that fires, in order, and (rule id, reason) of the first refusing one."""
        changed = facts.last_credential_change_ns
        lock_ns = self.rulebook[CREDENTIAL_RULE]["lock_s"] * NS_PER_S
        checks = (
            (FREEZE_RULE, WithdrawalReason.WITHDRAWALS_FROZEN,
             facts.account_frozen_withdrawal or facts.asset_withdrawals_suspended),
            (CREDENTIAL_RULE, WithdrawalReason.CREDENTIAL_CHANGED, changed is not None and ts_ns - changed < lock_ns),
            (MARGIN_RULE, WithdrawalReason.BELOW_INITIAL_MARGIN, facts.below_initial_margin),
            (BLOCKLIST_RULE, WithdrawalReason.BLOCKLISTED_DESTINATION, destination in self.blocklist),
            (LARGE_RULE, None, value_btc_sats > self.rulebook[LARGE_RULE]["value_btc"]),
        )
        fired, decided = [], None
        for rule_id, reason, holds in checks:
            if not holds:
                continue
            action = self.rulebook.rules[rule_id].action if rule_id in self.rulebook.rules else Action.FREEZE
            firing = Firing(rule_id, action, action > Action.ALERT)
            fired.append(firing)
            if firing.enforced and reason is not None and decided is None:
                decided = (rule_id, reason)
        return fired, decided

    def _find(self, withdrawal_id) -> tuple[Withdrawal | None, WithdrawalReason | None]:
        record = self.withdrawals.get(withdrawal_id) if type(withdrawal_id) is int else None
        return record, None if record is not None else WithdrawalReason.UNKNOWN_WITHDRAWAL

    @staticmethod
    def _final(record: Withdrawal) -> WithdrawalReason | None:
        return WithdrawalReason.ALREADY_FINAL if record.final else None

    @staticmethod
    def _moved(ts_ns: int, record: Withdrawal, state: WithdrawalState, **changes) -> Withdrawal:
        return replace(record, state=state, history=record.history + ((ts_ns, state),), **changes)

    def _apply(self, ts_ns: int, record: Withdrawal, state: WithdrawalState, **changes) -> WithdrawalOutcome:
        """Move a live withdrawal on; a final state gives its hold back (released or spent)."""
        new = self._moved(ts_ns, record, state, **changes)
        self.withdrawals[record.withdrawal_id] = new
        release = spent = 0
        if new.final:
            left = self.held[record.asset] - record.amount
            if left:
                self.held[record.asset] = left
            else:
                del self.held[record.asset]
            release, spent = (record.amount, 0) if state == WithdrawalState.REJECTED else (0, record.amount)
        return WithdrawalOutcome(record.withdrawal_id, None, new, release=release, spent=spent)


def _id(value) -> bool:
    return type(value) is int and 0 < value <= INT64_MAX


def _text(value, most: int, reason: WithdrawalReason) -> WithdrawalReason | None:
    return None if type(value) is str and 0 < len(value) <= most else reason


def _note(value) -> WithdrawalReason | None:
    return None if type(value) is str and len(value) <= TEXT_MAX else WithdrawalReason.NOTE_TOO_LONG
