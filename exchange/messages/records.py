"""Commands (imperative) and events (past tense) of the spot core, and the one
registry of message types.

Messages are ``typing.NamedTuple``s: immutable, cheap to build on the hot path
(a frozen dataclass with slots costs about three times as much to construct in
CPython 3.11, measured with timeit), picklable for Ray and encodable as arrays
for the journal.

Every message type is declared here once, under ``@message(code, kind)``: its
stable wire ``code`` (in journals and snapshots: never changed, never reused;
1-19 client commands, 20-39 shard -> market requests, 40-59 spot events, 60-79
margin and liquidator commands, 80-89 shard -> pool requests, 90-119 margin and
lending events) and its ``MessageKind``. Everything else is derived from
``MESSAGES``: the codec's ``TYPE_CODES``/``TYPES_BY_CODE``, validation's
``CLIENT_COMMAND_TYPES``/``SCHEMAS`` and the fast ``__reduce__`` each type gets.
A duplicate code or a type registered twice fails at import.

Public commands and events carry prices in quote minor units per one whole
base unit and quantities in base minor units, so a user never needs tick or lot
arithmetic; the engine converts to ticks and lots and refuses values that are
not on the grid (OFF_TICK_PRICE, OFF_LOT_QUANTITY). The outer layer stamps
``ts_ns``; ``request_id`` is the client's idempotency key (unique per account).

The event envelope: a market or pool event starts ``market, seq, ts_ns``; an
event answering a request starts ``request_id, ts_ns`` with that request's
stamp (``OrderAccepted``: the market event's that showed the order live).
Core v2 §3 gave it to ``OrderBooked``, ``OrderAmended``, ``RequestRejected``,
``LiquidationUpdate``, ``AccountOpened``, ``BalanceChanged``,
``OrderAccepted``, ``MarginTransferred`` and ``MarginEnabled``. Two kinds go
without, by design: ``OrderRejected`` (a refusal changes nothing, and the
door refuses before a command is stamped, so it has no time in the shard's
history) and ``MarginLevelChanged`` (a price scan's notification, no request
at hand).
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class MessageKind(IntEnum):
    """Who sends a message type, which decides how it is checked."""
    COMMAND = 1     # a client's (or the liquidator's) command through the shard's door: SCHEMAS checks its fields
    REQUEST = 2     # a shard's request to a market or the lending pool (built from admitted commands)
    EVENT = 3       # what happened, from a shard, a market or a pool


COMMAND, REQUEST, EVENT = MessageKind.COMMAND, MessageKind.REQUEST, MessageKind.EVENT
CODE_MAX = 2**15 - 1

MESSAGES: dict[type, tuple[int, MessageKind]] = {}     # type -> (code, kind), in declaration order
_BY_CODE: dict[int, type] = {}


def _reduce(message):
    return (type(message), tuple(message))


def message(code: int, kind: MessageKind):
    """Register the NamedTuple it decorates under ``code`` (stable, unique) and ``kind``.

    Also installs a direct ``__reduce__``: NamedTuple's default pickling goes
    through copyreg and ``__getnewargs__`` (about 1.6 us per message); this
    halves it, and messages cross process boundaries by the hundred thousand
    per second. Raises ValueError/TypeError at import for a bad registration."""
    kind = MessageKind(kind)
    if type(code) is not int or not 0 < code <= CODE_MAX:
        raise ValueError(f"message code {code!r} not in 1..{CODE_MAX}")

    def register(cls: type) -> type:
        if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise TypeError(f"{cls.__name__} is not a NamedTuple")
        if cls in MESSAGES:
            raise ValueError(f"{cls.__name__} registered twice")
        if code in _BY_CODE:
            raise ValueError(f"code {code} of {cls.__name__} is {_BY_CODE[code].__name__}'s")
        cls.__reduce__ = _reduce
        MESSAGES[cls] = (code, kind)
        _BY_CODE[code] = cls
        return cls
    return register


def types_of(kind: MessageKind) -> tuple[type, ...]:
    """The registered types of one kind, in declaration order."""
    return tuple(cls for cls, (_, k) in MESSAGES.items() if k is kind)


class LiquidationStage(IntEnum):
    """How far the shard got with a liquidator's command (``LiquidationUpdate.stage``).
    Journaled: numbers never change or get reused. Names are the strings the
    stage was before Core v2 in upper case (``LiquidationStage[old.upper()]``)."""
    STARTED = 1        # the book is taken over; detail: its open orders ((order id, market), ...)
    REPAID = 2         # a step repaid from what the book holds (no order placed)
    ORDER = 3          # a step placed an IOC order; detail: (market, side, price, quantity)
    IDLE = 4           # a step found nothing the book can trade in that market
    COVERED = 5        # the insurance fund credited the book; detail: (asset, amount)
    WRITTEN_OFF = 6    # the pool is asked to write the rest off; detail: (asset, amount owed)
    FINISHED = 7       # the book is handed back


# ---- client commands -------------------------------------------------------

@message(1, COMMAND)
class OpenAccount(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    fee_tier: str = ""          # "" = the configured default tier


@message(2, COMMAND)
class Deposit(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int                 # asset minor units


@message(3, COMMAND)
class Withdraw(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int


@message(4, COMMAND)
class PlaceOrder(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    side: int                   # Side
    order_type: int             # OrderType
    price: int                  # quote minor per whole base; for MARKET: protection price or 0
    quantity: int               # base minor units
    tif: int = 1                # TimeInForce (GTC)
    client_order_id: str = ""
    stp: int = 0                # StpMode; 0 = config default


@message(5, COMMAND)
class CancelOrder(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    order_id: int = 0
    client_order_id: str = ""   # used when order_id is 0


@message(6, COMMAND)
class AmendOrder(NamedTuple):
    """Change price and/or total quantity. ``quantity`` is the new *total*
    order quantity (filled part included, as Binance and FIX do), so a fill
    racing the amend can never leave more open than asked. Lowering quantity at
    the same price keeps time priority; a price change or increase loses it."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    order_id: int
    price: int                  # new price (0 = unchanged)
    quantity: int               # new total quantity (0 = unchanged)


