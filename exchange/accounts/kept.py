"""How the account histories keep their rows (``history.py``, ``income.py``,
``withdrawal_history.py``): each row is one account's, at most ``rows_max`` are kept per
shard, and past it the oldest goes first, whoever's it is. Removal from the left is O(1)
(a deque of the order rows came in), never a walk over a dict from its start, which would
pass its deleted slots. Pure: no clock, no I/O.
"""
from __future__ import annotations

from collections import deque


class KeptById:
    """Rows found by their id (``row[0]``), each the account ``row[1]``'s."""

    def __init__(self, rows_max: int):
        self.rows_max = rows_max
        self.rows: dict = {}                                # id -> row, oldest first
        self.ids: deque = deque()                           # the same ids, oldest first
        self.by_account: dict[int, dict] = {}               # account -> its ids (an ordered set)

    def add(self, row: list) -> None:
        self.rows[row[0]] = row
        self.ids.append(row[0])
        self.by_account.setdefault(row[1], {})[row[0]] = None
        while len(self.ids) > self.rows_max:
            oldest = self.rows.pop(self.ids.popleft())
            mine = self.by_account[oldest[1]]
            del mine[oldest[0]]
            if not mine:
                del self.by_account[oldest[1]]

    def get(self, row_id) -> list | None:
        return self.rows.get(row_id)

    def of(self, account_id: int) -> list[list]:
        """The account's rows, oldest first."""
        return [self.rows[i] for i in self.by_account.get(account_id, ())]

    def state(self) -> list[list]:
        return list(self.rows.values())

    def restore(self, rows: list[list]) -> None:
        self.rows, self.ids, self.by_account = {}, deque(), {}
        for row in rows:
            self.add(row)


class KeptInOrder:
    """Rows in the order they came, each the account ``row[account_at]``'s."""

    def __init__(self, rows_max: int, account_at: int):
        self.rows_max, self.account_at = rows_max, account_at
        self.rows: dict[int, deque] = {}                    # account -> its rows, oldest first
        self.owners: deque = deque()                        # whose every kept row is, oldest first

    def add(self, row: list) -> None:
        account = row[self.account_at]
        mine = self.rows.get(account)
        if mine is None:
            mine = self.rows[account] = deque()
        mine.append(row)
        self.owners.append(account)
        if len(self.owners) > self.rows_max:
            oldest = self.owners.popleft()
            theirs = self.rows[oldest]
            theirs.popleft()
            if not theirs:
                del self.rows[oldest]

    def of(self, account_id: int):
        """The account's rows, oldest first."""
        return self.rows.get(account_id, ())

    def state(self) -> list[list]:
        """Every row kept, oldest first."""
        kept = {account: iter(rows) for account, rows in self.rows.items()}
        return [next(kept[a]) for a in self.owners]

    def restore(self, rows: list[list]) -> None:
        self.rows, self.owners = {}, deque()
        for row in rows:
            self.add(row)
