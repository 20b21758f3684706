"""Margin books: collateral, mirrored loans, margin levels, and the liquidation
commands, for the accounts of one shard.

A margin book is ``(account_id, market)``: market ``""`` is the account's
cross-margin book (one pool of collateral for every margin market), a market
name its isolated book for that market (only that market's base and quote).
A book has ``available`` and ``held`` lists like a spot account (margin orders
hold and settle against them), ``pending`` (amounts sent to the pool to repay,
still the book's until the pool answers) and, per asset, the scaled principal
and principal of its loan, mirrored from the pool's answers. The pool is the
authority on loans; its events (``Borrowed``, ``Repaid``, ``InterestAccrued``)
overwrite the mirror, so a shard's view of a debt is exact as of the last
event it applied: debt = ceil(scaled x index / INDEX_SCALE).

Valuation (``value``) is at index prices passed in by the caller (one price
per asset index, in quote minor units per whole unit; never our own last
trade): assets floor, liabilities ceil, level = assets / liabilities in ppm,
floor, all against the account.

The desk is the margin product of an ``AccountShard``
(``exchange.accounts.product``): composed by ``exchange/venue.py: new_shard``
(``shard.plug``), it applies ``MARGIN_COMMANDS`` (the liquidator's through
``exchange.margin.liquidation.LiquidationCommands``) and the lending link's
events, funds margin orders from its books (``place_order``, and the order a
borrow waited for once the pool answers), repays when an auto-repay order
closes (``order_closed``) and blocks spot withdrawals under the initial line
(``withdrawal_block``). The shard imports nothing of it.

Money moves only: spot <-> book (transfers), pool -> book (borrow), book ->
pool (repay), spot -> pool (supply) and back, insurance fund -> book
(``fund_in``, counted as an inflow by the audit). Amounts that left the shard
for the pool and are not answered yet stay on the shard's books
(``pending`` / ``supplying``) so the totals balance at every instant.
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from exchange.config import ExchangeConfig
from exchange.accounts.access import MARGIN_LIQUIDATOR_COMMANDS
from exchange.accounts.ledger import Ledger
from exchange.accounts.pricing import PriceContext
from exchange.margin.lending import INDEX_SCALE, borrow_debt_bound, debt_of
from exchange.matching.orders import BUY
from exchange.messages.records import (LENDING, POOL_BORROW, POOL_REPAY, POOL_SUPPLY, POOL_WITHDRAW, Borrow, Borrowed,
                                       DebtWrittenOff, EnableMargin, InterestAccrued, LendingRefused, MarginEnabled,
                                       MarginLevelChanged, MarginTransferred, OrderRejected, PlaceMarginOrder,
                                       PoolRequest, Repaid, Repay, Supplied, SupplyToPool, SupplyWithdrawn,
                                       TransferMargin, WithdrawFromPool)
from exchange.margin.rules import Zone
from exchange.core.money import INT64_MAX, PPM, mul_div_ceil
from exchange.core.reasons import Reason

MARGIN_COMMANDS = frozenset((EnableMargin, TransferMargin, Borrow, Repay, PlaceMarginOrder, SupplyToPool,
                             WithdrawFromPool)) | MARGIN_LIQUIDATOR_COMMANDS    # every command the desk applies


class Then(IntEnum):
    """What a pool answer completes (``Awaiting.then``)."""
    BORROW = 1          # a client's borrow
    REPAY = 2           # a client's repay, or an auto-repay (no request id)
    SUPPLY = 3
    WITHDRAW = 4
    WRITE_OFF = 5       # the liquidator's write-off
    ORDER = 6           # a margin order that waits for the borrow it needs


class Awaiting(NamedTuple):
    """A pool request not answered yet: what its answer completes."""
    then: Then
    request_id: int | str | None = None     # the client request it answers (None: a follow-up of its own)
    order: object = None                    # ORDER: the PlaceMarginOrder that waits
    reference_ticks: int | None = None      # ORDER: its protection reference

    def plain(self) -> tuple:
        """Plain values for ``canonical`` (the order as its own plain tuple)."""
        return (int(self.then), self.request_id, None if self.order is None else tuple(self.order),
                self.reference_ticks)


def index_price_vector(config: ExchangeConfig) -> list[int]:
    """One index price per asset index (quote minor units per whole unit; 0 = not known
    yet), with the index's quote asset at exactly one unit."""
    quote = config.assets[config.index_quote_asset]
    prices = [0] * len(config.assets)
    prices[quote.index] = 10 ** quote.scale
    return prices