# ---- shard -> market requests (ticks and lots) ----------------------------

@message(20, REQUEST)
class SubmitOrder(NamedTuple):
    order_id: int
    account_id: int
    side: int
    price: int                  # limit in ticks (protection limit for market orders)
    quantity: int               # lots
    tif: int
    is_market: bool
    stp: int
    maker_ppm: int
    taker_ppm: int
    ts_ns: int
    reduce_only: bool = False   # a perpetual order that may only shrink its position (a reduce-only market takes it)


@message(21, REQUEST)
class CancelRequest(NamedTuple):
    request_id: int | str
    order_id: int
    account_id: int
    ts_ns: int


@message(22, REQUEST)
class AmendRequest(NamedTuple):
    request_id: int | str
    order_id: int
    account_id: int
    price: int                  # ticks (0 = unchanged)
    quantity: int               # new total, lots (0 = unchanged)
    taker_ppm: int
    ts_ns: int


# ---- events ----------------------------------------------------------------

@message(40, EVENT)
class AccountOpened(NamedTuple):
    request_id: int | str
    ts_ns: int                  # the request's (the shard's stamp)
    account_id: int
    fee_tier: str


@message(41, EVENT)
class BalanceChanged(NamedTuple):
    """A deposit or withdrawal moved an account's balance (fills are in Fill)."""
    request_id: int | str
    ts_ns: int                  # the request's
    account_id: int
    asset: str
    delta: int
    available: int
    held: int


