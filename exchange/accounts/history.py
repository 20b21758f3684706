"""The order and trade history of a shard's accounts (issue 18: ``allOrders``, ``myTrades``,
an order's status after it closed), with their perpetual income and their withdrawals.

Built from the events the shard applies, nothing else: an order enters when it is first
seen live (``OrderAccepted``), follows its fills (``Fill``) and amends (``OrderAmended``)
and ends with its close (``OrderClosed``: FILLED, CANCELED, EXPIRED, EXPIRED_IN_MATCH for
self-trade prevention, REJECTED). Each fill is a trade of each side's account that this
shard holds (``here``): price, quantity, quote amount, the fee paid (negative: a rebate),
whether the account was the buyer and the maker. The same pass hands the perpetual
desk's ``FundingPaid`` and ``PositionChanged`` to ``income`` (``exchange.accounts.income``)
and the cashier's ``WithdrawalUpdated`` to ``withdrawals``
(``exchange.accounts.withdrawal_history``), each bounded by its own limit.

Bounded, newest kept: at most ``orders_max`` orders and ``trades_max`` trades per shard
(``[limits] history_orders_max``, ``history_trades_max``); past it the oldest go first,
whoever they belong to, so an account's history reaches back as far as the shard's
traffic allows (a full archive is the event stream's consumer's job, not the shard's).
A view, not money: it never changes a balance, and the shard's snapshot carries it so a
restart keeps it. Pure: no clock, no I/O.
"""
from __future__ import annotations

from collections import deque

from exchange.core.money import mul_div_floor
from exchange.core.reasons import CloseReason
from exchange.matching.orders import Side
from exchange.accounts.income import Income
from exchange.accounts.withdrawal_history import WithdrawalHistory
from exchange.messages.records import (Fill, FundingPaid, OrderAccepted, OrderAmended, OrderClosed, PositionChanged,
                                       WithdrawalUpdated)

BUY = int(Side.BUY)
STATUS_BY_CLOSE = {CloseReason.FILLED: "FILLED", CloseReason.CANCELLED: "CANCELED",
                   CloseReason.EXPIRED_IOC: "EXPIRED", CloseReason.EXPIRED_STP: "EXPIRED_IN_MATCH",
                   CloseReason.REJECTED: "REJECTED"}
OPEN = ("NEW", "PARTIALLY_FILLED")
ORDER_FIELDS = ("order_id", "account_id", "market", "side", "price", "quantity", "executed", "quote_executed",
                "status", "client_order_id", "time_ns", "update_ns")
TRADE_FIELDS = ("market", "trade_id", "order_id", "account_id", "price", "quantity", "quote_quantity", "fee",
                "time_ns", "is_buyer", "is_maker")


