"""The Python client's perpetual-futures methods (issue 14).

Mixed into ``ExchangeClient``. Quantities and prices are decimal strings
(parsed exactly on the perpetual's grid) or ints in minor units. Rejections
come back as results with a ``Reason`` (``exchange/core/reasons.py``, group
5xx). Marks and funding come from the perpetual market actors
(``actors/perp_market_actor.py``), which the index actor prices.
"""
from __future__ import annotations

import ray

from actors.client.results import CommandResult, OrderResult, order_result
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.messages.records import (CancelPerpOrder, PlacePerpOrder, SetMarginMode, SetPerpLeverage, SetRiskLimit,
                                       TransferPerp)
from exchange.perp import adl
from exchange.perp.rules import perp_markets, rules_hash


class PerpClientMixin:
    """Needs ``config``, ``handles``, ``next_request_id``, ``_amount``, ``_one``, ``_on_grid``, ``execute``,
    ``_shard``."""

    def transfer_perp(self, account_id: int, asset: str, amount: int | str, to_perp: bool = True,
                      request_id=None) -> CommandResult:
        """Move the settlement asset between the spot account and the perpetual wallet."""
        return self._one(TransferPerp(request_id or self.next_request_id(), 0, account_id, asset,
                                      self._amount(asset, amount), to_perp))

    def set_perp_leverage(self, account_id: int, market: str, leverage: int, request_id=None) -> CommandResult:
        return self._one(SetPerpLeverage(request_id or self.next_request_id(), 0, account_id, market, leverage))

    def set_risk_limit(self, account_id: int, market: str, risk_tier: int, request_id=None) -> CommandResult:
        """Raise or lower the risk limit (a tier of rulebook 4.3.2)."""
        return self._one(SetRiskLimit(request_id or self.next_request_id(), 0, account_id, market, risk_tier))

    def set_margin_mode(self, account_id: int, market: str, isolated: bool, request_id=None) -> CommandResult:
        return self._one(SetMarginMode(request_id or self.next_request_id(), 0, account_id, market, isolated))

    def perp_order(self, account_id: int, market: str, side: str | int, quantity: int | str,
                   price: int | str | None = None, order_type: str | int = OrderType.LIMIT,
                   tif: str | int = TimeInForce.GTC, reduce_only: bool = False, client_order_id: str = "",
                   request_id=None) -> OrderResult:
        """Place an order on a perpetual market (see ``exchange/perp/desk.py`` for its checks)."""
        from actors.client.margin import enum_value
        quantity, price = self._on_grid(self._perp_spec(market), quantity, price)
        cmd = PlacePerpOrder(request_id or self.next_request_id(), 0, account_id, market,
                             int(enum_value(Side, side)), int(enum_value(OrderType, order_type)), price or 0,
                             quantity, int(enum_value(TimeInForce, tif)), reduce_only, client_order_id)
        return order_result(cmd.request_id, self.execute([cmd])[0], account_id)

    def cancel_perp_order(self, account_id: int, market: str, order_id: int, request_id=None) -> OrderResult:
        cmd = CancelPerpOrder(request_id or self.next_request_id(), 0, account_id, market, order_id)
        return order_result(cmd.request_id, self.execute([cmd])[0], account_id)

    # ---- views ---------------------------------------------------------------------------
    def perp_position(self, account_id: int, market: str) -> dict | None:
        """Size, entry notional, mark, PnL, margin, liquidation and bankruptcy prices (ticks), and
        the ADL quintile among every shard's positions on its side (each shard counts its
        positions ranked before this one's score: ``PerpDesk.adl_place``)."""
        view = ray.get(self._shard(account_id).perp_position.remote(account_id, market))
        if view and view.get("adl_score") and len(self.handles.shards) > 1:
            places = ray.get([shard.perp_adl_place.remote(market, view["lots"] > 0, *view["adl_score"], account_id)
                              for shard in self.handles.shards])
            view["adl_quintile"] = adl.quintile(sum(p for p, _ in places), sum(n for _, n in places))
        return view

    def perp_wallet(self, account_id: int) -> dict | None:
        return ray.get(self._shard(account_id).perp_wallet.remote(account_id))

    def perp_prices(self, market: str) -> dict:
        """The market's mark, last funding rate and next funding time."""
        return ray.get(self.handles.markets[market].price_view.remote())

    def perp_fund(self) -> dict:
        """The perpetual insurance funds, public: balances, caps, the chain's head and length,
        and the hash of the perpetual rules in force."""
        return {**ray.get(self.handles.liquidator.perp_fund_view.remote()), "rules_hash": rules_hash(self.config)}

    def perp_fund_entries(self, after: int = 0, limit: int = 1_000) -> list[list]:
        """The funds' entries after number ``after``: recompute them with ``exchange.perp.fund.verify``."""
        return ray.get(self.handles.liquidator.perp_fund_entries.remote(after, limit))

    def perp_liquidations(self, limit: int = 100) -> dict:
        """Finished perpetual liquidations (accounts under pseudonyms, what each market's fund
        took or paid) and how many are open: public."""
        return ray.get(self.handles.liquidator.perp_liquidations.remote(limit))

    def _perp_spec(self, market: str):
        perp = perp_markets(self.config).get(market)
        return None if perp is None else perp.spec