@message(42, EVENT)
class OrderAccepted(NamedTuple):
    request_id: int | str
    ts_ns: int                  # the market event's that first showed the order live
    order_id: int
    account_id: int
    market: str
    side: int
    price: int
    quantity: int
    client_order_id: str
    order_type: int = 1         # OrderType (LIMIT); defaults: events from before these two decode
    tif: int = 1                # TimeInForce (GTC)


@message(43, EVENT)
class OrderRejected(NamedTuple):
    request_id: int | str
    account_id: int
    reason: int                 # Reason
    order_id: int = 0
    rule: str = ""              # the risk rule that refused it (``exchange.risk.rulebook``), if one did
    market: str = ""            # a placement the market refused (post-only, FOK): the order as placed,
    side: int = 0               # for the user stream's REJECTED report (public units); else empty
    price: int = 0
    quantity: int = 0
    client_order_id: str = ""
    order_type: int = 1
    tif: int = 1


@message(44, EVENT)
class Fill(NamedTuple):
    market: str
    seq: int                    # per-market sequence number
    ts_ns: int
    price: int                  # quote minor per whole base
    quantity: int               # base minor
    taker_order_id: int
    taker_account: int
    taker_side: int
    maker_order_id: int
    maker_account: int
    taker_fee: int              # quote minor, paid by the taker
    maker_fee: int              # quote minor; negative = rebate to the maker


@message(45, EVENT)
class OrderBooked(NamedTuple):
    """An order (or its unfilled rest) now rests on the book."""
    market: str
    seq: int
    ts_ns: int                  # the submit's (or the amend's)
    order_id: int
    account_id: int
    price: int
    remaining: int


@message(46, EVENT)
class OrderClosed(NamedTuple):
    market: str
    seq: int
    ts_ns: int
    order_id: int
    account_id: int
    reason: int                 # CloseReason
    remaining: int              # base minor units left unfilled
    reject_reason: int = 0      # Reason when reason is REJECTED


@message(47, EVENT)
class OrderAmended(NamedTuple):
    market: str
    seq: int
    ts_ns: int                  # the amend's
    request_id: int | str
    order_id: int
    account_id: int
    price: int
    remaining: int
    kept_priority: bool


@message(48, EVENT)
class RequestRejected(NamedTuple):
    """The market refused a cancel or amend (order gone, not the owner...)."""
    market: str
    seq: int
    ts_ns: int                  # the cancel's or amend's
    request_id: int | str
    order_id: int
    account_id: int
    reason: int


# ---- margin trading and lending (issue 6) ------------------------------------
# ``market`` on a margin command names the margin book: "" is the account's
# cross-margin book, a market name its isolated book for that market.

@message(60, COMMAND)
class EnableMargin(NamedTuple):
    """Open margin trading for an account (seed 001: the user agrees to the risk
    terms). ``user_level``/``leverage_tier`` pick the borrow-limit row and column."""
    request_id: int | str
    ts_ns: int
    account_id: int
    user_level: str = ""        # "" = config default
    leverage_tier: str = ""     # "" = config default


@message(61, COMMAND)
class TransferMargin(NamedTuple):
    """Move ``amount`` between the spot account and a margin book, atomically.
    ``to_margin`` True: spot -> margin; False: margin -> spot (refused under the initial line)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    to_margin: bool = True
    market: str = ""


@message(62, COMMAND)
class Borrow(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    market: str = ""


@message(63, COMMAND)
class Repay(NamedTuple):
    """Repay up to ``amount`` (interest first, then principal); only what is owed is taken."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    market: str = ""


@message(64, COMMAND)
class PlaceMarginOrder(NamedTuple):
    """A spot order funded from a margin book. ``isolated`` picks the market's
    isolated book instead of the cross book; ``auto_borrow`` borrows what the
    hold lacks; ``auto_repay`` repays debt in the asset the order acquires."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    side: int
    order_type: int
    price: int
    quantity: int
    tif: int = 1
    isolated: bool = False
    auto_borrow: bool = True
    auto_repay: bool = True
    client_order_id: str = ""


@message(65, COMMAND)
class SupplyToPool(NamedTuple):
    """Lend ``amount`` of the spot balance to the asset's pool (earns the supply rate)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int


