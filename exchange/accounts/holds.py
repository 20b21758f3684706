"""What an order holds and how far a market order may trade: the two pricing
rules shared by the account shard (pre-trade holds) and the liquidation steps.
"""
from __future__ import annotations

from exchange.config import MarketSpec
from exchange.core.money import PPM
from exchange.matching.orders import BUY


def buy_hold_per_lot(market: MarketSpec, price_ticks: int, taker_ppm: int) -> int:
    """Quote held per lot of a buy at ``price_ticks``: notional + worst-case taker fee (ceil)."""
    per_lot = price_ticks * market.quote_per_tick_lot
    return per_lot + -((-per_lot * taker_ppm) // PPM)


def protection_price(reference_ticks: int, side: int, slippage_bps: int) -> int:
    """The worst price a market order may trade at: reference +/- slippage, on the grid."""
    if side == BUY:
        return reference_ticks * (10_000 + slippage_bps) // 10_000
    return max(1, -((-reference_ticks * (10_000 - slippage_bps)) // 10_000))
