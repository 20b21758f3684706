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
    VALUE_OUT_OF_RANGE = 114          # an int beyond signed 64 bits, or a result that would not fit in one
    INVALID_REQUEST_ID = 115          # not an int in 1..2**63-1 nor a str of 1..64 printable ASCII characters
    REQUEST_ID_REUSED = 116           # the request id was used before for a different command body
    INVALID_CLIENT_ORDER_ID = 117     # not 0..36 characters of [A-Za-z0-9._:/-]
    STRING_TOO_LONG = 118             # a name field (asset, market, tier, level) longer than its bound
    # 2xx: balances and pre-trade risk
    INSUFFICIENT_BALANCE = 200
    # 4xx: margin trading and lending
    MARGIN_NOT_ENABLED = 400          # the account has not enabled margin, or the market has no margin trading
    MARGIN_ALREADY_ENABLED = 401
    UNKNOWN_USER_LEVEL = 402
    UNKNOWN_LEVERAGE_TIER = 403
    ABOVE_BORROW_LIMIT = 404          # the borrow would exceed the user level / leverage tier limit
    POOL_INSUFFICIENT_LIQUIDITY = 405  # the pool cannot cover the whole borrow or withdrawal
    BELOW_INITIAL_MARGIN_LEVEL = 406  # a transfer out would leave the margin level under the initial line
    NO_INDEX_PRICE = 407              # a price the margin check needs is not known yet
    NOTHING_OWED = 408                # repay with no debt in that asset
    ACCOUNT_IN_LIQUIDATION = 409      # the liquidator has taken this margin account over
    NOT_BELOW_LIQUIDATION_LINE = 410  # a liquidation was asked for an account that is healthy
    NOT_IN_LIQUIDATION = 411
    NO_SUPPLY = 412                   # withdraw from a pool more than the account supplied
    # 3xx: matching and order management
    POST_ONLY_WOULD_TAKE = 300
    FOK_CANNOT_FILL = 301
    NO_LIQUIDITY = 302
    ORDER_NOT_FOUND = 303
    NOT_OWNER = 304
    AMEND_NO_CHANGE = 305
    AMEND_BELOW_FILLED = 306
    AMEND_IN_PROGRESS = 307
    # 8xx: access (docs/SECURITY.md)
    NOT_PERMITTED = 800               # a privileged command sent through the client door
    ACCOUNT_NOT_IN_SCOPE = 801        # a scoped client acted for an account it was not opened for
    WRONG_SHARD = 802                 # the account is routed to another shard
    # 9xx: the service itself
    STORAGE_FULL = 900                # the journal has no room left: nothing new is accepted, reads still work
    OVERLOADED = 901                  # a queue for work in flight is at its configured maximum ([limits]); retry later


class CloseReason(IntEnum):
    """Why an order left the book (or never rested)."""

    FILLED = 1
    CANCELLED = 2
    EXPIRED_IOC = 3          # IOC/market remainder that could not fill
    EXPIRED_STP = 4          # self-trade prevention expired this order
    REJECTED = 5             # rejected by the market (post-only, FOK, no liquidity)