class History:
    """Orders (by id) and trades of the accounts ``here`` says this shard holds."""

    def __init__(self, orders_max: int, trades_max: int, base_scale_of, income_max: int = 100_000,
                 withdrawals_max: int = 100_000):
        self.orders_max, self.trades_max = orders_max, trades_max
        self.income = Income(income_max)
        self.withdrawals = WithdrawalHistory(withdrawals_max)
        self.base_scale_of = base_scale_of          # market name -> its base asset's scale
        self.unit: dict[str, int] = {}              # market name -> a whole base unit (10 ** scale), as met
        self.orders: dict[int, list] = {}           # order id -> ORDER_FIELDS, oldest first
        self.order_ids: deque = deque()             # the same ids, oldest first: trimmed from the left in O(1)
                                                    # (a dict iterated from its start walks its deleted slots)
        self.by_account: dict[int, dict[int, None]] = {}     # account -> its order ids (an ordered set)
        self.trades: dict[int, deque] = {}          # account -> its trades (TRADE_FIELDS), oldest first
        self.trade_owners: deque = deque()          # whose every kept trade is, oldest first

    # ---- what the shard applied --------------------------------------------------------
    def record(self, events: list, here) -> None:
        for event in events:
            kind = type(event)
            if kind is Fill:
                self._fill(event, here)
            elif kind is OrderAccepted:
                self._accepted(event)
            elif kind is OrderClosed:
                order = self.orders.get(event.order_id)
                if order is not None:
                    order[8] = STATUS_BY_CLOSE.get(event.reason, "CANCELED")     # (IntEnum keys: an int finds them)
                    order[11] = event.ts_ns
            elif kind is OrderAmended:
                order = self.orders.get(event.order_id)
                if order is not None:
                    order[4], order[5], order[11] = event.price, order[6] + event.remaining, event.ts_ns
            elif kind is PositionChanged or kind is FundingPaid:
                self.income.record(event)
            elif kind is WithdrawalUpdated:
                self.withdrawals.record(event)
        self._trim()

    def _accepted(self, e: OrderAccepted) -> None:
        if e.order_id in self.orders:
            return
        self.orders[e.order_id] = [e.order_id, e.account_id, e.market, e.side, e.price, e.quantity, 0, 0, "NEW",
                                   e.client_order_id, e.ts_ns, e.ts_ns]
        self.order_ids.append(e.order_id)
        self.by_account.setdefault(e.account_id, {})[e.order_id] = None

    def _fill(self, f: Fill, here) -> None:
        unit = self.unit.get(f.market)
        if unit is None:
            unit = self.unit[f.market] = 10 ** self.base_scale_of(f.market)
        quote = mul_div_floor(f.price, f.quantity, unit)
        taker_buys = f.taker_side == BUY
        if here(f.taker_account):
            self._side(f, f.taker_account, f.taker_order_id, f.taker_fee, quote, taker_buys, False)
        if here(f.maker_account):
            self._side(f, f.maker_account, f.maker_order_id, f.maker_fee, quote, not taker_buys, True)

    def _side(self, f: Fill, account: int, order_id: int, fee: int, quote: int, buyer: bool, maker: bool) -> None:
        trade = [f.market, f.seq, order_id, account, f.price, f.quantity, quote, fee, f.ts_ns, buyer, maker]
        mine = self.trades.get(account)
        if mine is None:
            mine = self.trades[account] = deque()
        mine.append(trade)
        self.trade_owners.append(account)
        order = self.orders.get(order_id)
        if order is not None:
            order[6] += f.quantity
            order[7] += quote
            if order[8] in OPEN:
                order[8] = "FILLED" if order[6] >= order[5] else "PARTIALLY_FILLED"
            order[11] = f.ts_ns

    def _trim(self) -> None:
        while len(self.order_ids) > self.orders_max:
            order_id = self.order_ids.popleft()
            order = self.orders.pop(order_id)
            mine = self.by_account[order[1]]
            del mine[order_id]
            if not mine:
                del self.by_account[order[1]]
        while len(self.trade_owners) > self.trades_max:
            account = self.trade_owners.popleft()
            mine = self.trades[account]
            mine.popleft()
            if not mine:
                del self.trades[account]

    # ---- queries ------------------------------------------------------------------------
    def order(self, account_id: int, order_id: int) -> dict | None:
        order = self.orders.get(order_id)
        return None if order is None or order[1] != account_id else dict(zip(ORDER_FIELDS, order))

    def account_orders(self, account_id: int, market: str, from_order_id: int = 0, limit: int = 500) -> list[dict]:
        """The account's orders in ``market``, oldest first, from ``from_order_id`` on (else the newest ``limit``)."""
        mine = [self.orders[i] for i in self.by_account.get(account_id, ()) if self.orders[i][2] == market]
        chosen = [o for o in mine if o[0] >= from_order_id][:limit] if from_order_id else mine[-limit:]
        return [dict(zip(ORDER_FIELDS, o)) for o in chosen]

    def account_trades(self, account_id: int, market: str, from_trade_id: int = 0, order_id: int = 0,
                       limit: int = 500) -> list[dict]:
        """The account's trades in ``market``, oldest first: of one order (``order_id``), from a trade
        id on, or else the newest ``limit``."""
        mine = [t for t in self.trades.get(account_id, ()) if t[0] == market and (not order_id or t[2] == order_id)]
        chosen = [t for t in mine if t[1] >= from_trade_id][:limit] if from_trade_id else mine[-limit:]
        return [dict(zip(TRADE_FIELDS, t)) for t in chosen]

    # ---- snapshots ----------------------------------------------------------------------
    def state(self) -> dict:
        """Every order, trade, income entry and withdrawal kept, oldest first."""
        kept = {account: iter(trades) for account, trades in self.trades.items()}
        return {"orders": list(self.orders.values()), "trades": [next(kept[a]) for a in self.trade_owners],
                "income": self.income.state(), "withdrawals": self.withdrawals.state()}

    def restore(self, state: dict) -> None:
        self.orders, self.order_ids, self.by_account, self.trades, self.trade_owners = {}, deque(), {}, {}, deque()
        for order in state["orders"]:
            self.orders[order[0]] = order
            self.order_ids.append(order[0])
            self.by_account.setdefault(order[1], {})[order[0]] = None
        for trade in state["trades"]:
            self.trades.setdefault(trade[3], deque()).append(trade)
            self.trade_owners.append(trade[3])
        if "income" in state:                        # (snapshots from before the income and withdrawals)
            self.income.restore(state["income"])
            self.withdrawals.restore(state["withdrawals"])
