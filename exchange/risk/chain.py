"""Deposits from the chain: what a chain watcher must provide (``ChainWatcher``), a
deterministic simulated chain for tests and simulations (``SimulatedChain``), and the
``DepositTracker`` that credits each deposit exactly once when it has its asset's
confirmations (rulebook 4.4.4, 5.2.2.3; BTC 3-6 confirmations, from config).

The tracker reads the watcher's deposit feed (append-only: a deposit seen stays at
its position) through a cursor, keeps the deposits not yet credited, and on each
``poll`` credits those with enough confirmations, in the order the feed gave them.
A deposit whose transaction vanishes before its count (a double spend, a reorg:
``confirmations`` is None) is dropped and never credited. ``suspend`` stops an
asset's deposits (nothing is credited until ``resume``; they are credited then)
and/or its withdrawals (the caller reads ``withdrawals_suspended`` into the
withdrawal desk's facts): the rulebook's double spend and main-net upgrade (4.4.3,
5.2.2.3). Pure: no clock, no randomness; the simulated chain's withdrawal txids are
hashes of a counter and the inputs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

FORMAT = 1


@dataclass(frozen=True, slots=True)
class ChainDeposit:
    """A transfer to one of the exchange's addresses, as the chain shows it."""
    txid: str
    asset: str
    address: str
    amount: int                         # minor units of asset

    def to_plain(self) -> list:
        return [self.txid, self.asset, self.address, self.amount]


@dataclass(frozen=True, slots=True)
class CreditDeposit:
    """A deposit to credit now, once: the caller maps the address to its account."""
    txid: str
    asset: str
    address: str
    amount: int
    confirmations: int


class ChainWatcher(Protocol):
    """What a real chain watcher (one node client per asset behind it) provides."""

    def new_deposits(self, cursor: int) -> list[ChainDeposit]:
        """The deposits to the exchange's addresses seen after the first ``cursor`` of
        them, in the order seen (the feed is append-only and survives restarts)."""

    def confirmations(self, txid: str) -> int | None:
        """0 while in the mempool, n once n blocks deep; None when unknown or gone (double
        spent, reorganised away)."""

    def broadcast_withdrawal(self, asset: str, address: str, amount: int) -> str:
        """Sign and send a withdrawal from the hot wallet; its txid."""


@dataclass(slots=True)
class _Tx:
    asset: str
    address: str
    amount: int
    block: int | None                  # the height it was mined at, None in the mempool


class SimulatedChain:
    """An in-memory chain per asset: transactions wait in a mempool until ``mine``."""

    def __init__(self) -> None:
        self.heights: dict[str, int] = {}
        self.txs: dict[str, _Tx] = {}
        self.feed: list[ChainDeposit] = []
        self.broadcasts = 0

    def height(self, asset: str) -> int:
        return self.heights.get(asset, 0)

    def submit_deposit(self, asset: str, address: str, amount: int, txid: str) -> None:
        """A customer's transfer to ``address`` enters the mempool; ValueError for a txid
        already used or an amount that is not positive."""
        if txid in self.txs or type(amount) is not int or amount <= 0:
            raise ValueError(f"cannot submit deposit {txid!r} of {amount!r}")
        self.txs[txid] = _Tx(asset, address, amount, None)
        self.heights.setdefault(asset, 0)
        self.feed.append(ChainDeposit(txid, asset, address, amount))

    def mine(self, blocks: int = 1, asset: str | None = None) -> None:
        """Add ``blocks`` blocks to ``asset``'s chain (every asset's when None); the first
        takes in that chain's mempool."""
        for name in ([asset] if asset is not None else sorted(self.heights)):
            for _ in range(blocks):
                self.heights[name] = self.heights.get(name, 0) + 1
                for tx in self.txs.values():
                    if tx.asset == name and tx.block is None:
                        tx.block = self.heights[name]

    def confirmations(self, txid: str) -> int | None:
        tx = self.txs.get(txid)
        if tx is None:
            return None
        return 0 if tx.block is None else self.heights[tx.asset] - tx.block + 1

    def broadcast_withdrawal(self, asset: str, address: str, amount: int) -> str:
        """Send a withdrawal: into the mempool, with a txid hashed from a counter and the inputs."""
        self.broadcasts += 1
        txid = hashlib.sha256(f"w|{self.broadcasts}|{asset}|{address}|{amount}".encode()).hexdigest()
        self.txs[txid] = _Tx(asset, address, amount, None)
        self.heights.setdefault(asset, 0)
        return txid

    def simulate_double_spend(self, txid: str) -> None:
        """The transaction disappears (its inputs were spent elsewhere); KeyError if unknown."""
        del self.txs[txid]

    def new_deposits(self, cursor: int) -> list[ChainDeposit]:
        return self.feed[cursor:]


