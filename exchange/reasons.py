"""Result codes: why a command was rejected and why an order closed.

Numbers are stable and grouped by area; a number is never reused for another
meaning. Add new codes at the end of their group.
"""
from __future__ import annotations

from enum import IntEnum


class Reason(IntEnum):
    """Why a command was rejected. A rejection changes nothing else."""

    # 1xx: validation of the command itself
    MALFORMED_COMMAND = 100
    UNKNOWN_MARKET = 101
    UNKNOWN_ACCOUNT = 102
    UNKNOWN_ASSET = 103
    NON_POSITIVE_QUANTITY = 104
    NON_POSITIVE_PRICE = 105
    OFF_TICK_PRICE = 106
    OFF_LOT_QUANTITY = 107
    BELOW_MIN_SIZE = 108
    ABOVE_MAX_SIZE = 109
    NON_POSITIVE_AMOUNT = 110
    ACCOUNT_EXISTS = 111
    UNKNOWN_FEE_TIER = 112
    DUPLICATE_CLIENT_ORDER_ID = 113
    VALUE_OUT_OF_RANGE = 114
    # 2xx: balances and pre-trade risk
    INSUFFICIENT_BALANCE = 200
    # 3xx: matching and order management
    POST_ONLY_WOULD_TAKE = 300
    FOK_CANNOT_FILL = 301
    NO_LIQUIDITY = 302
    ORDER_NOT_FOUND = 303
    NOT_OWNER = 304
    AMEND_NO_CHANGE = 305
    AMEND_BELOW_FILLED = 306
    AMEND_IN_PROGRESS = 307


class CloseReason(IntEnum):
    """Why an order left the book (or never rested)."""

    FILLED = 1
    CANCELLED = 2
    EXPIRED_IOC = 3          # IOC/market remainder that could not fill
    EXPIRED_STP = 4          # self-trade prevention expired this order
    REJECTED = 5             # rejected by the market (post-only, FOK, no liquidity)
