"""Result codes: why a command was rejected and why an order closed.

One code per failed check (TigerBeetle's habit): a rejection says which check
refused the command, never "something was wrong". Numbers are stable and
grouped by area (1xx validation, 2xx balance and risk, 3xx matching, 4xx
margin and lending, 5xx perpetuals, 6xx the OTC desk, 8xx access, 9xx the
service); a number is never renumbered or reused for another meaning. Add
new codes at the end of their group, with a one-line explanation in
``EXPLANATIONS`` (a test checks every member has one). The table, in the order the checks run, is in docs/DECISIONS.md
("Result codes").
"""
from __future__ import annotations

from enum import IntEnum


class Reason(IntEnum):
    """Why a command was rejected. A rejection changes nothing else."""

    # 1xx: validation of the command itself
    MALFORMED_COMMAND = 100           # only what has no finer meaning: a wire element that decodes to no message
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
    FIELD_NOT_AN_INTEGER = 119        # an int field (amount, price, quantity, id, enum) holds another type
    FIELD_NOT_A_STRING = 120          # a name field holds another type
    NAME_NOT_PRINTABLE_ASCII = 121    # a name field has a character outside printable ASCII
    FIELD_NOT_A_FLAG = 122            # a flag field is not exactly True or False
    INVALID_PRICE_VECTOR = 123        # a price vector is not a tuple of one int per asset
    UNKNOWN_COMMAND = 124             # not a command type at all (any other object)
    INVALID_ACCOUNT_ID = 125          # an account to open must have an id in 1..2**63-1
    NEGATIVE_TIMESTAMP = 126          # a margin command's ts_ns (the pools' clock) is negative
    INVALID_SIDE = 127                # side is neither BUY (1) nor SELL (2)
    INVALID_ORDER_TYPE = 128          # order type is neither LIMIT (1) nor MARKET (2)
    INVALID_TIME_IN_FORCE = 129       # tif is not GTC, IOC, FOK or POST_ONLY (1..4)
    INVALID_STP_MODE = 130            # self-trade prevention mode not in 0..3
    MARKET_ORDER_POST_ONLY = 131      # a market order cannot be post-only
    INVALID_LIQUIDATION_STEP = 132    # a liquidation step is counted from 1
    TEXT_NOT_PRINTABLE = 133          # a text field (an operator's reason) holds a control character
    INVALID_FREEZE_SCOPE = 134        # a freeze scope is not 0 (lift), 1 (trading), 2 (withdrawals) or 3 (both)
    INVALID_RESTRICTION = 135         # a restriction level is not 0, 2 or 3, or its end is before it starts
    UNKNOWN_RULE = 136                # no rule with that id in the rulebook
    INVALID_RULE_VALUE = 137          # a threshold change names no parameter of the rule, or its value is malformed
    INVALID_MARKET_MODE = 138         # a market mode is not 0 (open), 1 (reduce-only) or 2 (halted)
    INVALID_DESTINATION = 139         # a withdrawal's destination is empty or longer than 128 characters
    INVALID_SETTLEMENT = 140          # a settlement stage is not 1 (sent), 2 (confirmed) or 3 (failed), or sent lacks a txid
    # 2xx: balances and pre-trade risk
    INSUFFICIENT_BALANCE = 200
    RATE_LIMITED = 201                # the account's request or unfilled-order bucket is empty (R-5.2.2.1-*-rate)
    TOO_MANY_OPEN_ORDERS = 202        # the account's open orders are at its cap for its equity (R-5.2.2.1-open-orders)
    OPENING_RESTRICTED = 203          # the account may only reduce exposure for now (restrict-open; the rule is cited)
    TRADING_RESTRICTED = 204          # the account may not trade for now (restrict-open-close; the rule is cited)
    ACCOUNT_FROZEN = 205              # an operator froze the account's trading or withdrawals (R-5.2.2.3-freeze)
    ACCOUNT_LOCKED = 206              # the account is locked: suspected credential theft (R-4.1.4-account-lock)
    ASSET_FROZEN = 207                # an operator froze the asset's trading or withdrawals (R-5.2.2.3-freeze)
    PRICE_OUTSIDE_BAND = 208          # a limit price further from the index than the band (R-4.2.7-price-band)
    MARKET_HALTED = 209               # the market is halted (an operator, or its circuit breaker): cancels only
    MARKET_REDUCE_ONLY = 210          # the market takes only orders that reduce a position (可平不可開)
    CIRCUIT_BREAKER = 211             # the market's circuit breaker tripped: halted or reduce-only while it cools
    UNKNOWN_WITHDRAWAL = 212          # no withdrawal with that id on this account
    WITHDRAWAL_FINAL = 213            # the withdrawal is confirmed or rejected already
    WITHDRAWAL_NOT_QUEUED = 214       # only a queued withdrawal waits for an approval
    REVIEW_NOT_DUE = 215              # a large withdrawal is approved only after its review period (4.4.3)
    WITHDRAWAL_NOT_APPROVED = 216     # it waits for its review: nothing can be sent yet
    WITHDRAWAL_ALREADY_SENT = 217     # its transaction is out: it can only be confirmed or fail
    WITHDRAWAL_NOT_SENT = 218         # nothing was broadcast yet to confirm
    WITHDRAWALS_FROZEN = 219          # the account's or the asset's withdrawals are frozen (R-5.2.2.3-freeze)
    CREDENTIAL_CHANGED = 220          # within 24 h of a credential change (R-4.4.3-credential-change)
    BLOCKLISTED_DESTINATION = 221     # the destination is on the high-risk blocklist (R-5.2.2.4-blocklist)
    OPERATOR_REJECTED = 222           # an operator rejected the withdrawal (its funds came back)
    BROADCAST_FAILED = 223            # the transaction failed or was dropped (its funds came back)
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
    NO_MARGIN_BOOK = 413              # nothing was ever transferred into this margin book
    NO_LENDING_POOL = 414             # the asset is known but no pool lends it
    UNKNOWN_POOL_REQUEST = 415        # a shard asked the pool for a kind of request it does not serve
    # 5xx: perpetual futures (rulebook 4.2.7, 4.3.1, 4.3.2, 5.2.2.5)
    INVALID_LEVERAGE = 500            # leverage below 1
    LEVERAGE_ABOVE_TIER = 501         # above the risk limit tier's maximum leverage (1 / its initial rate)
    INVALID_RISK_LIMIT = 502          # no such tier in this market
    RISK_LIMIT_BELOW_POSITION = 503   # the position and its open orders would not fit under the lower limit
    POSITION_OPEN = 504               # the margin mode changes only with no position and no open order
    NO_MARK_PRICE = 505               # the market has no mark price yet
    MARK_INDEX_DIVERGED = 506         # the mark is further from the index than the market's band
    PRICE_OUTSIDE_LISTING_BAND = 507  # a new contract's first minutes: the price is outside index +- the band
    REDUCE_ONLY_WOULD_INCREASE = 508  # a reduce-only order would open or grow the position
    POSITION_LIMIT_EXCEEDED = 509     # the position with this side's open orders would exceed the market's limit
    RISK_LIMIT_EXCEEDED = 510         # ... or its notional the risk limit's ceiling
    NOT_SETTLEMENT_ASSET = 511        # a perpetual wallet holds only its markets' settlement asset
    NO_POSITION = 512                 # no open position (of that margin mode) in that market
    POSITION_NOT_LIQUIDATABLE = 513   # equity is above maintenance at the mark
    PERP_ORDERS_OPEN = 514            # the account's orders in those markets must be cancelled first
    UNKNOWN_LIQUIDATION = 515         # no such liquidation on this shard (or a number already used)
    LIQUIDATION_NOT_DONE = 516        # the liquidation still holds lots
    CANNOT_DELEVERAGE = 517           # the position is smaller than the lots asked to deleverage
    FEE_SWEEP_AHEAD = 518             # the fund claims more swept fees than this shard ever moved
    INVALID_MAINTENANCE_RATE = 519    # below the configured rate, or the top tier's initial rate would pass 100%
    COMPENSATION_OUT_OF_ORDER = 520   # a compensation past the next one the shard expects from that fund
    FUND_INSUFFICIENT = 521           # the market's insurance fund holds less than the compensation
    # 6xx: the OTC desk (exchange/otc, seed 000)
    OTC_UNKNOWN_PAIR = 600            # the desk does not quote that market
    UNKNOWN_PAYMENT_METHOD = 601      # not one of the desk's payment methods
    OTC_BELOW_MINIMUM = 602           # smaller than the desk's minimum: the order book is the place for it
    OTC_ABOVE_MAXIMUM = 603           # larger than the desk quotes at once
    UNKNOWN_QUOTE = 604               # no quote with that id for this account
    QUOTE_EXPIRED = 605               # the quote's time to live ran out first
    QUOTE_ALREADY_ACCEPTED = 606      # a quote is accepted once
    OTC_INVENTORY_SHORT = 607         # the desk cannot deliver that much now (its free inventory)
    OTC_CLIENT_NOT_VERIFIED = 608     # a fiat-paid trade is for the desk's verified clients only
    FIAT_PAYS_BUYS_ONLY = 609         # fiat methods pay for buying; a seller is paid in the quote asset
    OTC_NOT_AWAITING_PAYMENT = 610    # no accepted, fiat-paid trade waits for this payment (it is refunded)
    THIRD_PARTY_PAYMENT = 611         # the payer is not the client's verified name (refused and refunded)
    OTC_CLIENT_BALANCE_SHORT = 612    # a crypto-paid trade: the client's available balance cannot pay it
    OTC_CROSSING_OUT_OF_ORDER = 613   # a desk crossing past the next one the shard expects
    OTC_CREDIT_NOT_APPROVED = 614     # T+1 settlement is for the desk's approved institutions only
    OTC_CREDIT_LIMIT = 615            # the trade would take the client past its credit limit
    OTC_CREDIT_OVERDUE = 616          # an overdue credit trade blocks new credit trades
    OTC_NOT_YOURS_TO_PAY = 617        # no delivered credit trade of this account awaits a crypto payment
    OTC_NOT_AWAITING_APPROVAL = 618   # no paid trade waits for an operator's delivery approval
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
    UNKNOWN_OPERATOR = 803            # the operator is not in the rulebook's [operators]
    OPERATOR_NOT_PERMITTED = 804      # the operator's roles do not permit this command (exchange.risk.admin)
    REASON_REQUIRED = 805             # an operator's command must say why
    # 9xx: the service itself
    STORAGE_FULL = 900                # the journal has no room left: nothing new is accepted, reads still work
    OVERLOADED = 901                  # a queue for work in flight is at its configured maximum ([limits]); retry later


    @property
    def explanation(self) -> str:
        """One line for people: what failed (the client shows it beside the name)."""
        return EXPLANATIONS[self]