class DepositTracker:
    """Credits each deposit once, at its asset's confirmation count; holds the suspensions."""

    def __init__(self, watcher: ChainWatcher, required_confirmations: dict[str, int]):
        if not all(type(n) is int and n >= 1 for n in required_confirmations.values()):
            raise ValueError("required confirmations must be ints >= 1")
        self.watcher = watcher
        self.required = dict(required_confirmations)
        self.cursor = 0                                  # feed entries read
        self.pending: dict[str, ChainDeposit] = {}       # txid -> deposit waiting, in feed order
        self.credited: set[str] = set()
        self.dropped: set[str] = set()                   # vanished before their count: never credited
        self.ignored: set[str] = set()                   # an asset without a confirmation count
        self.deposits_stopped: set[str] = set()
        self.withdrawals_stopped: set[str] = set()

    def poll(self) -> list[CreditDeposit]:
        """Read new deposits and return those to credit now, each once in its life, in feed
        order: confirmations >= the asset's count and its deposits not suspended."""
        for deposit in self.watcher.new_deposits(self.cursor):
            self.cursor += 1
            if deposit.txid in self.pending or deposit.txid in self.credited or deposit.txid in self.dropped \
                    or deposit.txid in self.ignored:
                continue
            if deposit.asset not in self.required:
                self.ignored.add(deposit.txid)
                continue
            self.pending[deposit.txid] = deposit
        credits = []
        for txid, deposit in list(self.pending.items()):
            confirmations = self.watcher.confirmations(txid)
            if confirmations is None:
                del self.pending[txid]
                self.dropped.add(txid)
            elif confirmations >= self.required[deposit.asset] and deposit.asset not in self.deposits_stopped:
                del self.pending[txid]
                self.credited.add(txid)
                credits.append(CreditDeposit(txid, deposit.asset, deposit.address, deposit.amount, confirmations))
        return credits

    def suspend(self, asset: str, deposits: bool = True, withdrawals: bool = True) -> None:
        """Stop crediting ``asset``'s deposits and/or mark its withdrawals suspended (5.2.2.3)."""
        if deposits:
            self.deposits_stopped.add(asset)
        if withdrawals:
            self.withdrawals_stopped.add(asset)

    def resume(self, asset: str, deposits: bool = True, withdrawals: bool = True) -> None:
        """Lift a suspension; deposits that reached their count meanwhile are credited at the next poll."""
        if deposits:
            self.deposits_stopped.discard(asset)
        if withdrawals:
            self.withdrawals_stopped.discard(asset)

    def deposits_suspended(self, asset: str) -> bool:
        return asset in self.deposits_stopped

    def withdrawals_suspended(self, asset: str) -> bool:
        return asset in self.withdrawals_stopped

    # ---- self-checks and plain data --------------------------------------------------------
    def check_invariants(self) -> None:
        sets = (set(self.pending), self.credited, self.dropped, self.ignored)
        assert sum(map(len, sets)) == len(set().union(*sets)), "a deposit in two states"
        assert len(set().union(*sets)) <= self.cursor, "more deposits than the feed gave"

    def canonical(self) -> tuple:
        return (self.cursor, tuple(repr(d.to_plain()) for d in self.pending.values()),
                tuple(sorted(self.credited)), tuple(sorted(self.dropped)), tuple(sorted(self.ignored)),
                tuple(sorted(self.deposits_stopped)), tuple(sorted(self.withdrawals_stopped)))

    def state_hash(self) -> str:
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    def snapshot(self) -> dict:
        return {"format": FORMAT, "cursor": self.cursor, "pending": [d.to_plain() for d in self.pending.values()],
                "credited": sorted(self.credited), "dropped": sorted(self.dropped), "ignored": sorted(self.ignored),
                "deposits_suspended": sorted(self.deposits_stopped),
                "withdrawals_suspended": sorted(self.withdrawals_stopped)}

    @classmethod
    def restore(cls, state: dict, watcher: ChainWatcher, required_confirmations: dict[str, int]) -> "DepositTracker":
        """A tracker from ``snapshot``'s output; ValueError for another format."""
        if state.get("format") != FORMAT:
            raise ValueError(f"deposit tracker snapshot format {state.get('format')!r}, expected {FORMAT}")
        tracker = cls(watcher, required_confirmations)
        tracker.cursor = state["cursor"]
        tracker.pending = {p[0]: ChainDeposit(*p) for p in state["pending"]}
        tracker.credited, tracker.dropped = set(state["credited"]), set(state["dropped"])
        tracker.ignored = set(state["ignored"])
        tracker.deposits_stopped = set(state["deposits_suspended"])
        tracker.withdrawals_stopped = set(state["withdrawals_suspended"])
        tracker.check_invariants()
        return tracker
