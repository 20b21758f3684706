"""The order and trade history of a shard's accounts (issue 18: ``allOrders``, ``myTrades``,
an order's status after it closed), with their perpetual income and their withdrawals.

Built from the events the shard applies, nothing else: an order enters when it is first
seen live (``OrderAccepted``, with its type and time in force as placed), follows its
fills (``Fill``) and amends (``OrderAmended``) and ends with its close (``OrderClosed``:
FILLED, CANCELED, EXPIRED, EXPIRED_IN_MATCH for self-trade prevention, REJECTED). Each
fill is a trade of each side's account that this shard holds (``here``): price,
quantity, quote amount, the fee paid (negative: a rebate), whether the account was the
buyer and the maker. The same pass hands the perpetual
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


from exchange.core.money import mul_div_floor
from exchange.core.reasons import CloseReason
from exchange.matching.orders import Side
from exchange.accounts.income import Income
from exchange.accounts.kept import KeptById, KeptInOrder
from exchange.accounts.withdrawal_history import WithdrawalHistory
from exchange.messages.records import (Fill, FundingPaid, OrderAccepted, OrderAmended, OrderClosed, PositionChanged,
                                       WithdrawalUpdated)

BUY = int(Side.BUY)
STATUS_BY_CLOSE = {CloseReason.FILLED: "FILLED", CloseReason.CANCELLED: "CANCELED",
                   CloseReason.EXPIRED_IOC: "EXPIRED", CloseReason.EXPIRED_STP: "EXPIRED_IN_MATCH",
                   CloseReason.REJECTED: "REJECTED"}
OPEN = ("NEW", "PARTIALLY_FILLED")
ORDER_FIELDS = ("order_id", "account_id", "market", "side", "price", "quantity", "executed", "quote_executed",
                "status", "client_order_id", "time_ns", "update_ns", "order_type", "tif")
OLD_ORDER_ROW = len(ORDER_FIELDS) - 2           # a row from before orders kept their type and time in force
TRADE_FIELDS = ("market", "trade_id", "order_id", "account_id", "price", "quantity", "quote_quantity", "fee",
                "time_ns", "is_buyer", "is_maker")


class History:
    """Orders (by id) and trades of the accounts ``here`` says this shard holds."""

    def __init__(self, orders_max: int, trades_max: int, base_scale_of, income_max: int = 100_000,
                 withdrawals_max: int = 100_000):
        self.income = Income(income_max)
        self.withdrawals = WithdrawalHistory(withdrawals_max)
        self.base_scale_of = base_scale_of          # market name -> its base asset's scale
        self.unit: dict[str, int] = {}              # market name -> a whole base unit (10 ** scale), as met
        self.kept_orders = KeptById(orders_max)     # ORDER_FIELDS by order id
        self.kept_trades = KeptInOrder(trades_max, TRADE_FIELDS.index("account_id"))

    @property
    def orders(self) -> dict[int, list]:
        """Order id -> ORDER_FIELDS, oldest first."""
        return self.kept_orders.rows

    @property
    def by_account(self) -> dict[int, dict]:
        """Account -> its order ids (an ordered set)."""
        return self.kept_orders.by_account

    # ---- what the shard applied --------------------------------------------------------
    def record(self, events: list, here) -> None:
        for event in events:
            kind = type(event)
            if kind is Fill:
                self._fill(event, here)
            elif kind is OrderAccepted:
                self._accepted(event)
            elif kind is OrderClosed:
                order = self.kept_orders.get(event.order_id)
                if order is not None:
                    order[8] = STATUS_BY_CLOSE.get(event.reason, "CANCELED")     # (IntEnum keys: an int finds them)
                    order[11] = event.ts_ns
            elif kind is OrderAmended:
                order = self.kept_orders.get(event.order_id)
                if order is not None:
                    order[4], order[5], order[11] = event.price, order[6] + event.remaining, event.ts_ns
            elif kind is PositionChanged or kind is FundingPaid:
                self.income.record(event)
            elif kind is WithdrawalUpdated:
                self.withdrawals.record(event)

    def _accepted(self, e: OrderAccepted) -> None:
        if self.kept_orders.get(e.order_id) is not None:
            return
        self.kept_orders.add([e.order_id, e.account_id, e.market, e.side, e.price, e.quantity, 0, 0, "NEW",
                              e.client_order_id, e.ts_ns, e.ts_ns, e.order_type, e.tif])

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
        self.kept_trades.add([f.market, f.seq, order_id, account, f.price, f.quantity, quote, fee, f.ts_ns, buyer,
                              maker])
        order = self.kept_orders.get(order_id)
        if order is not None:
            order[6] += f.quantity
            order[7] += quote
            if order[8] in OPEN:
                order[8] = "FILLED" if order[6] >= order[5] else "PARTIALLY_FILLED"
            order[11] = f.ts_ns

    # ---- queries ------------------------------------------------------------------------
    def order(self, account_id: int, order_id: int) -> dict | None:
        order = self.kept_orders.get(order_id)
        return None if order is None or order[1] != account_id else dict(zip(ORDER_FIELDS, order))

    def account_orders(self, account_id: int, market: str, from_order_id: int = 0, limit: int = 500) -> list[dict]:
        """The account's orders in ``market``, oldest first, from ``from_order_id`` on (else the newest ``limit``)."""
        mine = [o for o in self.kept_orders.of(account_id) if o[2] == market]
        chosen = [o for o in mine if o[0] >= from_order_id][:limit] if from_order_id else mine[-limit:]
        return [dict(zip(ORDER_FIELDS, o)) for o in chosen]

    def account_trades(self, account_id: int, market: str, from_trade_id: int = 0, order_id: int = 0,
                       limit: int = 500) -> list[dict]:
        """The account's trades in ``market``, oldest first: of one order (``order_id``), from a trade
        id on, or else the newest ``limit``."""
        mine = [t for t in self.kept_trades.of(account_id) if t[0] == market and (not order_id or t[2] == order_id)]
        chosen = [t for t in mine if t[1] >= from_trade_id][:limit] if from_trade_id else mine[-limit:]
        return [dict(zip(TRADE_FIELDS, t)) for t in chosen]

    # ---- snapshots ----------------------------------------------------------------------
    def state(self) -> dict:
        """Every order, trade, income entry and withdrawal kept, oldest first."""
        return {"orders": self.kept_orders.state(), "trades": self.kept_trades.state(),
                "income": self.income.state(), "withdrawals": self.withdrawals.state()}

    def restore(self, state: dict) -> None:
        self.kept_orders.restore([row if len(row) > OLD_ORDER_ROW else [*row, 1, 1]      # (LIMIT, GTC)
                                  for row in state["orders"]])
        self.kept_trades.restore(state["trades"])
        if "income" in state:                        # (snapshots from before the income and withdrawals)
            self.income.restore(state["income"])
            self.withdrawals.restore(state["withdrawals"])
