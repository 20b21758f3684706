"""The withdrawals of a shard's accounts, from request to their end (issue 18:
``GET /sapi/v1/capital/withdraw/history``).

Built from the cashier's ``WithdrawalUpdated`` events, nothing else
(``exchange/risk/cashier.py``; the states are ``exchange.risk.withdrawals.WithdrawalState``):
a withdrawal enters with its first update (the request: approved, queued for review, or
rejected by a rule and kept on file), follows every move (approved, sent with its
transaction, confirmed, rejected by an operator, failed) and keeps its request time, the
time of its last move, until when it was under review (a large one) and, once confirmed
or rejected, the time it ended. The request id
is kept too: the gateway's ``withdrawOrderId`` when the client chose it.

Unlike the cashier's desk, which answers for the funds and keeps what it must
(``WithdrawalDesk``), this is the account's record of what happened. Bounded, newest
kept: at most ``withdrawals_max`` per shard (``[limits] history_withdrawals_max``);
past it the oldest requests go, whoever they belong to. A view, not money; the shard's
snapshot carries it. Pure: no clock, no I/O.
"""
from __future__ import annotations

from exchange.accounts.kept import KeptById
from exchange.messages.codec import hashable
from exchange.messages.records import WithdrawalUpdated

FINAL = frozenset({6, 7})     # WithdrawalState.CONFIRMED, REJECTED (``accounts`` imports no product)

WITHDRAWAL_FIELDS = ("withdrawal_id", "account_id", "asset", "amount", "destination", "state", "reason", "rule",
                     "txid", "request_id", "requested_ns", "updated_ns", "final_ns", "review_until_ns")


class WithdrawalHistory:
    """Withdrawals (``WITHDRAWAL_FIELDS``, by id) of the accounts of one shard."""

    def __init__(self, withdrawals_max: int):
        self.kept = KeptById(withdrawals_max)

    @property
    def withdrawals(self) -> dict[int, list]:
        """Id -> its record, oldest request first."""
        return self.kept.rows

    @property
    def by_account(self) -> dict[int, dict]:
        """Account -> its withdrawal ids (an ordered set)."""
        return self.kept.by_account

    def record(self, e: WithdrawalUpdated) -> None:
        """A withdrawal requested or moved on."""
        final_ns = e.ts_ns if e.state in FINAL else 0
        kept = self.kept.get(e.withdrawal)
        if kept is not None:
            kept[5:9] = [e.state, e.reason, e.rule or kept[7], e.txid or kept[8]]
            kept[11:14] = [e.ts_ns, final_ns, e.review_until_ns or kept[13]]
            return
        self.kept.add([e.withdrawal, e.account_id, e.asset, e.amount, e.destination, e.state, e.reason, e.rule,
                       e.txid, e.request_id, e.ts_ns, e.ts_ns, final_ns, e.review_until_ns])

    def account(self, account_id: int, asset: str | None = None) -> list[dict]:
        """The account's withdrawals (of one asset), oldest request first."""
        return [dict(zip(WITHDRAWAL_FIELDS, w)) for w in self.kept.of(account_id) if asset is None or w[2] == asset]

    # ---- snapshots ----------------------------------------------------------------------
    def state(self) -> list[list]:
        """Every withdrawal kept, oldest request first."""
        return self.kept.state()

    def restore(self, state: list) -> None:
        for kept in state:
            kept[9] = hashable(kept[9])                 # a tuple request id comes back a tuple
        self.kept.restore(state)
