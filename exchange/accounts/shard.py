"""The account side of the order pipeline: validation, pre-trade holds,
settlement of market events, release, and replay protection.

An ``AccountShard`` owns a set of accounts (all of them in the single-process
engine, a hash partition of them under Ray). It turns client commands into
either events (deposits, rejections) or a request for a market
(``SubmitOrder``/``CancelRequest``/``AmendRequest``), and turns the market's
events back into balance movements and client-visible events.

Holds are per lot so that any split of an order into fills is covered:
a buy holds ``lots * (price*qptl + ceil(price*qptl*taker_ppm/1e6))`` of quote
(the worst-case taker fee at the limit price); a sell holds its base. A fill
consumes its lots' share of the hold and releases what the actual price and
fee did not use. Fees go to this shard's share of the fee account.

A shard applies each market's events in ``seq`` order and ignores a ``seq`` it
has already applied, so a repeated delivery changes nothing.

Products (margin now; perpetuals, OTC next) plug in; the shard never imports
them (``exchange.accounts.product`` names the points it calls them at;
``exchange/venue.py: new_shard`` composes them). ``AccountShard(...)`` alone
is a spot-only shard: a product's command reaching it is UNKNOWN_COMMAND.
An order a product funds is an ``OpenOrder`` whose ``wallet`` is the
product's wallet (a margin book) and whose ``book`` names it; it holds and
settles there instead of the spot account. A product's requests go to its
links (margin: ``LENDING``) the way order requests go to a market. Some
answers call for another request (the order a borrow was for, a repay after a
margin order closes): those are queued in ``followups`` and the caller sends
them on behalf of the same request.
"""
from __future__ import annotations


from typing import NamedTuple

from exchange.accounts.access import Role, authorize
from exchange.config import ExchangeConfig, MarketSpec
from exchange.core.buckets import BucketMap
from exchange.accounts.dedup import RequestMemory, same_request
from exchange.accounts.holds import buy_hold_per_lot, protection_price
from exchange.accounts.pricing import NO_PRICES, PriceContext
from exchange.accounts.ledger import Ledger, digest
from exchange.accounts.product import Product
from exchange.messages.records import (LENDING, AccountOpened, AmendOrder, AmendRequest, BalanceChanged, CancelOrder,
                                       CancelRequest, Deposit, Fill, LiquidationStep, OpenAccount, OrderAccepted,
                                       OrderAmended, OrderBooked, OrderClosed, OrderRejected, PlaceOrder, PoolRequest,
                                       RequestRejected, SubmitOrder, Withdraw)
from exchange.core.money import INT64_MAX
from exchange.matching.orders import BUY, SELL, OrderType, TimeInForce
from exchange.core.reasons import CloseReason, Reason
from exchange.core.routing import ShardLayout, shard_for
from exchange.messages.validation import CLIENT_COMMAND_TYPES, admit_fields, valid_request_id

ORDER_ID_SHARD_BITS = 10          # order id = local sequence << 10 | shard index (<= 1024 shards)
MARKET, LIMIT = int(OrderType.MARKET), int(OrderType.LIMIT)
POST_ONLY = int(TimeInForce.POST_ONLY)
REJECTED = int(CloseReason.REJECTED)
CLIENT_COMMANDS = frozenset(CLIENT_COMMAND_TYPES)     # every command a shard applies (any role)


class Admitted(NamedTuple):
    """A command that passed the door: its plain form and its replay key."""
    command: object
    key: tuple                  # (account_id, request_id)