@message(66, COMMAND)
class WithdrawFromPool(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int


# Sent by the LiquidatorActor (it owns these request ids).

@message(67, COMMAND)
class StartLiquidation(NamedTuple):
    """Take a margin book over if it is at or under the liquidation line at ``prices``."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str                 # the margin book
    prices: tuple               # index price per asset index (quote minor per whole unit; 0 = unknown)


@message(68, COMMAND)
class LiquidationStep(NamedTuple):
    """Place one IOC order in ``trade_market`` that sells collateral for the debt
    asset (or buys back a borrowed base), limit = index -/+ ``step`` x step width."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    trade_market: str
    step: int
    prices: tuple


@message(69, COMMAND)
class CoverShortfall(NamedTuple):
    """Credit ``amount`` from the insurance fund to a book in liquidation and repay with it."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    asset: str
    amount: int


@message(70, COMMAND)
class FinishLiquidation(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str


@message(71, COMMAND)
class WriteOffDebt(NamedTuple):
    """The insurance fund cannot cover what a liquidated book still owes in
    ``asset``: the pool writes the loan off (its suppliers carry the loss)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    asset: str


# ---- shard -> lending pool requests ------------------------------------------

@message(80, REQUEST)
class PoolRequest(NamedTuple):
    kind: int                   # POOL_BORROW / POOL_REPAY / POOL_SUPPLY / POOL_WITHDRAW / POOL_ACCRUE
    account_id: int
    book: str                   # margin book ("" cross, or market) for borrow/repay
    asset: str
    ref: int                    # the shard's reference (matches the answer to what waits for it)
    amount: int
    ts_ns: int


POOL_BORROW, POOL_REPAY, POOL_SUPPLY, POOL_WITHDRAW, POOL_ACCRUE, POOL_WRITE_OFF = 1, 2, 3, 4, 5, 6
LENDING = "lending"             # the pool's link name: its events carry market="lending"


# ---- lending pool events (market="lending", seq per pool actor) ----------------

@message(90, EVENT)
class Borrowed(NamedTuple):
    market: str
    seq: int
    ts_ns: int
    account_id: int
    book: str
    asset: str
    ref: int
    amount: int
    scaled: int                 # the loan's debt shares after the borrow
    principal: int              # the loan's principal after the borrow
    index: int                  # the pool's borrow index now


@message(91, EVENT)
class Repaid(NamedTuple):
    market: str
    seq: int
    ts_ns: int
    account_id: int
    book: str
    asset: str
    ref: int
    offered: int
    taken: int                  # what was owed at most; offered - taken goes back
    interest: int               # the part of ``taken`` that paid interest
    scaled: int
    principal: int
    index: int


@message(100, EVENT)
class DebtWrittenOff(NamedTuple):
    """A loan the pool gave up on (bad debt nobody could cover): ``amount`` was owed."""
    market: str
    seq: int
    ts_ns: int
    account_id: int
    book: str
    asset: str
    ref: int
    amount: int
    scaled: int                 # 0: the loan is gone
    principal: int
    index: int


@message(92, EVENT)
class Supplied(NamedTuple):
    market: str
    seq: int
    ts_ns: int
    account_id: int
    asset: str
    ref: int
    amount: int
    shares: int                 # the supplier's shares after


@message(93, EVENT)
class SupplyWithdrawn(NamedTuple):
    market: str
    seq: int
    ts_ns: int
    account_id: int
    asset: str
    ref: int
    amount: int
    shares: int


@message(94, EVENT)
class LendingRefused(NamedTuple):
    market: str
    seq: int
    ts_ns: int
    account_id: int
    book: str
    asset: str
    ref: int
    kind: int
    amount: int
    reason: int


@message(95, EVENT)
class InterestAccrued(NamedTuple):
    """The pool's hour turned: a new borrow index (to every shard: account_id 0)."""
    market: str
    seq: int
    ts_ns: int
    account_id: int             # always 0: for everyone
    asset: str
    hour: int
    index: int
    borrow_rate_ppm: int        # in force for this hour
    supply_rate_ppm: int
    utilization_ppm: int


# ---- margin events to the account ----------------------------------------------

@message(96, EVENT)
class MarginTransferred(NamedTuple):
    request_id: int | str
    ts_ns: int                  # the request's
    account_id: int
    market: str
    asset: str
    amount: int                 # + into the margin book, - out of it
    margin_available: int
    spot_available: int


@message(97, EVENT)
class MarginEnabled(NamedTuple):
    request_id: int | str
    ts_ns: int                  # the request's
    account_id: int
    user_level: str
    leverage_tier: str


@message(98, EVENT)
class MarginLevelChanged(NamedTuple):
    """A notification on the account's stream: the book's level crossed a line.
    ``zone``: 0 healthy, 1 warning, 2 margin call, 3 liquidation."""
    account_id: int
    market: str
    zone: int
    level_ppm: int


@message(99, EVENT)
class LiquidationUpdate(NamedTuple):
    """The liquidator's progress on a book (started, step, shortfall covered, finished)."""
    request_id: int | str
    ts_ns: int                  # the liquidator's command's
    account_id: int
    market: str
    stage: int                  # LiquidationStage
    level_ppm: int              # margin level when the stage was reached (0 = no debt)
    detail: tuple = ()


# ---- perpetual futures (exchange/perp, issue 14) ----------------------------------------

@message(110, COMMAND)
class TransferPerp(NamedTuple):
    """Move ``amount`` of the settlement asset between the spot account and its perpetual
    wallet (``to_perp``: into it; else out of it)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    to_perp: bool = True


@message(111, COMMAND)
class SetPerpLeverage(NamedTuple):
    """The leverage the account's orders in ``market`` open at (1 .. the risk limit's maximum)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    leverage: int


