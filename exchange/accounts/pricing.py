"""What a command is priced at when the shard applies it: one ``PriceContext``.

A market order without a protection price is protected from a reference:
the best opposite price on the book, or the market's index price when that
side is empty (``reference_ticks``). Margin commands and withdrawals are
valued at the index price of every asset (``prices``; a withdrawal is refused
while a margin book owes and is under the initial line). The Engine and the
shard actor both build the context with ``price_context`` from what they
know (the Engine its own books and prices, the actor the last push's best
prices and the IndexActor's prices), so the rule is written once; the context
is journaled with the command, so replay prices it the same way.
"""
from __future__ import annotations

from typing import NamedTuple

from exchange.accounts.access import LIQUIDATOR_COMMANDS
from exchange.messages.records import (Borrow, EnableMargin, PlaceMarginOrder, PlaceOrder, PlacePerpOrder, Repay,
                                       SupplyToPool, TransferMargin, Withdraw, WithdrawFromPool)
from exchange.matching.orders import BUY, OrderType

MARKET = int(OrderType.MARKET)
VALUED = frozenset((EnableMargin, TransferMargin, Borrow, Repay, PlaceMarginOrder, SupplyToPool, WithdrawFromPool,
                    Withdraw)) | LIQUIDATOR_COMMANDS     # valued at index prices


class PriceContext(NamedTuple):
    reference_ticks: int | None = None     # a market order's protection reference, ticks (None: none known)
    prices: tuple = ()                     # index price per asset index (quote minor per whole unit; 0 = unknown)


NO_PRICES = PriceContext()


def price_context(cmd, top, index_ticks: dict, prices) -> PriceContext:
    """The context ``cmd`` is applied in. ``top(market) -> (best bid, best ask)`` in
    ticks (asked only for a market order that needs a reference); ``index_ticks``:
    each market's index price in ticks; ``prices``: every asset's index price."""
    kind = type(cmd)
    valued = kind in VALUED
    reference = None
    if (kind is PlaceOrder or kind is PlaceMarginOrder or kind is PlacePerpOrder) and cmd.order_type == MARKET \
            and not cmd.price:
        bid, ask = top(cmd.market)
        best = ask if cmd.side == BUY else bid
        reference = best if best is not None else index_ticks.get(cmd.market)
    if reference is None and not valued:
        return NO_PRICES
    return PriceContext(reference, tuple(prices) if valued else ())


def context_from(data) -> PriceContext:
    """A journaled context (``[ticks, [prices...]]``, or None from before) back to a ``PriceContext``."""
    if data is None:
        return NO_PRICES
    ticks, prices = data
    return PriceContext(ticks, tuple(prices))