class OpenOrder:
    """The shard's record of an order it funded: what is held and why."""

    __slots__ = ("order_id", "account_id", "market", "side", "price", "total", "remaining", "per_lot",
                 "held", "client_order_id", "request_id", "acknowledged", "amend_extra", "book", "auto_repay",
                 "wallet", "order_type", "tif")

    def __init__(self, order_id, account_id, market, side, price, total, per_lot, held, client_order_id, request_id,
                 book: str | None = None, auto_repay: bool = False, wallet=None, order_type: int = 1, tif: int = 1):
        self.order_id = order_id
        self.account_id = account_id
        self.market = market            # MarketSpec
        self.side = side
        self.price = price              # ticks
        self.total = total              # lots
        self.remaining = total          # lots
        self.per_lot = per_lot          # held per lot (quote minor for buys, base minor for sells)
        self.held = held
        self.client_order_id = client_order_id
        self.request_id = request_id
        self.acknowledged = False
        self.amend_extra = -1           # >= 0 while an amend is in flight
        self.book = book                # None: spot; else the product wallet's name (margin: "" cross, or the market)
        self.auto_repay = auto_repay    # margin: repay debt in what the order acquires when it closes
        self.wallet = wallet            # where its funds are held: the spot account or a product's wallet
        self.order_type = order_type    # OrderType, as placed (for the history and the API)
        self.tif = tif                  # TimeInForce

    def view(self) -> dict:
        """The order as a client sees it: prices and quantities in minor units."""
        m = self.market
        return {"order_id": self.order_id, "account_id": self.account_id, "market": m.name, "side": self.side,
                "price": self.price * m.tick_minor, "quantity": self.total * m.lot_minor,
                "remaining": self.remaining * m.lot_minor, "client_order_id": self.client_order_id, "status": "open",
                "order_type": self.order_type, "tif": self.tif}

    def canonical(self) -> tuple:
        return (self.order_id, self.account_id, self.market.name, self.side, self.price, self.total,
                self.remaining, self.per_lot, self.held, self.client_order_id, str(self.request_id),
                self.acknowledged, self.amend_extra, self.book, self.auto_repay, self.order_type, self.tif)


