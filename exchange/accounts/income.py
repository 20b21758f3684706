"""The perpetual income of a shard's accounts (issue 18: ``GET /fapi/v1/income``).

Built from the perpetual desk's events, nothing else, each an amount the account's
perpetual wallet received (> 0) or paid (< 0) in the market's settlement asset:

- ``FUNDING_FEE``: a ``FundingPaid`` (its ``amount`` is what the position paid, so the
  income is its negative), with the rate;
- ``REALIZED_PNL``: a ``PositionChanged`` whose fill closed lots (``realized`` != 0);
- ``COMMISSION``: the same fill's fee (negative income; a maker rebate is positive).

A fill's entries carry its trade id (the fill's seq, as ``myTrades``'). Every entry gets
the shard's next transaction number (``tran_id``), so the same events give the same
numbers after a replay. Bounded, newest kept: at most ``entries_max`` per shard
(``[limits] history_income_max``); past it the oldest go, whoever they belong to. A
view, not money: the wallet holds the money. Pure: no clock, no I/O.
"""
from __future__ import annotations

from enum import IntEnum

from exchange.accounts.kept import KeptInOrder
from exchange.messages.records import FundingPaid


class IncomeKind(IntEnum):
    """What an income entry is (stable numbers; the names are Binance's ``incomeType``)."""
    REALIZED_PNL = 1
    FUNDING_FEE = 2
    COMMISSION = 3


INCOME_FIELDS = ("tran_id", "account_id", "market", "kind", "amount", "ts_ns", "trade_id", "rate")


class Income:
    """The income entries (``INCOME_FIELDS``) of the accounts of one shard."""

    def __init__(self, entries_max: int):
        self.last_id = 0                            # the last transaction number given
        self.kept = KeptInOrder(entries_max, INCOME_FIELDS.index("account_id"))

    @property
    def owners(self):
        """Whose every kept entry is, oldest first."""
        return self.kept.owners

    def record(self, event) -> None:
        """Keep what a ``FundingPaid`` or ``PositionChanged`` paid or brought its account."""
        if type(event) is FundingPaid:
            self._add(event.account_id, event.market, IncomeKind.FUNDING_FEE, -event.amount, event.ts_ns, 0,
                      event.rate)
            return
        if event.realized:
            self._add(event.account_id, event.market, IncomeKind.REALIZED_PNL, event.realized, event.ts_ns,
                      event.seq, 0)
        if event.fee:
            self._add(event.account_id, event.market, IncomeKind.COMMISSION, -event.fee, event.ts_ns, event.seq, 0)

    def _add(self, account: int, market: str, kind: IncomeKind, amount: int, ts_ns: int, trade_id: int,
             rate: int) -> None:
        self.last_id += 1
        self.kept.add([self.last_id, account, market, int(kind), amount, ts_ns, trade_id, rate])

    def account(self, account_id: int, market: str | None = None, kind: IncomeKind | None = None,
                start_ns: int | None = None, end_ns: int | None = None, limit: int = 100) -> list[dict]:
        """The account's entries (of one market, one kind) from ``start_ns`` to ``end_ns`` (both
        inclusive), oldest first: the first ``limit`` from ``start_ns`` if given, else the newest."""
        chosen = [e for e in self.kept.of(account_id)
                  if (market is None or e[2] == market) and (kind is None or e[3] == kind)
                  and (start_ns is None or e[5] >= start_ns) and (end_ns is None or e[5] <= end_ns)]
        if limit <= 0:
            return []
        chosen = chosen[:limit] if start_ns is not None else chosen[-limit:]
        return [dict(zip(INCOME_FIELDS, e)) for e in chosen]

    # ---- snapshots ----------------------------------------------------------------------
    def state(self) -> dict:
        """Every entry kept, oldest first, and the last transaction number."""
        return {"last_id": self.last_id, "entries": self.kept.state()}

    def restore(self, state: dict) -> None:
        self.last_id = state["last_id"]
        self.kept.restore(state["entries"])
