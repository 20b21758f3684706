"""What a command is priced at when the shard applies it: one ``PriceContext``.

A market order without a protection price is protected from a reference:
the best opposite price on the book, or the market's index price when that
side is empty (``reference_ticks``). Margin commands and withdrawals are
valued at the index price of every asset (``prices``; a withdrawal is refused
while a margin book owes and is under the initial line). A spot or margin
limit order carries its market's index (``index_ticks``): the risk gate's
price band (``exchange.risk.gate``). The Engine and the
shard actor both build the context with ``price_context`` from what they
know (the Engine its own books and prices, the actor the last push's best
prices and the IndexActor's prices), so the rule is written once; the context
is journaled with the command, so replay prices it the same way.
"""
from __future__ import annotations

from typing import NamedTuple

from exchange.accounts.access import LIQUIDATOR_COMMANDS
from exchange.messages.records import (Borrow, EnableMargin, PlaceMarginOrder, PlaceOrder, PlacePerpOrder, Repay,
                                       RequestWithdrawal, SupplyToPool, TransferMargin, Withdraw, WithdrawFromPool)
from exchange.matching.orders import BUY, OrderType

MARKET = int(OrderType.MARKET)
VALUED = frozenset((EnableMargin, TransferMargin, Borrow, Repay, PlaceMarginOrder, SupplyToPool, WithdrawFromPool,
                    Withdraw, RequestWithdrawal)) | LIQUIDATOR_COMMANDS     # valued at index prices


class PriceContext(NamedTuple):
    reference_ticks: int | None = None     # a market order's protection reference, ticks (None: none known)
    prices: tuple = ()                     # index price per asset index (quote minor per whole unit; 0 = unknown)
    index_ticks: int | None = None         # a spot or margin limit order's market index, ticks: its price band


NO_PRICES = PriceContext()


def price_context(cmd, top, index_ticks: dict, prices, valued: bool = False) -> PriceContext:
    """The context ``cmd`` is applied in. ``top(market) -> (best bid, best ask)`` in
    ticks (asked only for a market order that needs a reference); ``index_ticks``:
    each market's index price in ticks; ``prices``: every asset's index price, for a
    command in ``VALUED`` or when ``valued`` (the risk gate's ``wants_prices``)."""
    kind = type(cmd)
    valued = valued or kind in VALUED
    reference = band = None
    if kind is PlaceOrder or kind is PlaceMarginOrder or kind is PlacePerpOrder:
        if cmd.order_type == MARKET and not cmd.price:
            bid, ask = top(cmd.market)
            best = ask if cmd.side == BUY else bid
            reference = best if best is not None else index_ticks.get(cmd.market)
        elif kind is not PlacePerpOrder and cmd.order_type != MARKET:
            band = index_ticks.get(cmd.market)
    if reference is None and band is None and not valued:
        return NO_PRICES
    return PriceContext(reference, tuple(prices) if valued else (), band)


def context_from(data) -> PriceContext:
    """A journaled context (``[ticks, [prices...], band ticks]``; two fields or None from
    before) back to a ``PriceContext``."""
    if data is None:
        return NO_PRICES
    return PriceContext(data[0], tuple(data[1]), data[2] if len(data) > 2 else None)