@message(112, COMMAND)
class SetRiskLimit(NamedTuple):
    """Raise or lower the account's risk limit in ``market``: the tier (0 ..) whose ceiling
    caps the position and whose initial rate caps the leverage (rulebook 4.3.2)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    risk_tier: int


@message(113, COMMAND)
class SetMarginMode(NamedTuple):
    """Isolated (the position has its own margin) or cross (the wallet stands behind it);
    only with no position and no open order in ``market``."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    isolated: bool


@message(114, COMMAND)
class PlacePerpOrder(NamedTuple):
    """An order on a perpetual market; ``reduce_only`` may only shrink the position."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    side: int
    order_type: int
    price: int
    quantity: int
    tif: int = 1
    reduce_only: bool = False
    client_order_id: str = ""


@message(115, COMMAND)
class CancelPerpOrder(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    order_id: int


@message(130, EVENT)
class PerpTransferred(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int                 # > 0 into the perpetual wallet, < 0 out of it
    perp_balance: int           # the wallet's cash afterwards


@message(131, EVENT)
class PerpSettingsChanged(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    leverage: int
    risk_tier: int
    isolated: bool


@message(132, EVENT)
class PositionChanged(NamedTuple):
    """A fill moved a position: its size and entry notional afterwards, the PnL it realized
    and the fee paid (quote minor units), and its isolated margin afterwards."""
    market: str
    seq: int
    ts_ns: int
    account_id: int
    order_id: int
    size: int                   # signed, base minor units
    entry_notional: int         # signed, quote minor units
    realized: int
    fee: int
    margin: int


@message(133, EVENT)
class FundingDue(NamedTuple):
    """A perpetual market's funding at ``ts_ns``: every position pays or receives ``rate``
    (``FUNDING_ONE`` units) of its value at ``mark`` (ticks); a market event, in seq order."""
    market: str
    seq: int
    ts_ns: int
    rate: int
    mark: int


@message(134, EVENT)
class FundingPaid(NamedTuple):
    """What one account's position paid (> 0) or received (< 0) at a funding."""
    market: str
    seq: int
    ts_ns: int
    account_id: int
    rate: int
    amount: int


