"""One account's events as Binance's user-data stream events (issue 18): pure shapes,
fed the events of the account's stream (``exchange/messages/records.py``) in order.

- ``executionReport`` (Binance Spot's), for spot, margin and perpetual orders alike:
  ``OrderAccepted`` is ``x`` NEW; each ``Fill`` of one of the account's orders is
  TRADE (``X`` PARTIALLY_FILLED or FILLED; ``l``/``L`` the fill, ``z``/``Z`` the
  order's totals, ``n``/``N`` its commission: negative for a maker rebate, in the
  market's quote asset, ``t`` the fill's market sequence, as REST's ``tradeId``);
  ``OrderAmended`` is REPLACED (Binance's amend-keep-priority type); ``OrderClosed`` is
  CANCELED, EXPIRED (an IOC or market order's rest), TRADE_PREVENTION / EXPIRED_IN_MATCH
  (self-trade prevention) or REJECTED (a closed order FILLED was reported by its last
  TRADE). ``OrderRejected`` with an order id the account has no open order under is a
  placement the market refused (post-only would take, fill-or-kill could not fill: REST
  answers it REJECTED with its ``orderId``) and is REJECTED, ``r`` our reason's name,
  with the order as placed (the event carries it). A refusal before an order id exists
  is REST's answer only, and a refused cancel or amend is not reported (as Binance).
  ``c`` is the client's order id or ``"x-<orderId>"`` (as REST's answers);
  ``autoclose-<orderId>`` for an order a margin liquidation placed (Binance's mark of a
  liquidation order). ``o`` and ``f`` are the order's type and time in force as placed
  (``gateway.binance.order_kind``).
- ``outboundAccountPosition``: after events, the spot balances (free, locked) of the
  assets that changed since the last one sent (``positions``, from the shard's balances).
- ``balanceUpdate``: a deposit or withdrawal (``BalanceChanged``) and a transfer between
  the spot account and a margin book or the perpetual wallet, as the spot balance's delta.
- ``MARGIN_CALL`` (Binance USD-M's event name; our shape, as Binance's needs positions we
  do not carry): a margin book or perpetual position that went under a line:
  ``{"e", "E", "k": "MARGIN" | "PERP", "s": symbol ("" for the cross book or wallet),
  "mt": "CROSSED" | "ISOLATED", "z": "WARNING" | "MARGIN_CALL" | "LIQUIDATION"}`` with
  ``"l"`` (the margin level) for a margin book, ``"eq"``, ``"mm"`` (maintenance) and
  ``"w"`` (the warning line) for a perpetual. A return to healthy is not sent.
- ``liquidation`` (ours: Binance has no such event): the liquidator's progress on the
  account: ``{"e": "liquidation", "E", "T", "k": "MARGIN" | "PERP", "s", "x": the stage
  (STARTED, REPAID, ORDER, IDLE, COVERED, WRITTEN_OFF, FINISHED for a margin book;
  TAKEN_OVER, ORDER_FILLED, DELEVERAGED, ABSORBED, FINISHED for a perpetual)}`` with
  ``"l"`` the margin level (margin), ``"a"``/``"d"`` the asset and amount covered or
  written off, or ``"i"`` the liquidation, ``"q"``, ``"p"`` and ``"d"`` its lots as a
  quantity, price and amount (perpetual).

Symbols are the markets' names without dashes (``BTC-USDT-PERP`` -> ``BTCUSDTPERP``).
Money is a decimal string at its asset's scale. Bounded: at most ``ORDERS_MAX`` open
orders and ``LIQUIDATION_REQUESTS_MAX`` liquidation requests are remembered (the oldest
forgotten first); an order forgotten or placed before the stream began is reported with
what the event itself says.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from exchange.config import ExchangeConfig, MarketSpec
from exchange.core.money import format_decimal, mul_div_floor
from exchange.core.reasons import CloseReason, Reason
from exchange.matching.orders import Side
from exchange.messages.records import (BalanceChanged, Fill, LiquidationStage, LiquidationUpdate, MarginLevelChanged,
                                       MarginTransferred, OrderAccepted, OrderAmended, OrderClosed, OrderRejected,
                                       PerpLiquidationStage, PerpLiquidationUpdate, PerpMarginZoneChanged,
                                       PerpTransferred)
from exchange.perp.rules import perp_markets
from gateway.binance import order_kind, symbol

ORDERS_MAX = 10_000
LIQUIDATION_REQUESTS_MAX = 1_000
CLOSED = {CloseReason.CANCELLED: ("CANCELED", "CANCELED"), CloseReason.EXPIRED_IOC: ("EXPIRED", "EXPIRED"),
          CloseReason.EXPIRED_STP: ("TRADE_PREVENTION", "EXPIRED_IN_MATCH"),
          CloseReason.REJECTED: ("REJECTED", "REJECTED")}
NOT_A_PLACEMENT = {int(Reason.ORDER_NOT_FOUND), int(Reason.NOT_OWNER)}     # a cancel's or amend's refusals
MARGIN_ZONES = {1: "WARNING", 2: "MARGIN_CALL", 3: "LIQUIDATION"}
PERP_ZONES = {1: "WARNING", 2: "LIQUIDATION"}


def market_specs(config: ExchangeConfig) -> dict[str, MarketSpec]:
    """Every market's spec by name: the spot markets' and the perpetuals'."""
    return {**config.markets, **{name: perp.spec for name, perp in perp_markets(config).items()}}


