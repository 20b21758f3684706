"""The Python client's margin, lending and liquidation methods.

Mixed into ``ExchangeClient``. Amounts are decimal strings (parsed exactly at
the asset's scale) or ints in minor units; ``market=""`` names the account's
cross-margin book, a market name its isolated book. A command's time is
never the client's: the shard stamps it, and the pools charge interest by
the hour of their own last accrual. Rejections come back as results with a
``Reason`` (see ``exchange/core/reasons.py``, group 4xx).
"""
from __future__ import annotations

import ray

from actors.client.results import CommandResult, OrderResult, order_result
from exchange.messages.records import (Borrow, EnableMargin, PlaceMarginOrder, Repay, SupplyToPool, TransferMargin,
                               WithdrawFromPool)
from exchange.matching.orders import OrderType, Side, TimeInForce


class MarginClientMixin:
    """Needs ``config``, ``handles``, ``next_request_id``, ``_amount``, ``_one``, ``_on_grid``, ``execute``,
    ``_shard``."""

    def enable_margin(self, account_id: int, user_level: str = "", leverage_tier: str = "",
                      request_id=None) -> CommandResult:
        """Open margin trading (user level and leverage tier pick the borrow limit)."""
        return self._one(EnableMargin(request_id or self.next_request_id(), 0, account_id,
                                      user_level, leverage_tier))

    def transfer_margin(self, account_id: int, asset: str, amount: int | str, to_margin: bool = True,
                        market: str = "", request_id=None) -> CommandResult:
        """Move funds spot -> margin book (``to_margin``) or back (refused under the initial line)."""
        return self._one(TransferMargin(request_id or self.next_request_id(), 0, account_id, asset,
                                        self._amount(asset, amount), to_margin, market))

    def borrow(self, account_id: int, asset: str, amount: int | str, market: str = "", request_id=None) -> CommandResult:
        return self._one(Borrow(request_id or self.next_request_id(), 0, account_id, asset,
                                self._amount(asset, amount), market))

    def repay(self, account_id: int, asset: str, amount: int | str, market: str = "", request_id=None) -> CommandResult:
        """Repay up to ``amount`` (interest first); only what is owed is taken."""
        return self._one(Repay(request_id or self.next_request_id(), 0, account_id, asset,
                               self._amount(asset, amount), market))

    def supply(self, account_id: int, asset: str, amount: int | str, request_id=None) -> CommandResult:
        """Lend spot funds to the asset's pool."""
        return self._one(SupplyToPool(request_id or self.next_request_id(), 0, account_id, asset,
                                      self._amount(asset, amount)))

    def withdraw_supply(self, account_id: int, asset: str, amount: int | str, request_id=None) -> CommandResult:
        return self._one(WithdrawFromPool(request_id or self.next_request_id(), 0, account_id, asset,
                                          self._amount(asset, amount)))

    def margin_order(self, account_id: int, market: str, side: str | int, quantity: int | str,
                     price: int | str | None = None, isolated: bool = False, auto_borrow: bool = True,
                     auto_repay: bool = True, tif: str | int = TimeInForce.GTC, client_order_id: str = "",
                     request_id=None, order_type: str | int = OrderType.LIMIT) -> OrderResult:
        """Place an order funded from a margin book, borrowing what it lacks (``auto_borrow``)
        and repaying debt in what it acquires when it closes (``auto_repay``). A limit
        order at ``price`` unless ``order_type="market"``; a limit order without a
        positive price is rejected ``NON_POSITIVE_PRICE``."""
        quantity, price = self._on_grid(self.config.markets.get(market), quantity, price)
        cmd = PlaceMarginOrder(request_id or self.next_request_id(), 0, account_id, market,
                               int(enum_value(Side, side)), int(enum_value(OrderType, order_type)), price or 0,
                               quantity, int(enum_value(TimeInForce, tif)), isolated, auto_borrow, auto_repay, client_order_id)
        return order_result(cmd.request_id, self.execute([cmd])[0], account_id)

    def start_feeds(self) -> None:
        """Start the index feed (margin levels need index prices) and the pools' hourly clock,
        as ``exchange up`` does; an embedded exchange starts without them."""
        ray.get([self.handles.index.start.remote(), self.handles.lending.start_clock.remote()])

    # ---- views ---------------------------------------------------------------------------
    def margin_book(self, account_id: int, market: str = "") -> dict | None:
        """Balances, debts (principal + interest), margin level (ppm) and zone of a margin book."""
        return ray.get(self._shard(account_id).margin_book.remote(account_id, market))

    def lending_pools(self) -> dict:
        """Per asset: cash, borrowed, utilization, borrow/supply rates (ppm per year), index."""
        return ray.get(self.handles.lending.pools.remote())

    def liquidations(self, limit: int = 100) -> list[dict]:
        """Public liquidation records (account ids hashed)."""
        return ray.get(self.handles.liquidator.liquidation_records.remote(limit))

    def insurance_fund(self) -> dict:
        return ray.get(self.handles.liquidator.insurance_fund.remote())


def enum_value(kind, value):
    """Accept a member, its number or its name ("buy", "post_only"); refuse anything else clearly."""
    try:
        if isinstance(value, str):
            return kind[value.upper()]
        return kind(value) if not isinstance(value, kind) else value
    except (KeyError, ValueError):
        names = ", ".join(m.name.lower() for m in kind)
        raise ValueError(f"{value!r} is not a {kind.__name__} (one of: {names})") from None
