"""The firm quote (seed 000, 询价): the index plus (a client buying) or less (a client
selling) a spread, the sum of named components, each in bps of the index:

- ``size``: the size tier the trade's notional at the index falls in (the last tier
  whose ``from`` it reaches: larger trades pay less);
- ``volatility``: the index's high-low range over the desk's window, in bps of the
  low (rounded up), times the pair's ``volatility_factor`` (rounded up): the desk
  keeps the index history itself (``IndexHistory``);
- ``liquidity``: the pair's liquidity class;
- ``payment``: the payment method's surcharge.

The price is on the market's tick and rounded against the client (the party that
owes the rounding): ``ceil(index x (10,000 + spread) / 10,000)`` ticks for a buyer,
``floor(index x (10,000 - spread) / 10,000)`` for a seller. A client asks for a base
quantity (on the lot) or for a quote notional: a notional becomes the most whole lots
it pays for at the price (a buyer never pays more than asked, a seller never
receives more). The size tier reads the notional at the index.

Refusals (``Reason``): OTC_UNKNOWN_PAIR, UNKNOWN_PAYMENT_METHOD, NO_INDEX_PRICE,
OTC_BELOW_MINIMUM (use the order book), OTC_ABOVE_MAXIMUM, and the grid's
OFF_LOT_QUANTITY / NON_POSITIVE_QUANTITY.
"""
from __future__ import annotations

from typing import NamedTuple

from exchange.core.money import PPM
from exchange.core.reasons import Reason
from exchange.matching.orders import BUY
from exchange.otc.rules import OtcPair, OtcRules
from exchange.pricing.price_range import PriceRange

BPS = 10_000
COMPONENTS = ("size", "volatility", "liquidity", "payment")


class Terms(NamedTuple):
    """What a quote fixes: price (ticks), lots, notional (quote minor units), the spread and
    its breakdown ((component, bps), ... in ``COMPONENTS`` order), the index it stood on."""
    price_ticks: int
    lots: int
    notional: int
    spread_bps: int
    breakdown: tuple
    index_ticks: int


class IndexHistory(PriceRange):
    """A pair's index samples over the last ``window_ns`` (``PriceRange``: samples older than
    the window are dropped as new ones come, and a read changes nothing) and the latest."""

    __slots__ = ("window_ns", "last")

    def __init__(self, window_ns: int) -> None:
        super().__init__()
        self.window_ns = window_ns
        self.last = 0

    def add(self, ts: int, ticks: int) -> None:
        super().add(ts, ticks, self.window_ns)
        self.last = ticks

    def range_bps(self, ts: int) -> int:
        """The high-low range of the samples in the window before ``ts``, in bps of the low,
        rounded up (0 with none)."""
        found = self.within(ts, self.window_ns)
        if found is None:
            return 0
        low, high = found
        return -(-(high - low) * BPS // low)


def terms(rules: OtcRules, pair: OtcPair, side: int, quantity: int, notional: int, method: str,
          history: IndexHistory, ts: int) -> Terms | Reason:
    """The quote's terms for a client buying (``side`` BUY) or selling ``quantity`` base minor
    units, or (``quantity`` 0) ``notional`` quote minor units, paid by ``method``; or why not."""
    spec = pair.spec
    payment = rules.methods.get(method)
    if payment is None:
        return Reason.UNKNOWN_PAYMENT_METHOD
    index = history.last
    if index <= 0:
        return Reason.NO_INDEX_PRICE
    if quantity:
        if quantity < 0:
            return Reason.NON_POSITIVE_QUANTITY
        lots, off = divmod(quantity, spec.lot_minor)
        if off:
            return Reason.OFF_LOT_QUANTITY
        at_index = spec.notional(index, lots)
    elif notional > 0:
        at_index = notional
    else:
        return Reason.NON_POSITIVE_QUANTITY
    if at_index < pair.min_notional:
        return Reason.OTC_BELOW_MINIMUM
    if at_index > pair.max_notional:
        return Reason.OTC_ABOVE_MAXIMUM
    size = next(bps for start, bps in reversed(pair.size_tiers) if at_index >= start)
    volatility = -(-history.range_bps(ts) * pair.volatility_factor_ppm // PPM)
    breakdown = (("size", size), ("volatility", volatility), ("liquidity", pair.liquidity_bps),
                 ("payment", payment.surcharge_bps))
    spread = sum(bps for _, bps in breakdown)
    if side == BUY:
        price = -(-index * (BPS + spread) // BPS)
    else:
        price = index * (BPS - spread) // BPS
    if price <= 0:
        return Reason.NON_POSITIVE_PRICE
    if not quantity:
        lots = notional // (price * spec.quote_per_tick_lot)
        if lots <= 0:
            return Reason.OTC_BELOW_MINIMUM
    return Terms(price, lots, spec.notional(price, lots), spread, breakdown, index)