class PerpLiquidationStage(IntEnum):
    """``PerpLiquidationUpdate.stage`` (journaled numbers, never reused)."""
    TAKEN_OVER = 1       # the position left the account at the mark; ``amount``: the equity it took along
    ORDER_FILLED = 2     # the liquidation's order filled ``lots`` at ``price``; ``amount``: PnL against the mark
    DELEVERAGED = 3      # an opposite position was closed by ADL at ``price``; ``amount``: its realized PnL
    ABSORBED = 4         # the liquidation's side of that ADL close
    FINISHED = 5         # every lot closed; one per market, ``amount``: the equity left there (> 0 to its fund, < 0 drawn)


@message(116, COMMAND)
class TakeOverPerp(NamedTuple):
    """The liquidator takes a position over (``market``: an isolated one; ``""``: every cross
    position of the account) into liquidation ``liquidation``, at the mark."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    liquidation: int


@message(117, COMMAND)
class LiquidationOrderPerp(NamedTuple):
    """An immediate-or-cancel order closing ``quantity`` of the liquidation's position at ``price``."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    liquidation: int
    price: int
    quantity: int


@message(118, COMMAND)
class DeleveragePerp(NamedTuple):
    """ADL: close ``abs(quantity)`` of this account's position at ``price`` (the bankruptcy
    price) against liquidation ``liquidation``; ``quantity``'s sign is the position's (a
    long's > 0), so a position that changed side since it was ranked is not closed."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    liquidation: int
    quantity: int
    price: int


@message(119, COMMAND)
class AbsorbDeleverage(NamedTuple):
    """The liquidation's side of an ADL close (sent to the liquidated account's shard)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    liquidation: int
    quantity: int
    price: int


