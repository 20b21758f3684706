"""Our reason codes as Binance's errors (issue 18): ``{"code": ..., "msg": ...}`` with the
HTTP status Binance would answer with.

Each ``Reason`` maps to the Binance code a bot already handles (a filter failure, an
unknown symbol, a rejected order, an unknown order, too many requests, ...); the message
is Binance's where it has one, and always ends with our reason's name in brackets, so
nothing of the finer code is lost: ``-2010 Account has insufficient balance for requested
action. (INSUFFICIENT_BALANCE)``. A reason without a closer match is a rejected order
(-2010), or a rejected cancel (-2011) for a cancel.
"""
from __future__ import annotations

from exchange.core.reasons import Reason

R = Reason
FILTER = "Filter failure: "
BINANCE: dict[Reason, tuple[int, str]] = {
    R.UNKNOWN_MARKET: (-1121, "Invalid symbol."),
    R.INVALID_SIDE: (-1117, "Invalid side."),
    R.INVALID_ORDER_TYPE: (-1116, "Invalid orderType."),
    R.INVALID_TIME_IN_FORCE: (-1115, "Invalid timeInForce."),
    R.OFF_TICK_PRICE: (-1013, FILTER + "PRICE_FILTER"),
    R.NON_POSITIVE_PRICE: (-1013, FILTER + "PRICE_FILTER"),
    R.OFF_LOT_QUANTITY: (-1013, FILTER + "LOT_SIZE"),
    R.NON_POSITIVE_QUANTITY: (-1013, FILTER + "LOT_SIZE"),
    R.BELOW_MIN_SIZE: (-1013, FILTER + "LOT_SIZE"),
    R.ABOVE_MAX_SIZE: (-1013, FILTER + "LOT_SIZE"),
    R.PRICE_OUTSIDE_BAND: (-1013, FILTER + "PERCENT_PRICE_BY_SIDE"),
    R.TOO_MANY_OPEN_ORDERS: (-1013, FILTER + "MAX_NUM_ORDERS"),
    R.MALFORMED_COMMAND: (-1102, "A mandatory parameter was not sent, was empty/null, or malformed."),
    R.VALUE_OUT_OF_RANGE: (-1102, "A parameter was out of range."),
    R.INVALID_CLIENT_ORDER_ID: (-1100, "Illegal characters found in parameter 'newClientOrderId'."),
    R.NAME_NOT_PRINTABLE_ASCII: (-1100, "Illegal characters found in a parameter."),
    R.TEXT_NOT_PRINTABLE: (-1100, "Illegal characters found in a parameter."),
    R.STRING_TOO_LONG: (-1100, "A parameter is too long."),
    R.DUPLICATE_CLIENT_ORDER_ID: (-2010, "Duplicate order sent."),
    R.REQUEST_ID_REUSED: (-2010, "Duplicate order sent."),
    R.INSUFFICIENT_BALANCE: (-2010, "Account has insufficient balance for requested action."),
    R.POST_ONLY_WOULD_TAKE: (-2010, "Order would immediately match and take."),
    R.FOK_CANNOT_FILL: (-2010, "Order would not be filled in full."),
    R.MARKET_HALTED: (-2010, "Market is closed."),
    R.ORDER_NOT_FOUND: (-2013, "Order does not exist."),
    R.NOT_OWNER: (-2013, "Order does not exist."),
    R.RATE_LIMITED: (-1003, "Too many requests."),
    R.NOT_PERMITTED: (-2015, "Invalid API-key, IP, or permissions for action."),
    R.ACCOUNT_NOT_IN_SCOPE: (-2015, "Invalid API-key, IP, or permissions for action."),
    R.UNKNOWN_ACCOUNT: (-2015, "Invalid API-key, IP, or permissions for action."),
    R.OVERLOADED: (-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
    R.STORAGE_FULL: (-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
}
STATUS = {-1003: 429, -1008: 503, -2015: 401}
CANCEL_REJECTED = -2011


def error(reason: Reason, cancel: bool = False) -> tuple[int, dict]:
    """The HTTP status and Binance-shaped body for a refusal with ``reason`` (of a cancel, if ``cancel``)."""
    code, msg = BINANCE.get(reason, (CANCEL_REJECTED if cancel else -2010,
                                     "Unknown order sent." if cancel else "New order rejected."))
    if cancel and code == -2013:
        code, msg = CANCEL_REJECTED, "Unknown order sent."
    return STATUS.get(code, 400), {"code": code, "msg": f"{msg} ({reason.name})"}
