"""Order vocabulary: sides, types, time in force, self-trade prevention, and
the resting order record the book keeps.

The enums are IntEnums with stable numbers (they travel in messages and the
journal). ``RestingOrder`` is the one mutable object per open order on a book:
one object with ``__slots__`` (no per-order dict or list) keeps the garbage
collector's work small when hundreds of thousands of orders rest.
"""
from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1        # good till cancelled
    IOC = 2        # immediate or cancel: the unfilled rest expires
    FOK = 3        # fill or kill: all at once or nothing
    POST_ONLY = 4  # rests as maker or is rejected; never takes


class StpMode(IntEnum):
    """Self-trade prevention, taken from the incoming (taker) order."""

    DEFAULT = 0        # use the exchange default from config
    EXPIRE_TAKER = 1
    EXPIRE_MAKER = 2
    EXPIRE_BOTH = 3


BUY = int(Side.BUY)
SELL = int(Side.SELL)


class RestingOrder:
    """An order resting on a book. Prices in ticks, quantities in lots."""

    __slots__ = ("order_id", "account_id", "side", "price", "remaining", "total", "maker_ppm", "tif", "ts_ns")

    def __init__(self, order_id: int, account_id: int, side: int, price: int, remaining: int,
                 total: int, maker_ppm: int, tif: int, ts_ns: int):
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.price = price
        self.remaining = remaining
        self.total = total  # original quantity (as amended); filled = total - remaining
        self.maker_ppm = maker_ppm
        self.tif = tif
        self.ts_ns = ts_ns

    def key(self) -> tuple:
        """Canonical tuple for hashing and snapshots."""
        return (self.order_id, self.account_id, self.side, self.price, self.remaining,
                self.total, self.maker_ppm, self.tif, self.ts_ns)

    def __repr__(self) -> str:
        return f"RestingOrder{self.key()}"