@message(120, COMMAND)
class FinishPerpLiquidation(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    liquidation: int


@message(121, COMMAND)
class SweepPerpFees(NamedTuple):
    """The liquidator collects a perpetual market's fee share from a shard for its insurance
    fund (``exchange.perp.fees``): ``account_id`` is the shard's house account
    (``exchange.core.routing.house_account``), ``swept`` what the fund has recorded from this
    shard and market so far (cumulative)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    swept: int


@message(135, EVENT)
class PerpLiquidationUpdate(NamedTuple):
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    liquidation: int
    stage: int                  # PerpLiquidationStage
    lots: int
    price: int                  # ticks
    amount: int                 # quote minor units (the stage says what)


@message(136, EVENT)
class MarkUpdated(NamedTuple):
    """A perpetual market's index and mark price (ticks) from ``ts_ns`` on; a market event,
    in seq order with its fills, so every shard values positions at the same mark."""
    market: str
    seq: int
    ts_ns: int
    index: int
    mark: int


@message(138, EVENT)
class PerpFeesSwept(NamedTuple):
    """A shard moved ``amount`` of a market's fee share out of its fee account for the fund;
    ``swept``: all it has moved for that market, ever (the fund records ``swept`` less what it
    had recorded)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    amount: int
    swept: int


@message(137, EVENT)
class PerpMarginZoneChanged(NamedTuple):
    """A notification on the account's stream (rulebook 4.3.2): at the mark of ``seq``, a
    position (``scope``: its market if isolated, ``""`` for the cross wallet) crossed a line.
    ``zone``: 0 healthy, 1 under the warning line ((maintenance + initial) / 2), 2 at or
    under maintenance (due for liquidation)."""
    market: str
    seq: int
    ts_ns: int
    account_id: int
    scope: str
    zone: int
    equity: int
    maintenance: int
    warning: int


# ---- the risk rulebook (exchange/risk, issue 15) --------------------------------------
# Operator commands come through the shard's operator door (``Role.OPERATOR``) with
# the operator's name and a reason; ``exchange.risk.admin`` says which roles permit them.
# A command for the whole shard (an asset, a threshold) names the shard's house account.

@message(122, COMMAND)
class FreezeAccount(NamedTuple):
    """Freeze an account's trading (``scope`` 1), withdrawals (2) or both (3); 0 unfreezes (5.2.2.3)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    scope: int
    operator: str
    reason: str


@message(123, COMMAND)
class LockAccount(NamedTuple):
    """Lock (or unlock) an account suspected of credential theft (4.1.4, 4.1.6): nothing but
    deposits is accepted while locked."""
    request_id: int | str
    ts_ns: int
    account_id: int
    locked: bool
    operator: str
    reason: str


@message(124, COMMAND)
class RestrictAccount(NamedTuple):
    """Restrict an account (in ``market``, or everywhere for ``""``) to ``level`` (an
    ``Action``: 2 restrict-open, 3 restrict-open-close, 0 lifts) until ``until_ns`` (0: until
    lifted), citing ``rule`` (surveillance's over-trading block, an operator's decision)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    level: int
    until_ns: int
    rule: str
    operator: str
    reason: str


@message(125, COMMAND)
class FreezeAsset(NamedTuple):
    """Freeze an asset's trading (``scope`` 1: every market it is in), withdrawals (2) or
    both (3), 0 lifts, on the shard whose house account this is (5.2.2: a double spend, a
    main-net upgrade); sent to every shard."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    scope: int
    operator: str
    reason: str


@message(126, COMMAND)
class SetRiskRule(NamedTuple):
    """Change one rule's threshold (or ``key`` "action", its action) at run time on the shard
    whose house account this is; ``value`` as written in ``config/risk.toml`` (an int's digits,
    a decimal amount, an action name, or comma-separated fee tiers)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    rule: str
    key: str
    value: str
    operator: str
    reason: str


@message(127, COMMAND)
class SetMarketMode(NamedTuple):
    """Set a market open (0), reduce-only (1) or halted (2) until ``until_ns`` (0: until
    changed); opening also ends a circuit breaker's halt (5.2.2.2). Applied by the market."""
    request_id: int | str
    ts_ns: int
    market: str
    mode: int
    until_ns: int
    operator: str
    reason: str


@message(139, EVENT)
class RiskAction(NamedTuple):
    """A rule crossed its threshold (``exchange.risk``): what it measured (``value`` against
    ``limit``), the action the rulebook in force took (an ``Action``; 0: recorded only) and
    until when (``until_ns``, 0: no end or nothing restricted). On the account's stream
    (the rulebook's warning notice) and in the audit trail."""
    ts_ns: int
    account_id: int
    rule: str
    action: int
    market: str
    value: int
    limit: int
    until_ns: int


@message(140, EVENT)
class OperatorActed(NamedTuple):
    """An operator's command took effect: who, when, what, on what, why, the value before
    and after, and the rule it falls under (4.6: every operation leaves a trace)."""
    request_id: int | str
    ts_ns: int
    operator: str
    command: str
    target: str
    before: str
    after: str
    reason: str
    rule: str


# ---- withdrawals under the rulebook (exchange/risk/cashier.py; 4.4.2, 4.4.3, 5.2.2.4) ---------

@message(141, COMMAND)
class RequestWithdrawal(NamedTuple):
    """Withdraw ``amount`` of ``asset`` to ``destination``: held at once, then checked, queued
    for review if large, approved, sent and confirmed (``WithdrawalUpdated`` at each step)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    destination: str


@message(142, COMMAND)
class ReviewWithdrawal(NamedTuple):
    """An operator approves (after the review period) or rejects a withdrawal."""
    request_id: int | str
    ts_ns: int
    account_id: int
    withdrawal: int
    approve: bool
    operator: str
    reason: str


@message(143, COMMAND)
class SettleWithdrawal(NamedTuple):
    """The treasury reports a withdrawal's transaction: ``stage`` 1 sent (``txid``), 2 confirmed,
    3 failed (its funds return)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    withdrawal: int
    stage: int
    txid: str
    operator: str
    reason: str


@message(144, COMMAND)
class CredentialChanged(NamedTuple):
    """The account's password or 2FA changed (the authentication service says so): no
    withdrawal for the next 24 h (4.4.3)."""
    request_id: int | str
    ts_ns: int
    account_id: int


@message(146, COMMAND)
class BlockAddress(NamedTuple):
    """Put a destination on (or take it off) the shard's high-risk blocklist (5.2.2.4); the
    account id is the shard's house account, the command goes to every shard."""
    request_id: int | str
    ts_ns: int
    account_id: int
    destination: str
    blocked: bool
    operator: str
    reason: str


@message(147, COMMAND)
class GrantHedgeExemption(NamedTuple):
    """Exempt (or no longer) an account's hedge position in a perpetual market from the position
    limit (4.3.1: 套期保值交易頭寸實行審批制，其持倉不受限制)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    granted: bool
    operator: str
    reason: str


@message(145, EVENT)
class WithdrawalUpdated(NamedTuple):
    """A withdrawal moved: ``state`` (``exchange.risk.withdrawals.WithdrawalState``), the
    ``reason`` (a ``Reason``) and ``rule`` that rejected or queued it, until when it is under
    review, its transaction, and where it goes (``destination``; "" in events journaled
    before issue 18 kept it)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    withdrawal: int
    asset: str
    amount: int
    state: int
    reason: int
    rule: str
    review_until_ns: int
    txid: str
    destination: str = ""


# ---- emergency measures on the perpetuals (5.1.2, 5.2.2.3, 5.2.2.5) --------------------------

@message(148, COMMAND)
class SetMaintenanceMargin(NamedTuple):
    """Raise a perpetual market's base maintenance rate for now (5.2.2.3: 可臨時提高其維持保證金率)
    on the shard whose house account this is, in ppm; 0 restores the configured rate. The
    initial rate moves up by as much, so the warning line stays between them. The command
    goes to every shard."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    maintenance_ppm: int
    operator: str
    reason: str


@message(149, COMMAND)
class CreditCompensation(NamedTuple):
    """The liquidator pays a compensation recorded in a perpetual market's insurance fund
    (``exchange.perp.compensation``) into the account's spot balance of the settlement asset:
    ``seq`` is its number among the fund's compensations to this shard from this market,
    ``through`` all of them together, this one included."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    amount: int
    seq: int
    through: int
    operator: str
    reason: str


@message(150, EVENT)
class CompensationCredited(NamedTuple):
    """The shard holds compensation ``seq`` (now or before: ``credited`` says whether this
    command moved it) and every one before it; ``through``: all it received from the market's
    fund."""
    request_id: int | str
    ts_ns: int
    account_id: int
    market: str
    seq: int
    through: int
    credited: bool


@message(151, COMMAND)
class OtcCross(NamedTuple):
    """The OTC desk moves ``amount`` (signed: a debit below 0) of ``asset`` into or out of
    ``account_id``'s available balance for RFQ ``rfq`` (``exchange.otc.crossing``): ``seq``
    is its number among the desk's crossings on this shard."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    seq: int
    rfq: str


@message(152, EVENT)
class OtcCrossed(NamedTuple):
    """The shard holds crossing ``seq`` and every one before it: ``moved`` says whether this
    command moved it now, ``reason`` why it was refused (0: it was applied)."""
    request_id: int | str
    ts_ns: int
    account_id: int
    asset: str
    amount: int
    seq: int
    rfq: str
    moved: bool
    reason: int
