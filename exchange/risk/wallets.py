"""Hot and cold wallet balances per asset (rulebook 4.4.1, 4.4.4; seed 003).

Deposits land in the hot wallet and the part of a deposit that takes the hot
wallet over its ceiling is swept to cold at once (``deposit`` returns the sweep;
``sweep`` moves any other excess, e.g. what a refill left over). Withdrawals are
paid from hot only; when hot is short the payment is refused (HOT_WALLET_SHORT)
and waits for a refill: ``request_refill`` reserves the amount in cold and
``approve_refill`` (an operator: the cold keys are multi-signature, 4.4.4) moves
it to hot. A refill is not capped by the ceiling: it serves a payment, and a
deposit never sweeps away what was in hot before it.

Invariant, checked by ``check_invariants``: hot + cold == deposits - payments,
per asset; ``reconcile`` compares hot + cold with what the ledger says the
customers hold and lists every difference. Pure; integers in minor units.
"""
from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import NamedTuple

FORMAT = 1
INT64_MAX = 2**63 - 1
NAME_MAX = 32


class WalletReason(IntEnum):
    """Why a wallet command was refused; it changed nothing. Numbers are never reused."""
    UNKNOWN_ASSET = 100               # no hot ceiling configured for the asset
    NON_POSITIVE_AMOUNT = 101
    VALUE_OUT_OF_RANGE = 102          # beyond signed 64 bits
    INVALID_OPERATOR = 103            # not a str of 1..32 characters
    UNKNOWN_REFILL = 104              # no pending refill with that id (approved and cancelled ones are gone)
    TOO_MANY_REFILLS = 105            # refills_max refills pending
    HOT_WALLET_SHORT = 200            # pay: the hot wallet holds less: refill it first
    COLD_WALLET_SHORT = 201           # request_refill: cold holds less than asked, less refills pending


class Refill(NamedTuple):
    """A cold-to-hot transfer waiting for an operator."""
    refill_id: int
    asset: str
    amount: int


class RefillRequested(NamedTuple):
    reason: WalletReason | None
    refill_id: int | None


class Discrepancy(NamedTuple):
    """An asset whose wallets (hot + cold) differ from the ledger's customer total."""
    asset: str
    wallets: int
    ledger: int
    difference: int                   # wallets - ledger: > 0 surplus, < 0 shortfall