@dataclass(slots=True)
class OpenOrder:
    """What the stream remembers of an open order (minor units)."""
    market: str
    side: int
    price: int
    quantity: int
    client_id: str
    created_ms: int
    filled: int = 0
    quote: int = 0
    order_type: int = 1             # OrderType, TimeInForce (LIMIT, GTC when not known)
    tif: int = 1


class UserEvents:
    """Shape one account's events; remembers its open orders, the last fill of each market
    (an account on both sides of a fill gets it once per side, never twice) and the
    balances last sent."""

    def __init__(self, config: ExchangeConfig, account_id: int, balances: dict | None = None):
        self.account_id = account_id
        self.specs = market_specs(config)
        self.scales = {asset.name: asset.scale for asset in config.asset_list}
        self.orders: OrderedDict[int, OpenOrder] = OrderedDict()
        self.liquidation_requests: OrderedDict = OrderedDict()
        self.fill_seq: dict[str, int] = {}
        self.balances: dict[str, tuple[int, int]] = dict(balances or {})

    def seed(self, views: list[dict], now_ms: int) -> None:
        """Remember the open orders of the shard's view (``open_orders``), placed before the stream began."""
        for view in views:
            self._remember(view["order_id"], OpenOrder(view["market"], view["side"], view["price"], view["quantity"],
                                                       view["client_order_id"], now_ms,
                                                       view["quantity"] - view["remaining"], 0,
                                                       view["order_type"], view["tif"]))

    def _remember(self, order_id: int, order: OpenOrder) -> None:
        self.orders[order_id] = order
        if len(self.orders) > ORDERS_MAX:
            self.orders.popitem(last=False)

    # ---- events -------------------------------------------------------------------------
    def shape(self, events: list, now_ms: int) -> list[dict]:
        """The Binance events for ``events`` (the account's, in order)."""
        out: list[dict] = []
        for event in events:
            handler = self._HANDLERS.get(type(event))
            if handler is not None:
                out.extend(handler(self, event, now_ms))
        return out

    def positions(self, balances: dict[str, tuple[int, int]], now_ms: int) -> dict | None:
        """``outboundAccountPosition`` for the assets whose (free, locked) changed since the
        last one (None if none did); remembers ``balances`` as sent."""
        changed = sorted(a for a, value in balances.items() if self.balances.get(a) != tuple(value))
        self.balances = {a: tuple(value) for a, value in balances.items()}
        if not changed:
            return None
        return {"e": "outboundAccountPosition", "E": now_ms, "u": now_ms,
                "B": [{"a": a, "f": format_decimal(balances[a][0], self.scales[a]),
                       "l": format_decimal(balances[a][1], self.scales[a])} for a in changed]}

    def _accepted(self, event: OrderAccepted, now_ms: int) -> list[dict]:
        client_id = event.client_order_id
        if not client_id and event.request_id in self.liquidation_requests:
            client_id = f"autoclose-{event.order_id}"
        order = self.orders.get(event.order_id)
        if order is None:
            order = OpenOrder(event.market, event.side, event.price, event.quantity, client_id,
                              event.ts_ns // 1_000_000, order_type=event.order_type, tif=event.tif)
            self._remember(event.order_id, order)
        return [self._report(event.order_id, order, "NEW", "NEW", now_ms, event.ts_ns)]

    def _fill(self, fill: Fill, now_ms: int) -> list[dict]:
        if fill.seq <= self.fill_seq.get(fill.market, 0):
            return []
        self.fill_seq[fill.market] = fill.seq
        out = []
        sides = ((fill.taker_account, fill.taker_order_id, fill.taker_fee, False, fill.taker_side),
                 (fill.maker_account, fill.maker_order_id, fill.maker_fee, True, 3 - fill.taker_side))
        spec = self.specs.get(fill.market)
        for account, order_id, fee, maker, side in sides:
            if account != self.account_id or spec is None:
                continue
            order = self.orders.get(order_id) or OpenOrder(fill.market, side, fill.price, 0, "",
                                                           fill.ts_ns // 1_000_000)
            last_quote = mul_div_floor(fill.price, fill.quantity, 10 ** spec.base.scale)
            order.filled += fill.quantity
            order.quote += last_quote
            order.quantity = max(order.quantity, order.filled)
            done = order.filled >= order.quantity
            quote = spec.quote
            out.append(self._report(order_id, order, "TRADE", "FILLED" if done else "PARTIALLY_FILLED", now_ms,
                                    fill.ts_ns, l=format_decimal(fill.quantity, spec.base.scale),
                                    L=format_decimal(fill.price, quote.scale), n=format_decimal(fee, quote.scale),
                                    N=quote.name, t=fill.seq, m=maker, Y=format_decimal(last_quote, quote.scale)))
            if done:
                self.orders.pop(order_id, None)
        return out

    def _amended(self, event: OrderAmended, now_ms: int) -> list[dict]:
        order = self.orders.get(event.order_id)
        if order is None:
            return []
        order.price, order.quantity = event.price, order.filled + event.remaining
        status = "PARTIALLY_FILLED" if order.filled else "NEW"
        return [self._report(event.order_id, order, "REPLACED", status, now_ms, event.ts_ns)]

    def _closed(self, event: OrderClosed, now_ms: int) -> list[dict]:
        order = self.orders.pop(event.order_id, None)
        if event.reason == CloseReason.FILLED:
            return []                                      # its last TRADE said FILLED
        if order is None:
            order = OpenOrder(event.market, 0, 0, event.remaining, "", event.ts_ns // 1_000_000)
        execution, status = CLOSED[CloseReason(event.reason)]
        reason = Reason(event.reject_reason).name if event.reject_reason else "NONE"
        return [self._report(event.order_id, order, execution, status, now_ms, event.ts_ns, r=reason,
                             C=order.client_id if execution == "CANCELED" else "")]

    def _rejected(self, event: OrderRejected, now_ms: int) -> list[dict]:
        if not event.order_id or event.order_id in self.orders or event.reason in NOT_A_PLACEMENT:
            return []
        order = OpenOrder(event.market, event.side, event.price, event.quantity, event.client_order_id, now_ms,
                          order_type=event.order_type, tif=event.tif)
        return [self._report(event.order_id, order, "REJECTED", "REJECTED", now_ms, now_ms * 1_000_000,
                             r=Reason(event.reason).name)]

    def _report(self, order_id: int, order: OpenOrder, execution: str, status: str, now_ms: int, ts_ns: int,
                **fields) -> dict:
        """An ``executionReport`` of ``order`` (after the event), ``fields`` for the fill's."""
        spec = self.specs.get(order.market)
        base, quote = (spec.base.scale, spec.quote.scale) if spec else (0, 0)
        zero_qty, zero_price = format_decimal(0, base), format_decimal(0, quote)
        kind, tif = order_kind(order.order_type, order.tif)
        return {"e": "executionReport", "E": now_ms, "s": symbol(order.market),
                "c": order.client_id or f"x-{order_id}", "S": Side(order.side).name if order.side else "",
                "o": kind, "f": tif,
                "q": format_decimal(order.quantity, base), "p": format_decimal(order.price, quote),
                "P": zero_price, "F": zero_qty, "g": -1, "C": fields.get("C", ""), "x": execution, "X": status,
                "r": fields.get("r", "NONE"), "i": order_id, "l": fields.get("l", zero_qty),
                "z": format_decimal(order.filled, base), "L": fields.get("L", zero_price), "n": fields.get("n", "0"),
                "N": fields.get("N"), "T": ts_ns // 1_000_000, "t": fields.get("t", -1),
                "w": status in ("NEW", "PARTIALLY_FILLED"), "m": fields.get("m", False), "M": False,
                "O": order.created_ms, "Z": format_decimal(order.quote, quote), "Y": fields.get("Y", zero_price),
                "Q": zero_price, "W": order.created_ms, "V": "NONE"}

    # ---- balances, margin calls, liquidations --------------------------------------------------
    def _balance(self, event: BalanceChanged, now_ms: int) -> list[dict]:
        return [self._balance_update(event.asset, event.delta, event.ts_ns, now_ms)]

    def _transferred(self, event, now_ms: int) -> list[dict]:
        """Into a margin book or the perpetual wallet (``amount`` > 0): out of the spot balance."""
        return [self._balance_update(event.asset, -event.amount, event.ts_ns, now_ms)]

    def _balance_update(self, asset: str, delta: int, ts_ns: int, now_ms: int) -> dict:
        return {"e": "balanceUpdate", "E": now_ms, "a": asset, "d": format_decimal(delta, self.scales[asset]),
                "T": ts_ns // 1_000_000}

    def _margin_level(self, event: MarginLevelChanged, now_ms: int) -> list[dict]:
        if event.zone not in MARGIN_ZONES:
            return []
        return [{"e": "MARGIN_CALL", "E": now_ms, "k": "MARGIN", "s": symbol(event.market),
                 "mt": "ISOLATED" if event.market else "CROSSED", "z": MARGIN_ZONES[event.zone],
                 "l": format_decimal(event.level_ppm, 6)}]

    def _perp_zone(self, event: PerpMarginZoneChanged, now_ms: int) -> list[dict]:
        spec = self.specs.get(event.market)
        if event.zone not in PERP_ZONES or spec is None:
            return []
        scale = spec.quote.scale
        return [{"e": "MARGIN_CALL", "E": now_ms, "k": "PERP", "s": symbol(event.scope),
                 "mt": "ISOLATED" if event.scope else "CROSSED", "z": PERP_ZONES[event.zone],
                 "eq": format_decimal(event.equity, scale), "mm": format_decimal(event.maintenance, scale),
                 "w": format_decimal(event.warning, scale)}]

    def _liquidation(self, event: LiquidationUpdate, now_ms: int) -> list[dict]:
        stage = LiquidationStage(event.stage)
        out = {"e": "liquidation", "E": now_ms, "T": event.ts_ns // 1_000_000, "k": "MARGIN",
               "s": symbol(event.market), "x": stage.name, "l": format_decimal(event.level_ppm, 6)}
        if stage is LiquidationStage.ORDER:
            self.liquidation_requests[event.request_id] = None
            if len(self.liquidation_requests) > LIQUIDATION_REQUESTS_MAX:
                self.liquidation_requests.popitem(last=False)
        if stage in (LiquidationStage.COVERED, LiquidationStage.WRITTEN_OFF) and len(event.detail) == 2:
            asset, amount = event.detail
            out.update(a=asset, d=format_decimal(amount, self.scales[asset]))
        return [out]

    def _perp_liquidation(self, event: PerpLiquidationUpdate, now_ms: int) -> list[dict]:
        spec = self.specs.get(event.market)
        if spec is None:
            return []
        return [{"e": "liquidation", "E": now_ms, "T": event.ts_ns // 1_000_000, "k": "PERP",
                 "s": symbol(event.market), "x": PerpLiquidationStage(event.stage).name, "i": event.liquidation,
                 "q": format_decimal(event.lots * spec.lot_minor, spec.base.scale),
                 "p": format_decimal(event.price * spec.tick_minor, spec.quote.scale),
                 "d": format_decimal(event.amount, spec.quote.scale)}]

    _HANDLERS = {OrderAccepted: _accepted, Fill: _fill, OrderAmended: _amended, OrderClosed: _closed,
                 OrderRejected: _rejected, BalanceChanged: _balance, MarginTransferred: _transferred,
                 PerpTransferred: _transferred, MarginLevelChanged: _margin_level, PerpMarginZoneChanged: _perp_zone,
                 LiquidationUpdate: _liquidation, PerpLiquidationUpdate: _perp_liquidation}