def update_index_prices(config: ExchangeConfig, prices: list[int], by_asset: dict[str, int]) -> None:
    """Take the IndexActor's prices by asset name into ``prices`` (unknown assets and
    non-positive prices are ignored: a price once known is never forgotten)."""
    for name, price in by_asset.items():
        spec = config.assets.get(name)
        if spec is not None and type(price) is int and price > 0:
            prices[spec.index] = price


class ScanResult(NamedTuple):
    """One pass of ``MarginDesk.scan`` over every indebted book.

    ``levels``: market ("" = cross) -> every level ppm there (the distribution);
    ``at_risk``: market -> books under the warning line and above liquidation;
    ``zones``: book key -> its zone now; ``changes``: the notifications for books
    whose zone differs from the one last notified; ``candidates``: ``(book key,
    level ppm)`` at or under the liquidation line and not liquidating yet (to hand
    over to the liquidator)."""
    books: int
    levels: dict
    at_risk: dict
    zones: dict
    changes: list
    candidates: list


class MarginBook:
    """One margin book's balances and mirrored loans (lists by asset index)."""

    __slots__ = ("account_id", "market", "available", "held", "pending", "scaled", "principal", "liquidating",
                 "borrowing")

    def __init__(self, account_id: int, market: str, assets: int):
        self.account_id = account_id
        self.market = market
        self.available = [0] * assets
        self.held = [0] * assets
        self.pending = [0] * assets          # sent to the pool to repay, not answered yet
        self.scaled = [0] * assets           # loan scaled principal per asset (mirror)
        self.principal = [0] * assets        # loan principal per asset (mirror)
        self.liquidating = False
        self.borrowing = [0] * assets        # asked of the pool, not answered yet (counts against the limit)

    @property
    def key(self) -> tuple[int, str]:
        return (self.account_id, self.market)

    def has_debt(self) -> bool:
        """Owes something, or has a borrow asked of the pool and not answered yet."""
        return any(self.scaled) or any(self.borrowing)

    def canonical(self) -> tuple:
        return (self.account_id, self.market, tuple(self.available), tuple(self.held), tuple(self.pending),
                tuple(self.scaled), tuple(self.principal), self.liquidating, tuple(self.borrowing))