class AccountShard:
    """Accounts, holds and settlement for one shard of the exchange."""

    def __init__(self, config: ExchangeConfig, shard_index: int = 0, shards: int | ShardLayout = 1):
        self.config = config
        self.shard_index = shard_index
        self.routing = shards                                      # which accounts are this shard's
        self.shards = shards if type(shards) is int else shards.count   # how many shards there are now
        self.ledger = Ledger(config)
        self.orders = BucketMap()                                  # order id -> OpenOrder
        self.order_seq = 0
        self.market_seq = {name: 0 for name in config.markets}   # last seq applied, per market or product link
        self.followups: list = []                                  # (link, request) to send next
        self.products: dict[str, Product] = {}                     # name -> product, in the order plugged
        self._command_products: dict[type, Product] = {}           # command type -> the product applying it
        self._link_products: dict[str, Product] = {}               # link -> the product applying its events
        self._wallet_products: dict[type, Product] = {}            # wallet type -> the product owning such wallets
        self.results = RequestMemory(config.dedup_window)          # (account, request id) -> events
        self._asset_index = {name: spec.index for name, spec in config.assets.items()}
        self._assets = len(config.assets)
        self._default_stp = int(config.default_stp)
        self.risk = None                                           # the risk rulebook's gate (exchange.risk.gate)

    def plug(self, product: Product) -> None:
        """Compose ``product`` into this shard, before it applies anything: its commands,
        link events and wallets are handed to it from now on, and it is reachable as
        ``shard.<product.name>`` (``exchange.accounts.product``)."""
        assert not hasattr(self, product.name), f"product name {product.name!r} is taken"
        assert not product.commands & self._command_products.keys(), f"{product.name}: commands taken"
        assert not set(product.links) & (self._link_products.keys() | set(self.config.markets)), \
            f"{product.name}: links taken"
        self.products[product.name] = product
        setattr(self, product.name, product)
        self._command_products.update(dict.fromkeys(product.commands, product))
        for link in product.links:
            self._link_products[link] = product
            self.market_seq[link] = 0
        if product.wallet_type is not None:
            self._wallet_products[product.wallet_type] = product
        product.attach(self)

    # ---- the door: field checks, permission, ownership, replay protection ---------
    def owns(self, account_id: int) -> bool:
        """Is ``account_id`` routed to this shard?"""
        return self.shards == 1 or shard_for(account_id, self.routing) == self.shard_index

    def strays(self) -> list[int]:
        """The accounts this shard holds and does not own: none, unless shards were added
        with a bound below an account already open (``actors/growth.py`` checks it)."""
        return [a for a in self.ledger.accounts if not self.owns(a)] if self.shards != 1 else []

    def admit(self, cmd, role: Role = Role.CLIENT, scope: frozenset | None = None) -> Admitted | list:
        """Check a command at the door, before it touches anything: its fields
        (``exchange.messages.validation``), whether ``role`` may send it for that account
        (NOT_PERMITTED, ACCOUNT_NOT_IN_SCOPE) and whether this shard owns the account
        (WRONG_SHARD). Return it ``Admitted``, or the rejection (never remembered:
        it changed nothing and says the same to every retry)."""
        reason, cmd = admit_fields(cmd, self._assets)
        if reason is None:
            reason = authorize(cmd, role, scope)
        if reason is None and not self.owns(cmd.account_id):
            reason = Reason.WRONG_SHARD
        if reason is not None:
            return [refusal(cmd, reason)]
        return admitted(cmd, (cmd.account_id, cmd.request_id))

    def recall(self, admitted: Admitted) -> list | None:
        """The events the same request produced before, a REQUEST_ID_REUSED rejection
        if its id was used for another body, or None if it is new."""
        found = self.results.get(admitted.key)
        if found is None:
            return None
        return found[1] if same_request(found[0], admitted.command) else reused(admitted)

    def remember(self, admitted: Admitted, events: list) -> None:
        self.results.remember(admitted.key, admitted.command, events)

    # ---- client commands -------------------------------------------------------
    def apply_client(self, cmd, context: PriceContext = NO_PRICES,
                     role: Role = Role.CLIENT) -> tuple[list, object | None]:
        """Apply an admitted command. Return (events, a request for a market or a product's
        link, or None). A plugged product's command goes to the product.

        With the risk rulebook on (``self.risk``, ``exchange.risk.gate``) a client's command
        passes the pre-trade gate first (a refusal cites its rule) and what the gate counted
        is committed only if the command was accepted; its records (``RiskAction``) follow
        the command's events. An operator's command is checked against the operator's roles
        (``exchange.risk.admin``) and applied by the gate.

        ``context`` (``exchange.accounts.pricing``): the reference a market order
        without a protection price is protected from (reference +/-
        max_slippage_bps), and the index price of every asset that margin
        levels, borrow limits and withdrawals are valued at.
        """
        gate = self.risk
        if gate is None or role != Role.CLIENT:
            if role == Role.OPERATOR:
                return self._operator(cmd, context), None
            return self._dispatch(cmd, context)
        ticket = gate.check(cmd, self.ledger.accounts.get(cmd.account_id), context)
        if type(ticket) is list:
            return ticket, None
        events, request = self._dispatch(cmd, context)
        if ticket is not None and (request is not None or not events or type(events[0]) is not OrderRejected):
            notices = gate.commit(ticket)
            if notices:
                events.extend(notices)
        return events, request

    def _operator(self, cmd, context: PriceContext) -> list:
        """An operator's command: the product it belongs to (the cashier's reviews), else the
        gate; either checks the operator, their roles and the reason (``exchange.risk.admin``)."""
        product = self._command_products.get(type(cmd))
        if product is not None:
            return product.apply(cmd, context)[0]
        if self.risk is None:
            return self._reject(cmd, Reason.UNKNOWN_COMMAND)[0]
        return self.risk.apply_operator(cmd)

    def _dispatch(self, cmd, context: PriceContext) -> tuple[list, object | None]:
        kind = type(cmd)
        if kind in self._command_products:
            return self._command_products[kind].apply(cmd, context)
        if kind is PlaceOrder:
            return self._place(cmd, context.reference_ticks)
        if kind is CancelOrder:
            return self._cancel(cmd)
        if kind is AmendOrder:
            return self._amend(cmd)
        if kind is Deposit or kind is Withdraw:
            return self._transfer(cmd, context.prices), None
        if kind is OpenAccount:
            return self._open(cmd), None
        return self._reject(cmd, Reason.UNKNOWN_COMMAND)      # a product's command, and no such product here

    @staticmethod
    def _reject(cmd, reason: Reason, order_id: int = 0) -> tuple[list, None]:
        return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), order_id)], None

    def _open(self, cmd: OpenAccount) -> list:
        """Open an account (INVALID_ACCOUNT_ID, ACCOUNT_EXISTS, UNKNOWN_FEE_TIER, in that order)."""
        if not _is_int(cmd.account_id) or not 0 < cmd.account_id <= INT64_MAX:
            return self._reject(cmd, Reason.INVALID_ACCOUNT_ID)[0]
        if cmd.account_id in self.ledger.accounts:
            return self._reject(cmd, Reason.ACCOUNT_EXISTS)[0]
        tier = cmd.fee_tier or self.config.default_fee_tier
        if type(tier) is not str or tier not in self.config.fee_tiers:
            return self._reject(cmd, Reason.UNKNOWN_FEE_TIER)[0]
        self.ledger.open(cmd.account_id, tier)
        return [AccountOpened(cmd.request_id, cmd.ts_ns, cmd.account_id, tier)]

    def _transfer(self, cmd, prices: tuple = ()) -> list:
        """Deposit or withdraw. A withdrawal is refused with the reason a product gives
        (``withdrawal_block``; margin: BELOW_INITIAL_MARGIN_LEVEL while a book owes and is
        under the initial line at the index ``prices``, rulebook 4.4.3, or NO_INDEX_PRICE)."""
        account = self.ledger.accounts.get(cmd.account_id)
        if account is None:
            return self._reject(cmd, Reason.UNKNOWN_ACCOUNT)[0]
        asset = self._asset_index.get(cmd.asset) if type(cmd.asset) is str else None
        if asset is None:
            return self._reject(cmd, Reason.UNKNOWN_ASSET)[0]
        amount = cmd.amount
        if not _is_int(amount):
            return self._reject(cmd, Reason.FIELD_NOT_AN_INTEGER)[0]
        if amount <= 0:
            return self._reject(cmd, Reason.NON_POSITIVE_AMOUNT)[0]
        if type(cmd) is Deposit:
            if account.available[asset] + account.held[asset] + amount > INT64_MAX \
                    or self.ledger.deposited[asset] + amount > INT64_MAX:
                return self._reject(cmd, Reason.VALUE_OUT_OF_RANGE)[0]
            self.ledger.deposit(account, asset, amount)
            delta = amount
        else:
            if account.available[asset] < amount:
                return self._reject(cmd, Reason.INSUFFICIENT_BALANCE)[0]
            for product in self.products.values():
                blocked = product.withdrawal_block(cmd.account_id, prices)
                if blocked is not None:
                    return self._reject(cmd, blocked)[0]
            self.ledger.withdraw(account, asset, amount)
            delta = -amount
        return [BalanceChanged(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.asset, delta,
                               account.available[asset], account.held[asset])]

    def _place(self, cmd: PlaceOrder, reference_price: int | None) -> tuple[list, object | None]:
        """Validate, hold and forward a spot order."""
        terms = self.order_terms(cmd, reference_price)
        if type(terms) is not tuple:
            return self._reject(cmd, terms)
        return self.fund_order(cmd, terms)

    def order_terms(self, cmd, reference_price: int | None, markets: dict | None = None):
        """(account, market, side, ticks, lots, otype, tif, stp) of a valid order in ``markets``
        (the spot markets by default; a product passes its own), or the Reason
        of the first failed check, in this order: UNKNOWN_ACCOUNT, UNKNOWN_MARKET, INVALID_SIDE,
        INVALID_ORDER_TYPE, INVALID_TIME_IN_FORCE, INVALID_STP_MODE, MARKET_ORDER_POST_ONLY,
        NON_POSITIVE_QUANTITY, OFF_LOT_QUANTITY, BELOW_MIN_SIZE / ABOVE_MAX_SIZE,
        NON_POSITIVE_PRICE, OFF_TICK_PRICE (NO_LIQUIDITY: a market order with nothing to
        protect against), VALUE_OUT_OF_RANGE, DUPLICATE_CLIENT_ORDER_ID. The field types
        were checked at the door (``check_fields``): every enum here is a plain int."""
        account = self.ledger.accounts.get(cmd.account_id)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        market = (self.config.markets if markets is None else markets).get(cmd.market)
        if market is None:
            return Reason.UNKNOWN_MARKET
        side, otype, tif, qty, price = cmd.side, cmd.order_type, cmd.tif, cmd.quantity, cmd.price
        stp = getattr(cmd, "stp", 0)
        if not BUY <= side <= SELL:
            return Reason.INVALID_SIDE
        if not LIMIT <= otype <= MARKET:
            return Reason.INVALID_ORDER_TYPE
        if not 1 <= tif <= 4:
            return Reason.INVALID_TIME_IN_FORCE
        if not 0 <= stp <= 3:
            return Reason.INVALID_STP_MODE
        if otype == MARKET and tif == POST_ONLY:
            return Reason.MARKET_ORDER_POST_ONLY
        if qty <= 0:
            return Reason.NON_POSITIVE_QUANTITY
        lots, off_lot = divmod(qty, market.lot_minor)
        if off_lot:
            return Reason.OFF_LOT_QUANTITY
        if not market.min_lots <= lots <= market.max_lots:
            return _size_reason(market, lots)
        if otype == LIMIT or price:
            if price <= 0:
                return Reason.NON_POSITIVE_PRICE
            ticks, off_tick = divmod(price, market.tick_minor)
            if off_tick:
                return Reason.OFF_TICK_PRICE
        elif reference_price is None:
            return Reason.NO_LIQUIDITY
        else:
            ticks = protection_price(reference_price, side, market.max_slippage_bps)
        if ticks * lots * market.quote_per_tick_lot * 2 > INT64_MAX:
            return Reason.VALUE_OUT_OF_RANGE
        if cmd.client_order_id and cmd.client_order_id in account.client_ids:
            return Reason.DUPLICATE_CLIENT_ORDER_ID
        return account, market, side, ticks, lots, otype, tif, stp

    @staticmethod
    def hold_terms(terms: tuple) -> tuple[int, int, int]:
        """(asset index, per-lot hold, total hold) of validated order terms."""
        account, market, side, ticks, lots = terms[:5]
        if side == BUY:
            per_lot = buy_hold_per_lot(market, ticks, account.taker_ppm)
            return market.quote.index, per_lot, lots * per_lot
        return market.base.index, market.lot_minor, lots * market.lot_minor

    def fund_order(self, cmd, terms: tuple, wallet=None, auto_repay: bool = False) -> tuple[list, object | None]:
        """Hold the order's funds (from the spot account, or a product's ``wallet``) and
        build its request (INSUFFICIENT_BALANCE)."""
        account, market, side, ticks, lots, otype, tif, stp = terms
        asset, per_lot, need = self.hold_terms(terms)
        book = None if wallet is None else wallet.market
        wallet = account if wallet is None else wallet
        if wallet.available[asset] < need:
            return self._reject(cmd, Reason.INSUFFICIENT_BALANCE)
        wallet.available[asset] -= need
        wallet.held[asset] += need
        if self.risk is not None:
            self.risk.opened(cmd.account_id)
        order_id = self.new_order_id()
        client_id = cmd.client_order_id
        self.orders[order_id] = OpenOrder(order_id, cmd.account_id, market, side, ticks, lots, per_lot, need,
                                          client_id, cmd.request_id, book, auto_repay, wallet, otype, tif)
        if client_id:
            account.client_ids[client_id] = order_id
        stp = stp or self._default_stp
        return [], SubmitOrder(order_id, cmd.account_id, side, ticks, lots, tif, otype == MARKET, stp,
                               account.maker_ppm, account.taker_ppm, cmd.ts_ns)

    def new_order_id(self) -> int:
        """The next order id of this shard (spot and products share the sequence): unique venue-wide."""
        self.order_seq += 1
        return (self.order_seq << ORDER_ID_SHARD_BITS) | self.shard_index

    def _find(self, cmd) -> OpenOrder | Reason | None:
        """Locate the caller's order for cancel/amend (None: ask the market)."""
        if cmd.account_id not in self.ledger.accounts:
            return Reason.UNKNOWN_ACCOUNT
        if type(cmd.market) is not str or cmd.market not in self.config.markets:
            return Reason.UNKNOWN_MARKET
        order_id = cmd.order_id
        client_id = getattr(cmd, "client_order_id", "")     # AmendOrder names its order by id only
        if not order_id and client_id:
            if type(client_id) is not str:
                return Reason.INVALID_CLIENT_ORDER_ID
            order_id = self.ledger.accounts[cmd.account_id].client_ids.get(client_id, 0)
            if not order_id:
                return Reason.ORDER_NOT_FOUND
        if not _is_int(order_id) or order_id <= 0:
            return Reason.ORDER_NOT_FOUND
        record = self.orders.get(order_id)
        if record is None:
            return None                         # maybe another shard's order: the market decides
        if record.account_id != cmd.account_id:
            return Reason.NOT_OWNER
        if record.market.name != cmd.market:
            return Reason.ORDER_NOT_FOUND
        return record

    def _cancel(self, cmd: CancelOrder) -> tuple[list, object | None]:
        found = self._find(cmd)
        if isinstance(found, Reason):
            return self._reject(cmd, found)
        order_id = found.order_id if found else cmd.order_id
        return [], CancelRequest(cmd.request_id, order_id, cmd.account_id, cmd.ts_ns)

    def _amend(self, cmd: AmendOrder) -> tuple[list, object | None]:
        found = self._find(cmd)
        if isinstance(found, Reason):
            return self._reject(cmd, found)
        if not _is_int(cmd.price) or not _is_int(cmd.quantity):
            return self._reject(cmd, Reason.FIELD_NOT_AN_INTEGER)
        if cmd.price < 0:                   # 0 keeps the price
            return self._reject(cmd, Reason.NON_POSITIVE_PRICE)
        if cmd.quantity < 0:                # 0 keeps the quantity
            return self._reject(cmd, Reason.NON_POSITIVE_QUANTITY)
        if found is None:   # not ours: let the market answer NOT_OWNER / ORDER_NOT_FOUND
            return [], AmendRequest(cmd.request_id, cmd.order_id, cmd.account_id, 0, 0, 0, cmd.ts_ns)
        market, account, wallet = found.market, self.ledger.accounts[cmd.account_id], found.wallet
        ticks, off_tick = divmod(cmd.price, market.tick_minor) if cmd.price else (found.price, 0)
        lots, off_lot = divmod(cmd.quantity, market.lot_minor) if cmd.quantity else (found.total, 0)
        if off_tick:
            return self._reject(cmd, Reason.OFF_TICK_PRICE)
        if off_lot:
            return self._reject(cmd, Reason.OFF_LOT_QUANTITY)
        if not market.min_lots <= lots <= market.max_lots:
            return self._reject(cmd, _size_reason(market, lots))
        if found.amend_extra >= 0:
            return self._reject(cmd, Reason.AMEND_IN_PROGRESS)
        # Hold for the worst case of old and new terms (see AmendOrder): a fill
        # racing this amend can then never leave the order under-funded.
        if found.side == BUY:
            asset = market.quote.index
            per_lot = max(found.per_lot, buy_hold_per_lot(market, ticks, account.taker_ppm))
        else:
            asset = market.base.index
            per_lot = found.per_lot
        filled = found.total - found.remaining
        extra = max(0, (lots - filled) * per_lot - found.held)
        if wallet.available[asset] < extra:
            return self._reject(cmd, Reason.INSUFFICIENT_BALANCE)
        wallet.available[asset] -= extra
        wallet.held[asset] += extra
        found.held += extra
        found.amend_extra = extra
        return [], AmendRequest(cmd.request_id, found.order_id, cmd.account_id,
                                ticks if cmd.price else 0, lots if cmd.quantity else 0,
                                account.taker_ppm, cmd.ts_ns)

    # ---- market events -----------------------------------------------------------
    def apply_market(self, event) -> list:
        """Settle one market event; return the client-visible events.

        Events with a ``seq`` already applied for their market are ignored.
        """
        market_seq = self.market_seq
        if event.seq <= market_seq[event.market]:
            return []
        market_seq[event.market] = event.seq
        if event.market in self._link_products:
            return self._link_products[event.market].apply_event(event)
        kind = type(event)
        if kind is Fill:
            return self._settle(event)
        if kind is OrderClosed:
            return self._closed(event)
        if kind is OrderBooked:
            record = self.orders.get(event.order_id)
            return self._acknowledge(record, [event], event.ts_ns) if record else []
        if kind is OrderAmended:
            return self._amended(event)
        if kind is RequestRejected:
            record = self.orders.get(event.order_id)
            if record is not None and record.account_id == event.account_id and record.amend_extra >= 0:
                self._release_excess(record, record.remaining * record.per_lot)
                record.amend_extra = -1
            return [OrderRejected(event.request_id, event.account_id, event.reason, event.order_id,
                                  self._rule_of(event.reason))]
        raise TypeError(f"shard cannot apply {kind.__name__}")

    def _rule_of(self, reason: int) -> str:
        """The risk rule a market's refusal cites (its mode, its breaker), or ""."""
        return "" if self.risk is None else self.risk.market_rule(reason)

    def _acknowledge(self, record: OpenOrder, events: list, ts_ns: int) -> list:
        if record.acknowledged:
            return events
        record.acknowledged = True
        m = record.market
        return [OrderAccepted(record.request_id, ts_ns, record.order_id, record.account_id, m.name, record.side,
                              record.price * m.tick_minor, record.total * m.lot_minor, record.client_order_id,
                              record.order_type, record.tif),
                *events]

    def _settle(self, fill: Fill) -> list:
        out: list = []
        taker = self.orders.get(fill.taker_order_id)
        if taker is not None:
            self._settle_side(taker, fill, fill.taker_fee)
            out = self._acknowledge(taker, out, fill.ts_ns)
        maker = self.orders.get(fill.maker_order_id)
        if maker is not None:
            self._settle_side(maker, fill, fill.maker_fee)
        out.append(fill)
        return out

    def _settle_side(self, record: OpenOrder, fill: Fill, fee: int) -> None:
        market = record.market
        account = record.wallet
        lots = fill.quantity // market.lot_minor
        notional = (fill.price // market.tick_minor) * lots * market.quote_per_tick_lot
        used = lots * record.per_lot
        base, quote = market.base.index, market.quote.index
        if record.remaining == record.total and self.risk is not None:
            self.risk.refund(record.account_id)         # its first fill: orders that trade do not use up the limit
        if record.side == BUY:
            account.held[quote] -= used
            account.available[quote] += used - notional - fee
            account.available[base] += fill.quantity
        else:
            account.held[base] -= used
            account.available[quote] += notional - fee
        record.held -= used
        record.remaining -= lots
        self.ledger.fees[quote] += fee

    def _closed(self, event: OrderClosed) -> list:
        record = self.orders.pop(event.order_id, None)
        if record is None:
            return [event]
        wallet = record.wallet
        asset = record.market.quote.index if record.side == BUY else record.market.base.index
        wallet.held[asset] -= record.held
        wallet.available[asset] += record.held
        record.held = 0
        if self.risk is not None:
            self.risk.closed(record.account_id)
        if record.client_order_id:
            self.ledger.accounts[record.account_id].client_ids.pop(record.client_order_id, None)
        if record.book is not None:
            self._wallet_products[type(wallet)].order_closed(record, event.ts_ns)
        if event.reason == REJECTED and not record.acknowledged:
            m = record.market
            return [OrderRejected(record.request_id, record.account_id, event.reject_reason, record.order_id,
                                  self._rule_of(event.reject_reason), m.name, record.side, record.price * m.tick_minor,
                                  record.total * m.lot_minor, record.client_order_id, record.order_type, record.tif)]
        return self._acknowledge(record, [event], event.ts_ns)

    def _amended(self, event: OrderAmended) -> list:
        record = self.orders.get(event.order_id)
        if record is None:
            return [event]
        market = record.market
        account = self.ledger.accounts[record.account_id]
        filled = record.total - record.remaining
        record.price = event.price // market.tick_minor
        record.remaining = event.remaining // market.lot_minor
        record.total = filled + record.remaining
        if record.side == BUY:
            record.per_lot = max(record.per_lot, buy_hold_per_lot(market, record.price, account.taker_ppm)) \
                if record.amend_extra >= 0 else record.per_lot
        record.amend_extra = -1
        self._release_excess(record, record.remaining * record.per_lot)
        return [event]

    def _release_excess(self, record: OpenOrder, required: int) -> None:
        excess = record.held - required
        assert excess >= 0, f"order {record.order_id} under-funded by {-excess}"
        if excess:
            account = record.wallet
            asset = record.market.quote.index if record.side == BUY else record.market.base.index
            account.held[asset] -= excess
            account.available[asset] += excess
            record.held = required

    # ---- views and self-checks --------------------------------------------------
    def balances(self, account_id: int) -> dict[str, tuple[int, int]] | None:
        """Per asset (available, held) in minor units; None for an account this shard does not hold."""
        account = self.ledger.accounts.get(account_id)
        if account is None:
            return None
        return {a.name: (account.available[a.index], account.held[a.index]) for a in self.config.asset_list}

    def open_orders(self, account_id: int) -> list[OpenOrder]:
        return [o for o in self.orders.values() if o.account_id == account_id]

    def check_invariants(self) -> None:
        """Assert balances are non-negative, every product's own invariants, and that every
        hold (spot or in a product's wallet) belongs to an open order held there."""
        self.ledger.check_invariants()
        if self.risk is not None:
            self.risk.check_links(self.ledger.accounts)
        for product in self.products.values():
            product.check_invariants()
        held: dict[tuple, int] = {}
        for o in self.orders.values():
            asset = o.market.quote.index if o.side == BUY else o.market.base.index
            key = (id(o.wallet), asset)
            held[key] = held.get(key, 0) + o.held
            assert o.held >= o.remaining * o.per_lot or o.amend_extra >= 0, f"under-funded {o.canonical()}"
        wallets = list(self.ledger.accounts.values())
        for product in self.products.values():
            wallets.extend(product.wallets())
        for wallet in wallets:
            for asset, amount in enumerate(wallet.held):
                assert amount == held.get((id(wallet), asset), 0), \
                    f"orphaned hold: account {wallet.account_id} book {getattr(wallet, 'market', None)} asset {asset}"

    def totals(self) -> list[int]:
        """Per asset: spot balances, fee account, and everything each product holds
        (margin: its books and funds on their way to a pool)."""
        totals = self.ledger.totals()
        for product in self.products.values():
            totals = [a + b for a, b in zip(totals, product.totals())]
        return totals

    def take_followups(self) -> list | tuple:
        """The requests that applying events called for, in order (and forget them);
        an empty tuple, allocated once, when there are none (the usual case, per push entry)."""
        if not self.followups:
            return ()
        out = list(self.followups)
        self.followups.clear()
        return out

    def canonical(self) -> tuple:
        risk = () if self.risk is None else (self.risk.canonical(),)    # a venue without it keeps its hash
        return (self.shard_index, self.order_seq, tuple(sorted(self.market_seq.items())),
                self.ledger.canonical(), tuple(o.canonical() for _, o in sorted(self.orders.items())),
                *(product.canonical() for product in self.products.values()), *risk)

    def state_hash(self) -> str:
        return digest(self.canonical())


def admitted(command, key: tuple, _new=tuple.__new__) -> Admitted:
    """``Admitted(command, key)`` without the NamedTuple constructor's overhead (on every command)."""
    return _new(Admitted, (command, key))


def stamped(cmd, ts_ns: int, _new=tuple.__new__):
    """``cmd`` with ``ts_ns`` (the shard's time) in place of the client's: field 1 of every
    client command (``tests/exchange/messages`` pins it). ``_replace`` without its cost."""
    return _new(type(cmd), (cmd[0], ts_ns, *cmd[2:]))


def refusal(cmd, reason: Reason) -> OrderRejected:
    """The answer to anything refused before it touches state: ``reason``, with the
    command's request id and account echoed only where they are valid ones (an
    invalid id may not even be encodable)."""
    client = type(cmd) in CLIENT_COMMANDS
    request_id = cmd[0] if client and valid_request_id(cmd[0]) else None
    account_id = cmd[2] if client and type(cmd[2]) is int and 0 <= cmd[2] <= INT64_MAX else 0
    return OrderRejected(request_id, account_id, int(reason))


def reused(admitted: Admitted) -> list:
    """The answer to a request id used again with a different body."""
    return [OrderRejected(admitted.key[1], admitted.key[0], int(Reason.REQUEST_ID_REUSED))]


def link_of(cmd, request) -> str:
    """Which peer a command's request goes to: the lending pool, or a market."""
    if type(request) is PoolRequest:
        return LENDING
    if type(cmd) is LiquidationStep:
        return cmd.trade_market
    return cmd.market


def _size_reason(market: MarketSpec, lots: int) -> Reason:
    return Reason.BELOW_MIN_SIZE if lots < market.min_lots else Reason.ABOVE_MAX_SIZE


def _is_int(value) -> bool:
    return type(value) is int

