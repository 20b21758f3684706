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
    # account products (gateway/products): margin (Binance's -30xx), perpetuals (USD-M's), convert, withdrawals
    R.NON_POSITIVE_AMOUNT: (-1130, "Data sent for parameter 'amount' is not valid: it must be positive."),
    R.INVALID_REQUEST_ID: (-1100, "Illegal characters found in a parameter (a client id)."),
    R.MARGIN_NOT_ENABLED: (-3003, "Margin account does not exist."),
    R.NO_MARGIN_BOOK: (-3003, "Margin account does not exist."),
    R.ABOVE_BORROW_LIMIT: (-3006, "Your borrow amount has exceed maximum borrow amount."),
    R.NOTHING_OWED: (-3015, "Repay amount exceeds borrow amount."),
    R.BELOW_INITIAL_MARGIN_LEVEL: (-3020, "Transfer out amount exceeds max amount."),
    R.NO_LENDING_POOL: (-3027, "Not a valid margin asset."),
    R.NO_INDEX_PRICE: (-3044, "System busy."),
    R.POOL_INSUFFICIENT_LIQUIDITY: (-3045, "The system does not have enough asset now."),
    R.ACCOUNT_IN_LIQUIDATION: (-3008, "Borrow not allowed: the margin account is being liquidated."),
    R.INVALID_LEVERAGE: (-4028, "Leverage is not valid."),
    R.LEVERAGE_ABOVE_TIER: (-4028, "Leverage is not valid: above the risk limit bracket's maximum."),
    R.INVALID_RISK_LIMIT: (-1130, "Data sent for parameter 'bracket' is not valid."),
    R.RISK_LIMIT_BELOW_POSITION: (-2027, "Exceeded the maximum allowable position at current leverage."),
    R.POSITION_LIMIT_EXCEEDED: (-2027, "Exceeded the maximum allowable position at current leverage."),
    R.RISK_LIMIT_EXCEEDED: (-2027, "Exceeded the maximum allowable position at current leverage."),
    R.POSITION_OPEN: (-4048, "Margin type cannot be changed if there exists position."),
    R.REDUCE_ONLY_WOULD_INCREASE: (-2022, "ReduceOnly Order is rejected."),
    R.PRICE_OUTSIDE_LISTING_BAND: (-1013, FILTER + "PERCENT_PRICE"),
    R.NOT_SETTLEMENT_ASSET: (-1130, "Data sent for parameter 'asset' is not valid: not the settlement asset."),
    R.NO_MARK_PRICE: (-2010, "The market has no mark price yet."),
    R.OTC_UNKNOWN_PAIR: (-1130, "Data sent for parameter 'fromAsset' or 'toAsset' is not valid."),
    R.OTC_BELOW_MINIMUM: (-1013, FILTER + "NOTIONAL"),
    R.OTC_ABOVE_MAXIMUM: (-1013, FILTER + "NOTIONAL"),
    R.UNKNOWN_QUOTE: (-2013, "Order does not exist."),
    R.QUOTE_EXPIRED: (-2010, "The quote has expired; ask for a new one."),
    R.QUOTE_ALREADY_ACCEPTED: (-2010, "The quote was accepted already."),
    R.OTC_INVENTORY_SHORT: (-3045, "The system does not have enough asset now."),
    R.OTC_CLIENT_BALANCE_SHORT: (-2010, "Account has insufficient balance for requested action."),
    R.INVALID_DESTINATION: (-1130, "Data sent for parameter 'address' is not valid."),
    R.WITHDRAWALS_FROZEN: (-2010, "Withdrawals are frozen for this account or asset."),
    R.CREDENTIAL_CHANGED: (-2010, "Withdrawals wait 24 hours after a credential change."),
    R.BLOCKLISTED_DESTINATION: (-2010, "The address is on the high-risk blocklist."),
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