class MarginDesk:
    """The margin books, margin settings and pool traffic of one shard: its margin product."""

    name = "margin"                     # shard.margin
    commands = MARGIN_COMMANDS
    links = (LENDING,)
    wallet_type = MarginBook

    def __init__(self, config: ExchangeConfig, ledger: Ledger):
        self.config = config
        self.rules = config.margin
        self.ledger = ledger
        n = len(config.assets)
        self.assets = config.asset_list
        self.settings: dict[int, tuple[str, str]] = {}      # account -> (user level, leverage tier)
        self.books: dict[tuple[int, str], MarginBook] = {}
        self.account_books: dict[int, list[str]] = {}       # account -> its books' markets (derived from books)
        self.pool_index = [INDEX_SCALE] * n                 # latest borrow index per asset (mirror)
        self.supplying = [0] * n                            # spot funds on their way into a pool
        self.fund_in = [0] * n                              # received from the insurance fund
        self.awaiting: dict[int, Awaiting] = {}             # ref -> what waits for the pool's answer
        self.ref_seq = 0
        self.followups: list = []                           # (link, request) produced while applying events
        self.asset_index = {a.name: a.index for a in self.assets}
        self._lendable = frozenset(self.asset_index[a] for a in config.lending)
        self._curves = {self.asset_index[a]: curve for a, curve in config.lending.items()}
        self.shard = None                                   # the AccountShard it is plugged into (attach)
        self.liquidation = None                             # the liquidator's commands on this shard (attach)

    # ---- the product seam (exchange.accounts.product) ------------------------------
    def attach(self, shard) -> None:
        """Plugged into ``shard`` (``AccountShard.plug``): share its ledger and follow-ups."""
        from exchange.margin.liquidation import LiquidationCommands      # it imports this module
        assert shard.ledger is self.ledger, "a desk is built on its shard's ledger"
        self.shard = shard
        self.followups = shard.followups
        self.liquidation = LiquidationCommands(shard)

    def apply(self, cmd, context: PriceContext) -> tuple[list, object | None]:
        """Apply a margin or liquidator command at ``context`` (the order's protection
        reference, the index prices): NEGATIVE_TIMESTAMP first (the pools' clock),
        then each command's own checks."""
        ticks, prices = context.reference_ticks, context.prices
        kind = type(cmd)
        if not 0 <= cmd.ts_ns:
            return _reject(cmd, Reason.NEGATIVE_TIMESTAMP), None
        if kind is PlaceMarginOrder:
            return self.place_order(cmd, ticks, prices)
        if kind is TransferMargin:
            return self.transfer(cmd, prices), None
        if kind is Borrow:
            return self.borrow(cmd, prices)
        if kind is Repay:
            return self.repay(cmd)
        if kind is SupplyToPool:
            return self.supply(cmd)
        if kind is WithdrawFromPool:
            return self.withdraw_supply(cmd)
        if kind is EnableMargin:
            return self.enable(cmd), None
        return self.liquidation.apply(cmd)

    def apply_event(self, event) -> list:
        """A lending-pool event (``apply_pool``); a borrow an order waited for funds the
        order now (its terms checked again) and sends it as a follow-up."""
        events, waiting = self.apply_pool(event)
        if waiting is None or waiting.then is not Then.ORDER:
            return events
        cmd = waiting.order
        if type(event) is not Borrowed:
            return [OrderRejected(cmd.request_id, cmd.account_id, event.reason)]
        shard = self.shard
        terms = shard.order_terms(cmd, waiting.reference_ticks)
        if type(terms) is not tuple:
            return [*events, OrderRejected(cmd.request_id, cmd.account_id, int(terms))]
        rejected, request = shard.fund_order(cmd, terms, self.book(cmd.account_id, event.book), cmd.auto_repay)
        if request is not None:
            self.followups.append((cmd.market, request))
        return [*events, *rejected]

    def order_closed(self, record, ts_ns: int) -> None:
        """A margin order closed: with auto-repay, repay debt in what it acquired."""
        if record.auto_repay:
            acquired = record.market.base.index if record.side == BUY else record.market.quote.index
            self.auto_repay(record.wallet, acquired, ts_ns)

    def wallets(self):
        return self.books.values()

    def place_order(self, cmd: PlaceMarginOrder, reference_ticks, prices) -> tuple[list, object | None]:
        """A margin order: hold from the book; borrow what it lacks first (auto-borrow).
        FIELD_NOT_A_FLAG, MARGIN_NOT_ENABLED (a market without margin trading), the order's
        terms (``AccountShard.order_terms``), the book (``open_book``), then
        INSUFFICIENT_BALANCE without auto-borrow, or the borrow's checks (``check_borrow``)."""
        if type(cmd.isolated) is not bool or type(cmd.auto_borrow) is not bool or type(cmd.auto_repay) is not bool:
            return _reject(cmd, Reason.FIELD_NOT_A_FLAG), None
        if type(cmd.market) is str and cmd.market in self.config.markets and cmd.market not in self.rules.markets:
            return _reject(cmd, Reason.MARGIN_NOT_ENABLED), None
        shard = self.shard
        terms = shard.order_terms(cmd, reference_ticks)
        if type(terms) is not tuple:
            return _reject(cmd, terms), None
        book = self.open_book(cmd.account_id, cmd.market if cmd.isolated else "")
        if isinstance(book, Reason):
            return _reject(cmd, book), None
        asset, _, need = shard.hold_terms(terms)
        lacking = need - book.available[asset]
        if lacking <= 0:
            return shard.fund_order(cmd, terms, book, cmd.auto_repay)
        if not cmd.auto_borrow:
            return _reject(cmd, Reason.INSUFFICIENT_BALANCE), None
        reason = self.check_borrow(book, asset, lacking, prices)
        if reason is not None:
            return _reject(cmd, reason), None
        return [], self.pool_request(POOL_BORROW, book.account_id, book.market, asset, lacking, cmd.ts_ns,
                                     Awaiting(Then.ORDER, cmd.request_id, cmd, reference_ticks))

    # ---- books and valuation -------------------------------------------------------
    def book(self, account_id: int, market: str, create: bool = False) -> MarginBook | None:
        book = self.books.get((account_id, market))
        if book is None and create:
            book = self.books[(account_id, market)] = MarginBook(account_id, market, len(self.assets))
            self.account_books.setdefault(account_id, []).append(market)
        return book

    def withdrawal_block(self, account_id: int, prices) -> Reason | None:
        """Why the account may not withdraw now: one of its margin books owes and is under
        the initial line (rulebook 4.4.3; released by itself once back above), or a
        price needed to tell is missing. None when it may."""
        if account_id not in self.settings:
            return None
        initial = self.rules.initial_level_ppm
        for market in self.account_books.get(account_id, ()):
            book = self.books[(account_id, market)]
            if book.has_debt():
                level = self.level_ppm(book, prices)
                if level is None:
                    return Reason.NO_INDEX_PRICE
                if level < initial:
                    return Reason.BELOW_INITIAL_MARGIN_LEVEL
        return None

    def debt(self, book: MarginBook, asset: int) -> int:
        return debt_of(book.scaled[asset], self.pool_index[asset])

    def value(self, book: MarginBook, prices) -> tuple[int, int] | None:
        """(assets, liabilities) in quote minor units at ``prices``; None if a needed price is missing.
        A borrow asked of the pool and not answered yet counts as done: its cash as an
        asset, and as a liability the most it can owe once applied (``in_flight_debt``),
        so no check that reads the level can be passed by racing a borrow (a transfer
        out, a withdrawal, a further borrow)."""
        assets = liabilities = 0
        index = self.pool_index
        for spec in self.assets:
            i = spec.index
            asked = book.borrowing[i]
            held = book.available[i] + book.held[i] + book.pending[i] + asked
            scaled = book.scaled[i]
            if not held and not scaled:
                continue
            price = prices[i] if i < len(prices) else 0
            if price <= 0:
                return None
            unit = 10 ** spec.scale
            assets += held * price // unit
            if scaled or asked:
                liabilities += mul_div_ceil(debt_of(scaled, index[i]) + self.in_flight_debt(i, asked), price, unit)
        return assets, liabilities

    def in_flight_debt(self, asset: int, asked: int) -> int:
        """What a borrow of ``asked`` still in flight counts as owing (its started hour included)."""
        return borrow_debt_bound(asked, self._curves[asset]) if asked else 0

    def level_ppm(self, book: MarginBook, prices) -> int | None:
        """Assets / liabilities in ppm (None: no debt, or a price is missing)."""
        valued = self.value(book, prices)
        if valued is None or not valued[1]:
            return None
        return valued[0] * PPM // valued[1]

    def levels(self, prices) -> list[tuple[tuple[int, str], int]]:
        """``(book key, level ppm)`` of every book that owes something, at ``prices``:
        the same valuation as ``level_ppm``, in one tight loop (a price tick
        re-values every book; books needing a missing price are skipped)."""
        terms = [(i, prices[i] if i < len(prices) else 0, 10 ** a.scale, self.pool_index[i])
                 for i, a in enumerate(self.assets)]
        out = []
        append = out.append
        for key, book in self.books.items():
            scaled, borrowing = book.scaled, book.borrowing
            if not any(scaled) and not any(borrowing):
                continue
            available, held, pending = book.available, book.held, book.pending
            assets = liabilities = 0
            for i, price, unit, index in terms:
                asked = borrowing[i]
                amount = available[i] + held[i] + pending[i] + asked
                owed = scaled[i]
                if amount or owed:
                    if price <= 0:
                        break
                    assets += amount * price // unit
                    if owed or asked:
                        debt = -((-owed * index) // INDEX_SCALE) + (self.in_flight_debt(i, asked) if asked else 0)
                        liabilities -= (-debt * price) // unit
            else:
                append((key, assets * PPM // liabilities))
        return out

    def scan(self, prices, notified: dict) -> ScanResult:
        """Value every indebted book at ``prices`` (``levels``) and sort it into its zone.

        ``notified`` (book key -> the zone last notified) is a view the caller keeps
        (the shard actor, the Engine); it is updated with every change returned."""
        rules = self.rules
        warning, call, line = rules.warning_level_ppm, rules.margin_call_level_ppm, rules.liquidation_level_ppm
        groups: dict[str, list] = {"": [], **{m: [] for m in sorted(rules.markets)}}
        at_risk = dict.fromkeys(groups, 0)
        zones, changes, candidates = {}, [], []
        levels = self.levels(prices)
        for key, level in levels:
            group = groups.get(key[1])
            if group is None:                  # a market whose margin trading was switched off since
                group, at_risk[key[1]] = groups.setdefault(key[1], []), 0
            group.append(level)
            if level >= warning:
                zone = Zone.HEALTHY
            elif level > line:
                zone = Zone.WARNING if level >= call else Zone.MARGIN_CALL
                at_risk[key[1]] += 1
            else:
                zone = Zone.LIQUIDATION
            zones[key] = zone
            if notified.get(key, Zone.HEALTHY) != zone:
                notified[key] = zone
                changes.append(MarginLevelChanged(key[0], key[1], int(zone), level))
            if zone is Zone.LIQUIDATION and not self.books[key].liquidating:
                candidates.append((key, level))
        return ScanResult(len(levels), groups, at_risk, zones, changes, candidates)

    # ---- client commands -------------------------------------------------------------
    def enable(self, cmd: EnableMargin) -> list:
        if cmd.account_id not in self.ledger.accounts:
            return _reject(cmd, Reason.UNKNOWN_ACCOUNT)
        if cmd.account_id in self.settings:
            return _reject(cmd, Reason.MARGIN_ALREADY_ENABLED)
        level = cmd.user_level or self.rules.default_user_level
        tier = cmd.leverage_tier or self.rules.default_leverage_tier
        if type(level) is not str or level not in self.rules.borrow_limits_ppm:
            return _reject(cmd, Reason.UNKNOWN_USER_LEVEL)
        if type(tier) is not str or tier not in self.rules.borrow_limits_ppm[level]:
            return _reject(cmd, Reason.UNKNOWN_LEVERAGE_TIER)
        self.settings[cmd.account_id] = (level, tier)
        return [MarginEnabled(cmd.request_id, cmd.ts_ns, cmd.account_id, level, tier)]

    def open_book(self, account_id: int, market: str) -> MarginBook | Reason:
        """A command's book, after the checks every margin command shares, in this order:
        UNKNOWN_ACCOUNT, MARGIN_NOT_ENABLED, UNKNOWN_MARKET, MARGIN_NOT_ENABLED (a market
        without margin trading), NO_MARGIN_BOOK (nothing was ever transferred into it),
        ACCOUNT_IN_LIQUIDATION."""
        if account_id not in self.ledger.accounts:
            return Reason.UNKNOWN_ACCOUNT
        if account_id not in self.settings:
            return Reason.MARGIN_NOT_ENABLED
        if type(market) is not str:
            return Reason.FIELD_NOT_A_STRING
        if market and market not in self.config.markets:
            return Reason.UNKNOWN_MARKET
        if market and market not in self.rules.markets:
            return Reason.MARGIN_NOT_ENABLED
        book = self.book(account_id, market)
        if book is None:
            return Reason.NO_MARGIN_BOOK
        if book.liquidating:
            return Reason.ACCOUNT_IN_LIQUIDATION
        return book

    def _asset_amount(self, cmd, market: str = "") -> tuple[int, int] | Reason:
        """The command's (asset index, amount); an isolated book (``market``) takes only its market's two.
        UNKNOWN_ASSET, NON_POSITIVE_AMOUNT, VALUE_OUT_OF_RANGE."""
        asset = self.asset_index.get(cmd.asset) if type(cmd.asset) is str else None
        spec = self.config.markets.get(market) if market else None
        if asset is None or (spec is not None and asset not in (spec.base.index, spec.quote.index)):
            return Reason.UNKNOWN_ASSET
        if type(cmd.amount) is not int:
            return Reason.FIELD_NOT_AN_INTEGER
        if cmd.amount <= 0:
            return Reason.NON_POSITIVE_AMOUNT
        if cmd.amount > INT64_MAX:
            return Reason.VALUE_OUT_OF_RANGE
        return asset, cmd.amount

    def transfer(self, cmd: TransferMargin, prices) -> list:
        """Spot <-> margin book. Out of margin: refused under the initial line
        (BELOW_INITIAL_MARGIN_LEVEL) while the book owes anything. A transfer in opens the
        book; a transfer out of a book never funded is NO_MARGIN_BOOK."""
        if type(cmd.to_margin) is not bool:
            return _reject(cmd, Reason.FIELD_NOT_A_FLAG)
        book = self.open_book(cmd.account_id, cmd.market)
        if isinstance(book, Reason) and not (book is Reason.NO_MARGIN_BOOK and cmd.to_margin):
            return _reject(cmd, book)
        parsed = self._asset_amount(cmd, cmd.market)
        if isinstance(parsed, Reason):
            return _reject(cmd, parsed)
        asset, amount = parsed
        account = self.ledger.accounts[cmd.account_id]
        if cmd.to_margin:
            if account.available[asset] < amount:
                return _reject(cmd, Reason.INSUFFICIENT_BALANCE)
            book = self.book(cmd.account_id, cmd.market, create=True)    # checks passed: now it may exist
            account.available[asset] -= amount
            book.available[asset] += amount
            delta = amount
        else:
            if book.available[asset] < amount:
                return _reject(cmd, Reason.INSUFFICIENT_BALANCE)
            if book.has_debt():
                book.available[asset] -= amount           # try it, then undo if the level would fall short
                level = self.level_ppm(book, prices)
                book.available[asset] += amount
                if level is None:
                    return _reject(cmd, Reason.NO_INDEX_PRICE)
                if level < self.rules.initial_level_ppm:
                    return _reject(cmd, Reason.BELOW_INITIAL_MARGIN_LEVEL)
            book.available[asset] -= amount
            account.available[asset] += amount
            delta = -amount
        return [MarginTransferred(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.market, cmd.asset, delta,
                                  book.available[asset], account.available[asset])]

    def check_borrow(self, book: MarginBook, asset: int, amount: int, prices) -> Reason | None:
        """Would borrowing ``amount`` keep liabilities <= limit x equity? None if so.
        Borrows already asked of the pool and not answered count as done, so
        concurrent requests cannot pass the limit together."""
        if asset not in self._lendable:
            return Reason.NO_LENDING_POOL
        level, tier = self.settings[book.account_id]
        limit = self.rules.borrow_limit_ppm(level, tier)
        valued = self.value(book, prices)
        price = prices[asset] if asset < len(prices) else 0
        if valued is None or price <= 0:
            return Reason.NO_INDEX_PRICE
        assets, liabilities = valued
        added = -((-amount * price) // 10 ** self.assets[asset].scale)
        equity = assets - liabilities
        if equity <= 0 or (liabilities + added) * PPM > limit * equity:
            return Reason.ABOVE_BORROW_LIMIT
        return None

    def _book_asset_amount(self, cmd) -> tuple[MarginBook, int, int] | Reason:
        """The book, asset index and amount of a borrow or repay, after the checks both share."""
        book = self.open_book(cmd.account_id, cmd.market)
        if isinstance(book, Reason):
            return book
        parsed = self._asset_amount(cmd, cmd.market)
        if isinstance(parsed, Reason):
            return parsed
        return book, *parsed

    def borrow(self, cmd: Borrow, prices) -> tuple[list, PoolRequest | None]:
        """Check the limit and ask the pool; the pool's answer completes it. A book never
        funded has no collateral to borrow against: NO_MARGIN_BOOK."""
        found = self._book_asset_amount(cmd)
        if isinstance(found, Reason):
            return _reject(cmd, found), None
        book, asset, amount = found
        reason = self.check_borrow(book, asset, amount, prices)
        if reason is not None:
            return _reject(cmd, reason), None
        return [], self.pool_request(POOL_BORROW, book.account_id, book.market, asset, amount, cmd.ts_ns,
                                     Awaiting(Then.BORROW, cmd.request_id))

    def repay(self, cmd: Repay) -> tuple[list, PoolRequest | None]:
        """Send up to ``amount`` to the pool; what is not owed comes back (NOTHING_OWED if no
        debt, NO_MARGIN_BOOK if the book was never funded)."""
        found = self._book_asset_amount(cmd)
        if isinstance(found, Reason):
            return _reject(cmd, found), None
        book, asset, amount = found
        if not book.scaled[asset]:
            return _reject(cmd, Reason.NOTHING_OWED), None
        if book.available[asset] < amount:
            return _reject(cmd, Reason.INSUFFICIENT_BALANCE), None
        return [], self.send_repay(book, asset, amount, cmd.ts_ns, cmd.request_id)

    def send_repay(self, book: MarginBook, asset: int, amount: int, ts_ns: int, request_id=None) -> PoolRequest:
        book.available[asset] -= amount
        book.pending[asset] += amount
        return self.pool_request(POOL_REPAY, book.account_id, book.market, asset, amount, ts_ns,
                                 Awaiting(Then.REPAY, request_id))

    def auto_repay(self, book: MarginBook, asset: int, ts_ns: int) -> None:
        """Repay the book's debt in ``asset`` from what it holds (queued as a follow-up)."""
        if book.scaled[asset] and book.available[asset] > 0:
            self.followups.append((LENDING, self.send_repay(book, asset, book.available[asset], ts_ns)))

    def _pool_asset(self, cmd) -> tuple[int, int] | Reason:
        """(asset index, amount) of a supply or withdrawal: a known account (UNKNOWN_ACCOUNT),
        the ``_asset_amount`` checks, an asset a pool lends (NO_LENDING_POOL)."""
        if cmd.account_id not in self.ledger.accounts:
            return Reason.UNKNOWN_ACCOUNT
        parsed = self._asset_amount(cmd)
        if not isinstance(parsed, Reason) and parsed[0] not in self._lendable:
            return Reason.NO_LENDING_POOL
        return parsed

    def supply(self, cmd: SupplyToPool) -> tuple[list, PoolRequest | None]:
        """Lend spot funds to a pool (INSUFFICIENT_BALANCE, NO_LENDING_POOL for an asset nobody lends)."""
        parsed = self._pool_asset(cmd)
        if isinstance(parsed, Reason):
            return _reject(cmd, parsed), None
        asset, amount = parsed
        account = self.ledger.accounts[cmd.account_id]
        if account.available[asset] < amount:
            return _reject(cmd, Reason.INSUFFICIENT_BALANCE), None
        account.available[asset] -= amount
        self.supplying[asset] += amount
        return [], self.pool_request(POOL_SUPPLY, cmd.account_id, "", asset, amount, cmd.ts_ns,
                                     Awaiting(Then.SUPPLY, cmd.request_id))

    def withdraw_supply(self, cmd: WithdrawFromPool) -> tuple[list, PoolRequest | None]:
        """Ask the pool for supplied funds back (the pool answers NO_SUPPLY or POOL_INSUFFICIENT_LIQUIDITY)."""
        parsed = self._pool_asset(cmd)
        if isinstance(parsed, Reason):
            return _reject(cmd, parsed), None
        asset, amount = parsed
        return [], self.pool_request(POOL_WITHDRAW, cmd.account_id, "", asset, amount, cmd.ts_ns,
                                     Awaiting(Then.WITHDRAW, cmd.request_id))

    def pool_request(self, kind: int, account_id: int, book: str, asset: int, amount: int, ts_ns: int,
                     waiting: Awaiting) -> PoolRequest:
        if kind == POOL_BORROW:
            self.books[(account_id, book)].borrowing[asset] += amount
        self.ref_seq += 1
        self.awaiting[self.ref_seq] = waiting
        return PoolRequest(kind, account_id, book, self.assets[asset].name, self.ref_seq, amount, ts_ns)

    # ---- the pool's answers ---------------------------------------------------------------
    def apply_pool(self, event) -> tuple[list, Awaiting | None]:
        """Apply a pool event; return (events for the account, what waited for it or None)."""
        kind = type(event)
        if kind is InterestAccrued:
            self.pool_index[self.asset_index[event.asset]] = event.index
            return [event], None
        asset = self.asset_index[event.asset]
        waiting = self.awaiting.pop(event.ref, None)
        if kind is Borrowed:
            book = self.book(event.account_id, event.book, create=True)
            book.borrowing[asset] -= event.amount
            book.available[asset] += event.amount
            self._mirror(book, asset, event)
            return [event], waiting
        if kind is DebtWrittenOff:
            self._mirror(self.book(event.account_id, event.book, create=True), asset, event)
            return [event], waiting
        if kind is Repaid:
            book = self.book(event.account_id, event.book, create=True)
            book.pending[asset] -= event.offered
            book.available[asset] += event.offered - event.taken
            self._mirror(book, asset, event)
            return [event], waiting
        if kind is Supplied:
            self.supplying[asset] -= event.amount
            return [event], waiting
        if kind is SupplyWithdrawn:
            self.ledger.accounts[event.account_id].available[asset] += event.amount
            return [event], waiting
        if kind is LendingRefused:
            self._undo(event, asset)
            if waiting is not None and waiting.then is not Then.ORDER and waiting.request_id is not None:
                return [OrderRejected(waiting.request_id, event.account_id, event.reason)], waiting  # the client's answer
            return [event], waiting
        raise TypeError(f"margin desk cannot apply {kind.__name__}")

    def _mirror(self, book: MarginBook, asset: int, event) -> None:
        book.scaled[asset], book.principal[asset] = event.scaled, event.principal
        self.pool_index[asset] = event.index

    def _undo(self, event: LendingRefused, asset: int) -> None:
        """A refused request gives back what was set aside for it."""
        if event.kind == POOL_BORROW:
            self.book(event.account_id, event.book, create=True).borrowing[asset] -= event.amount
        elif event.kind == POOL_REPAY:
            book = self.book(event.account_id, event.book, create=True)
            book.pending[asset] -= event.amount
            book.available[asset] += event.amount
        elif event.kind == POOL_SUPPLY:
            self.supplying[asset] -= event.amount
            self.ledger.accounts[event.account_id].available[asset] += event.amount

    # ---- views and self-checks -----------------------------------------------------------
    def totals(self) -> list[int]:
        """Per asset: every book's balances plus funds on their way into a pool."""
        totals = list(self.supplying)
        for book in self.books.values():
            for i in range(len(totals)):
                totals[i] += book.available[i] + book.held[i] + book.pending[i]
        return totals

    def book_view(self, book: MarginBook, prices) -> dict:
        names = [a.name for a in self.assets]
        level = self.level_ppm(book, prices)
        return {"account_id": book.account_id, "market": book.market, "liquidating": book.liquidating,
                "available": dict(zip(names, book.available)), "held": dict(zip(names, book.held)),
                "pending": dict(zip(names, book.pending)),
                "debt": {a.name: self.debt(book, a.index) for a in self.assets},
                "principal": dict(zip(names, book.principal)),
                "level_ppm": level, "zone": self.rules.zone(level)}

    def check_invariants(self) -> None:
        for book in self.books.values():
            assert min(book.available) >= 0 and min(book.held) >= 0 and min(book.pending) >= 0, \
                f"negative margin balance {book.canonical()}"
            assert min(book.scaled) >= 0 and min(book.principal) >= 0 and min(book.borrowing) >= 0, \
                f"negative loan {book.canonical()}"
        assert min(self.supplying) >= 0, "negative supply in flight"

    def canonical(self) -> tuple:
        return (tuple(sorted(self.settings.items())), tuple(b.canonical() for _, b in sorted(self.books.items())),
                tuple(self.pool_index), tuple(self.supplying), tuple(self.fund_in),
                tuple((ref, w.plain()) for ref, w in sorted(self.awaiting.items())), self.ref_seq)


def _reject(cmd, reason: Reason) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason))]