EXPLANATIONS: dict[Reason, str] = {
    Reason.TEXT_NOT_PRINTABLE: "a text field holds a control or unprintable character",
    Reason.INVALID_FREEZE_SCOPE: "a freeze scope is 0 (lift), 1 (trading), 2 (withdrawals) or 3 (both)",
    Reason.INVALID_RESTRICTION: "a restriction is level 0 (lift), 2 or 3, ending after it starts",
    Reason.UNKNOWN_RULE: "no rule with this id in the risk rulebook",
    Reason.INVALID_RULE_VALUE: "the rule has no such parameter, or the value is not one it can hold",
    Reason.INVALID_MARKET_MODE: "a market mode is 0 (open), 1 (reduce-only) or 2 (halted)",
    Reason.UNKNOWN_WITHDRAWAL: "no withdrawal with this id on this account",
    Reason.WITHDRAWAL_FINAL: "the withdrawal is confirmed or rejected already",
    Reason.WITHDRAWAL_NOT_QUEUED: "only a withdrawal queued for review waits for an approval",
    Reason.REVIEW_NOT_DUE: "a large withdrawal can be approved only after its review period",
    Reason.WITHDRAWAL_NOT_APPROVED: "the withdrawal is still under review: nothing can be sent",
    Reason.WITHDRAWAL_ALREADY_SENT: "the withdrawal's transaction is out: it can only be confirmed or fail",
    Reason.WITHDRAWAL_NOT_SENT: "nothing was broadcast for this withdrawal yet",
    Reason.WITHDRAWALS_FROZEN: "the account's or the asset's withdrawals are frozen",
    Reason.CREDENTIAL_CHANGED: "no withdrawal within 24 hours of a password or 2FA change",
    Reason.BLOCKLISTED_DESTINATION: "the destination is on the high-risk address blocklist",
    Reason.OPERATOR_REJECTED: "an operator rejected the withdrawal; its funds are back",
    Reason.BROADCAST_FAILED: "the withdrawal's transaction failed; its funds are back",
    Reason.INVALID_DESTINATION: "a destination address is 1..128 characters",
    Reason.INVALID_SETTLEMENT: "a settlement is 1 (sent, with a txid), 2 (confirmed) or 3 (failed)",
    Reason.RATE_LIMITED: "too many requests or unfilled orders for now: the account's bucket refills over time",
    Reason.TOO_MANY_OPEN_ORDERS: "the account has as many open orders as its equity allows",
    Reason.OPENING_RESTRICTED: "the account may only reduce its positions for now (see the rule cited)",
    Reason.TRADING_RESTRICTED: "the account may not trade for now (see the rule cited); cancels still work",
    Reason.ACCOUNT_FROZEN: "an operator froze this account's trading or withdrawals",
    Reason.ACCOUNT_LOCKED: "the account is locked (suspected credential theft): unlock it with support",
    Reason.ASSET_FROZEN: "an operator froze this asset's trading or withdrawals",
    Reason.PRICE_OUTSIDE_BAND: "the limit price is further from the index than the market's price band",
    Reason.MARKET_HALTED: "the market is halted: only cancels are accepted",
    Reason.MARKET_REDUCE_ONLY: "the market accepts only orders that reduce a position",
    Reason.CIRCUIT_BREAKER: "the market's circuit breaker tripped: no new positions until it cools or reopens",
    Reason.UNKNOWN_OPERATOR: "no such operator in the risk rulebook",
    Reason.OPERATOR_NOT_PERMITTED: "the operator's roles do not permit this command",
    Reason.REASON_REQUIRED: "an operator's command must give a reason",
    Reason.MALFORMED_COMMAND: "the command could not be decoded into any message",
    Reason.UNKNOWN_MARKET: "no such market (or the market is not open to this command)",
    Reason.UNKNOWN_ACCOUNT: "no such account: open it first",
    Reason.UNKNOWN_ASSET: "no such asset (or not one this book or market trades)",
    Reason.NON_POSITIVE_QUANTITY: "the quantity must be positive",
    Reason.NON_POSITIVE_PRICE: "the price must be positive",
    Reason.OFF_TICK_PRICE: "the price is not a multiple of the market's tick size",
    Reason.OFF_LOT_QUANTITY: "the quantity is not a multiple of the market's lot size",
    Reason.BELOW_MIN_SIZE: "the quantity is below the market's minimum order size",
    Reason.ABOVE_MAX_SIZE: "the quantity is above the market's maximum order size",
    Reason.NON_POSITIVE_AMOUNT: "the amount must be positive",
    Reason.ACCOUNT_EXISTS: "an account with this id is already open",
    Reason.UNKNOWN_FEE_TIER: "no such fee tier",
    Reason.DUPLICATE_CLIENT_ORDER_ID: "an open order of this account already has this client order id",
    Reason.VALUE_OUT_OF_RANGE: "a number (or a result computed from it) does not fit in signed 64 bits",
    Reason.INVALID_REQUEST_ID: "the request id must be an int in 1..2**63-1 or 1..64 printable ASCII characters",
    Reason.REQUEST_ID_REUSED: "this request id was already used for a different command",
    Reason.INVALID_CLIENT_ORDER_ID: "the client order id must be empty or 1..36 of [A-Za-z0-9._:/-]",
    Reason.STRING_TOO_LONG: "a name (asset, market, tier, level) is longer than 32 characters",
    Reason.FIELD_NOT_AN_INTEGER: "a numeric field holds something other than an integer",
    Reason.FIELD_NOT_A_STRING: "a name field holds something other than a string",
    Reason.NAME_NOT_PRINTABLE_ASCII: "a name field has a character outside printable ASCII",
    Reason.FIELD_NOT_A_FLAG: "a flag field must be exactly true or false",
    Reason.INVALID_PRICE_VECTOR: "the price vector must hold one integer price per asset",
    Reason.UNKNOWN_COMMAND: "not a command this exchange accepts",
    Reason.INVALID_ACCOUNT_ID: "an account id must be positive",
    Reason.NEGATIVE_TIMESTAMP: "the command's timestamp is negative",
    Reason.INVALID_SIDE: "the side must be buy (1) or sell (2)",
    Reason.INVALID_ORDER_TYPE: "the order type must be limit (1) or market (2)",
    Reason.INVALID_TIME_IN_FORCE: "the time in force must be GTC, IOC, FOK or post-only (1..4)",
    Reason.INVALID_STP_MODE: "the self-trade prevention mode must be 0..3",
    Reason.MARKET_ORDER_POST_ONLY: "a market order cannot be post-only",
    Reason.INVALID_LIQUIDATION_STEP: "a liquidation step is counted from 1",
    Reason.INSUFFICIENT_BALANCE: "not enough available balance for this",
    Reason.POST_ONLY_WOULD_TAKE: "the post-only order would have taken liquidity",
    Reason.FOK_CANNOT_FILL: "the fill-or-kill order cannot fill completely now",
    Reason.NO_LIQUIDITY: "no opposite orders (or no reference price) for a market order",
    Reason.ORDER_NOT_FOUND: "no such open order",
    Reason.NOT_OWNER: "the order belongs to another account",
    Reason.AMEND_NO_CHANGE: "the amend changes neither price nor quantity",
    Reason.AMEND_BELOW_FILLED: "the new quantity is not above what has already filled",
    Reason.AMEND_IN_PROGRESS: "another amend of this order is still in flight",
    Reason.MARGIN_NOT_ENABLED: "margin is not enabled for this account (or this market)",
    Reason.MARGIN_ALREADY_ENABLED: "margin is already enabled for this account",
    Reason.UNKNOWN_USER_LEVEL: "no such user level",
    Reason.UNKNOWN_LEVERAGE_TIER: "no such leverage tier for this user level",
    Reason.ABOVE_BORROW_LIMIT: "the borrow would exceed the limit of the user level and leverage tier",
    Reason.POOL_INSUFFICIENT_LIQUIDITY: "the lending pool has not enough cash for the whole amount",
    Reason.BELOW_INITIAL_MARGIN_LEVEL: "this would leave the margin level below the initial line",
    Reason.NO_INDEX_PRICE: "an index price this check needs is not known yet",
    Reason.NOTHING_OWED: "nothing is owed in this asset",
    Reason.ACCOUNT_IN_LIQUIDATION: "the liquidator has taken this margin book over",
    Reason.NOT_BELOW_LIQUIDATION_LINE: "the margin book is not below the liquidation line",
    Reason.NOT_IN_LIQUIDATION: "the margin book is not in liquidation",
    Reason.NO_SUPPLY: "more than this account has supplied to the pool",
    Reason.NO_MARGIN_BOOK: "this margin book is empty: transfer funds into it first",
    Reason.NO_LENDING_POOL: "no lending pool lends this asset",
    Reason.UNKNOWN_POOL_REQUEST: "the lending pool does not serve this kind of request",
    Reason.INVALID_LEVERAGE: "leverage must be at least 1",
    Reason.LEVERAGE_ABOVE_TIER: "the leverage is above what this risk limit allows",
    Reason.INVALID_RISK_LIMIT: "no such risk limit tier in this market",
    Reason.RISK_LIMIT_BELOW_POSITION: "the position and its open orders exceed that risk limit",
    Reason.POSITION_OPEN: "close the position and cancel its orders before changing the margin mode",
    Reason.NO_MARK_PRICE: "this perpetual market has no mark price yet",
    Reason.MARK_INDEX_DIVERGED: "the mark price is too far from the index: orders wait until it is back",
    Reason.PRICE_OUTSIDE_LISTING_BAND: "a new contract trades within a band around the index for its first minutes",
    Reason.REDUCE_ONLY_WOULD_INCREASE: "a reduce-only order may only shrink the position",
    Reason.POSITION_LIMIT_EXCEEDED: "the position would exceed the market's position limit",
    Reason.RISK_LIMIT_EXCEEDED: "the position would exceed the risk limit: raise it first",
    Reason.NOT_SETTLEMENT_ASSET: "perpetual wallets hold only the settlement asset",
    Reason.NO_POSITION: "no open position of that kind in this market",
    Reason.POSITION_NOT_LIQUIDATABLE: "the position's equity is above its maintenance margin at the mark",
    Reason.PERP_ORDERS_OPEN: "cancel the account's orders in those markets first",
    Reason.UNKNOWN_LIQUIDATION: "no such liquidation here (or its number is taken)",
    Reason.LIQUIDATION_NOT_DONE: "the liquidation still holds lots",
    Reason.CANNOT_DELEVERAGE: "the position is smaller than the lots asked to deleverage",
    Reason.FEE_SWEEP_AHEAD: "the fund claims more swept fees than this shard ever moved",
    Reason.OTC_UNKNOWN_PAIR: "the OTC desk does not quote that market",
    Reason.UNKNOWN_PAYMENT_METHOD: "not one of the OTC desk's payment methods",
    Reason.OTC_BELOW_MINIMUM: "smaller than the OTC desk's minimum: use the order book",
    Reason.OTC_ABOVE_MAXIMUM: "larger than the OTC desk quotes at once",
    Reason.UNKNOWN_QUOTE: "no OTC quote with that id for this account",
    Reason.QUOTE_EXPIRED: "the quote's time to live ran out before it was accepted",
    Reason.QUOTE_ALREADY_ACCEPTED: "an OTC quote is accepted once",
    Reason.OTC_INVENTORY_SHORT: "the OTC desk cannot deliver that much now",
    Reason.OTC_CLIENT_NOT_VERIFIED: "a fiat-paid OTC trade is for the desk's verified clients only",
    Reason.FIAT_PAYS_BUYS_ONLY: "fiat pays for buying; an OTC seller is paid in the quote asset",
    Reason.OTC_NOT_AWAITING_PAYMENT: "no accepted fiat-paid OTC trade waits for this payment: it is refunded",
    Reason.THIRD_PARTY_PAYMENT: "the payer is not the client's verified name: refused and refunded",
    Reason.OTC_CLIENT_BALANCE_SHORT: "your available balance cannot pay for this trade",
    Reason.OTC_CROSSING_OUT_OF_ORDER: "the desk's crossings apply in their numbered order: an earlier one is missing",
    Reason.OTC_CREDIT_NOT_APPROVED: "T+1 settlement is for the desk's approved institutional clients only",
    Reason.OTC_CREDIT_LIMIT: "this trade would take you past your credit limit",
    Reason.OTC_CREDIT_OVERDUE: "an overdue credit trade blocks new credit trades until it is paid",
    Reason.OTC_NOT_YOURS_TO_PAY: "no delivered credit trade of yours awaits payment with that id",
    Reason.OTC_NOT_AWAITING_APPROVAL: "no paid trade waits for a delivery approval with that id",
    Reason.INVALID_MAINTENANCE_RATE: "a maintenance rate only rises from the configured one; top tier initial <= 100%",
    Reason.COMPENSATION_OUT_OF_ORDER: "compensations from a fund reach a shard in their order: an earlier one first",
    Reason.FUND_INSUFFICIENT: "the market's insurance fund holds less than the compensation",
    Reason.NOT_PERMITTED: "this command is not allowed through this door",
    Reason.ACCOUNT_NOT_IN_SCOPE: "this client may not act for this account",
    Reason.WRONG_SHARD: "the account belongs to another shard",
    Reason.STORAGE_FULL: "the journal is full: nothing new is accepted (reads still work)",
    Reason.OVERLOADED: "too much work in flight: retry later",
}


class CloseReason(IntEnum):
    """Why an order left the book (or never rested)."""

    FILLED = 1
    CANCELLED = 2
    EXPIRED_IOC = 3          # IOC/market remainder that could not fill
    EXPIRED_STP = 4          # self-trade prevention expired this order
    REJECTED = 5             # rejected by the market (post-only, FOK, no liquidity)