class Wallets:
    """The exchange's hot and cold wallet balances and pending refills."""

    def __init__(self, hot_ceiling: dict[str, int], refills_max: int = 1_000):
        if not all(type(v) is int and 0 <= v <= INT64_MAX for v in hot_ceiling.values()):
            raise ValueError("hot ceilings must be ints in 0..2**63-1")
        self.hot_ceiling = dict(hot_ceiling)
        self.refills_max = refills_max
        self.hot = {asset: 0 for asset in hot_ceiling}
        self.cold = {asset: 0 for asset in hot_ceiling}
        self.deposited = {asset: 0 for asset in hot_ceiling}
        self.paid = {asset: 0 for asset in hot_ceiling}
        self.refills: dict[int, Refill] = {}
        self.next_refill = 1
        self.approvals: list[tuple[int, str]] = []    # (refill id, operator), the last refills_max

    def deposit(self, asset: str, amount: int) -> int:
        """A credited deposit lands in hot; the part above the ceiling goes to cold. Returns
        the amount swept. A deposit has happened on chain, so a wrong one (unknown asset, not
        positive, beyond 64 bits) is a caller's bug: ValueError."""
        if self._check(asset, amount) is not None or self.deposited[asset] + amount > INT64_MAX:
            raise ValueError(f"cannot take a deposit of {amount!r} {asset!r}")
        room = max(0, self.hot_ceiling[asset] - self.hot[asset])
        swept = max(0, amount - room)
        self.hot[asset] += amount - swept
        self.cold[asset] += swept
        self.deposited[asset] += amount
        return swept

    def sweep(self, asset: str) -> int:
        """Move hot's excess above its ceiling to cold; the amount moved (0 if none or unknown)."""
        excess = max(0, self.hot.get(asset, 0) - self.hot_ceiling.get(asset, 0))
        if excess:
            self.hot[asset] -= excess
            self.cold[asset] += excess
        return excess

    def pay(self, asset: str, amount: int) -> WalletReason | None:
        """Pay a withdrawal from hot. Refused: UNKNOWN_ASSET, NON_POSITIVE_AMOUNT,
        VALUE_OUT_OF_RANGE, HOT_WALLET_SHORT."""
        refused = self._check(asset, amount)
        if refused is None and self.hot[asset] < amount:
            refused = WalletReason.HOT_WALLET_SHORT
        if refused is None:
            self.hot[asset] -= amount
            self.paid[asset] += amount
        return refused

    def request_refill(self, asset: str, amount: int) -> RefillRequested:
        """Ask to move ``amount`` from cold to hot; it is reserved in cold until approved or
        cancelled. Refused: UNKNOWN_ASSET, NON_POSITIVE_AMOUNT, VALUE_OUT_OF_RANGE,
        TOO_MANY_REFILLS, COLD_WALLET_SHORT."""
        refused = self._check(asset, amount)
        if refused is None and len(self.refills) >= self.refills_max:
            refused = WalletReason.TOO_MANY_REFILLS
        if refused is None and self.cold[asset] - self.reserved(asset) < amount:
            refused = WalletReason.COLD_WALLET_SHORT
        if refused is not None:
            return RefillRequested(refused, None)
        refill = Refill(self.next_refill, asset, amount)
        self.refills[refill.refill_id] = refill
        self.next_refill += 1
        return RefillRequested(None, refill.refill_id)

    def approve_refill(self, refill_id: int, operator: str) -> WalletReason | None:
        """An operator signs the transfer: the amount moves from cold to hot. Refused:
        UNKNOWN_REFILL, INVALID_OPERATOR."""
        refused = self._refill(refill_id, operator)
        if refused is None:
            refill = self.refills.pop(refill_id)
            self.cold[refill.asset] -= refill.amount
            self.hot[refill.asset] += refill.amount
            self.approvals = (self.approvals + [(refill_id, operator)])[-self.refills_max:]
        return refused

    def cancel_refill(self, refill_id: int, operator: str) -> WalletReason | None:
        """Drop a pending refill, freeing its reservation. Refused: UNKNOWN_REFILL, INVALID_OPERATOR."""
        refused = self._refill(refill_id, operator)
        if refused is None:
            del self.refills[refill_id]
        return refused

    def reserved(self, asset: str) -> int:
        """What pending refills of ``asset`` have reserved in cold."""
        return sum(r.amount for r in self.refills.values() if r.asset == asset)

    def reconcile(self, ledger_total_by_asset: dict[str, int]) -> list[Discrepancy]:
        """Every asset (of either side, by name) whose hot + cold differs from the ledger's
        total of customer deposits net of paid withdrawals; empty when they agree."""
        found = []
        for asset in sorted(set(self.hot) | set(ledger_total_by_asset)):
            wallets = self.hot.get(asset, 0) + self.cold.get(asset, 0)
            ledger = ledger_total_by_asset.get(asset, 0)
            if wallets != ledger:
                found.append(Discrepancy(asset, wallets, ledger, wallets - ledger))
        return found

    # ---- self-checks and plain data --------------------------------------------------------
    def check_invariants(self) -> None:
        for asset in self.hot_ceiling:
            assert self.hot[asset] >= 0 and self.cold[asset] >= 0, f"{asset}: a negative wallet"
            assert self.hot[asset] + self.cold[asset] == self.deposited[asset] - self.paid[asset], \
                f"{asset}: hot + cold is not deposits less payments"
            assert self.reserved(asset) <= self.cold[asset], f"{asset}: refills reserve more than cold holds"
        assert len(self.refills) <= self.refills_max and all(r < self.next_refill for r in self.refills)

    def canonical(self) -> tuple:
        return (tuple(sorted(self.hot_ceiling.items())), tuple(sorted(self.hot.items())),
                tuple(sorted(self.cold.items())), tuple(sorted(self.deposited.items())),
                tuple(sorted(self.paid.items())), tuple(tuple(r) for _, r in sorted(self.refills.items())),
                self.next_refill, tuple(self.approvals))

    def state_hash(self) -> str:
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    def snapshot(self) -> dict:
        return {"format": FORMAT, "hot": dict(sorted(self.hot.items())), "cold": dict(sorted(self.cold.items())),
                "deposited": dict(sorted(self.deposited.items())), "paid": dict(sorted(self.paid.items())),
                "refills": [list(r) for _, r in sorted(self.refills.items())], "next_refill": self.next_refill,
                "approvals": [list(a) for a in self.approvals]}

    @classmethod
    def restore(cls, state: dict, hot_ceiling: dict[str, int], refills_max: int = 1_000) -> "Wallets":
        """Wallets from ``snapshot``'s output under the ceilings in force; ValueError for
        another format or an asset the ceilings do not name."""
        if state.get("format") != FORMAT:
            raise ValueError(f"wallets snapshot format {state.get('format')!r}, expected {FORMAT}")
        unknown = sorted(set(state["hot"]) - set(hot_ceiling))
        if unknown:
            raise ValueError(f"wallets snapshot holds assets without a ceiling: {unknown}")
        wallets = cls(hot_ceiling, refills_max)
        for name in ("hot", "cold", "deposited", "paid"):
            getattr(wallets, name).update(state[name])
        wallets.refills = {r[0]: Refill(*r) for r in state["refills"]}
        wallets.next_refill = state["next_refill"]
        wallets.approvals = [tuple(a) for a in state["approvals"]]
        wallets.check_invariants()
        return wallets

    # ---- helpers ---------------------------------------------------------------------------
    def _check(self, asset, amount) -> WalletReason | None:
        if asset not in self.hot_ceiling:
            return WalletReason.UNKNOWN_ASSET
        if type(amount) is not int or amount <= 0:
            return WalletReason.NON_POSITIVE_AMOUNT
        if amount > INT64_MAX:
            return WalletReason.VALUE_OUT_OF_RANGE
        return None

    def _refill(self, refill_id, operator) -> WalletReason | None:
        if refill_id not in self.refills:
            return WalletReason.UNKNOWN_REFILL
        if type(operator) is not str or not 0 < len(operator) <= NAME_MAX:
            return WalletReason.INVALID_OPERATOR
        return None
