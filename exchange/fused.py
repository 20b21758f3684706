"""The fused spot path: a spot order or cancel through the whole pipeline in
one function, for the single-process ``Engine``.

The pipeline (``Engine.apply``) runs a command through the shard's door
(``AccountShard.admit``), the replay memory (``recall``), the price context,
``apply_client`` (terms, hold, a ``SubmitOrder``), the market
(``MarketEngine.handle``: matching and its events), the shard again once per
event (``apply_market``: settlement, fees, release, acknowledgement) and
``remember``. Each step builds its own objects and dispatches on types; per
command that is most of the engine's time (issue 13: the engine ran at 0.05 of
a bare book). ``FusedSpot`` does the same for the commands that make up nearly
all of an exchange's traffic, a ``PlaceOrder`` (limit or market; GTC, IOC or
post-only) and a ``CancelOrder`` of the caller's own resting order, in one pass
over the same state: the market's events are built once and are the client's
events too, settlement runs as the fills are made, and no request, admitted
wrapper or price context is built.

**Reasons come from the pipeline only.** The place path opens with a guard:
one positive test that every field is what the door (``exchange.messages.
validation``) and ``AccountShard.order_terms`` would admit, in the shape they
would admit it. It gives no reasons: anything it does not pass returns
``None`` **before it changes anything**, and the Engine runs the pipeline,
which refuses with the reason (or admits an odd but valid command, an IntEnum
field say). So every rejection, and every rule that has a reason, stays where
it is written; the guard only has to be at least as strict, which the
differential suite holds it to. The rest is shared, not written again: the
hold per lot ``buy_hold_per_lot``, the protection price ``protection_price``,
matching and self-trade prevention ``OrderBook.take``/``add``, the fee
rounding (the market's ceiling, against the party that pays), the replay
memory's layout ``RequestMemory``.
What is fused is the glue between them. Off the common path, the pipeline
runs: a repeated request id, an account the shard does not own, FOK, a
post-only order that would take, a market order facing an empty side or
carrying its own protection price, a cancel by client order id, a cancel of
an order this shard does not hold or has not seen acknowledged. A maker order funded by a product (a
margin book) closing mid-match hands its close to the shard's own ``_closed``
(the product's hook may queue follow-ups, which the Engine runs).

**Checked against the pipeline**: ``tests/exchange/test_fused.py`` runs
generated command streams through an Engine with and one without the fused
path and requires the same events for every command, no change of state
whenever the fused path declines, and the same ``state_hash`` at the end; the
Engine's property and reference-matcher suites run on its default, which is
the fused path. The actors do not use it: a shard and a market are separate
processes, and they run the pipeline's steps (the simulator and the Ray
suites test those).
"""
from __future__ import annotations

from exchange.accounts.holds import buy_hold_per_lot, protection_price
from exchange.accounts.shard import ORDER_ID_SHARD_BITS, OpenOrder
from exchange.core.money import INT64_MAX, INT64_MIN, PPM
from exchange.core.reasons import CloseReason
from exchange.matching.orders import BUY, SELL, OrderType, RestingOrder, StpMode, TimeInForce
from exchange.messages.records import CancelOrder, Fill, OrderAccepted, OrderBooked, OrderClosed, PlaceOrder
from exchange.messages.validation import coid_ok, rid_text_ok

GTC, IOC, FOK, POST_ONLY = (int(t) for t in TimeInForce)
LIMIT, MARKET = int(OrderType.LIMIT), int(OrderType.MARKET)
FILLED, CANCELLED, EXPIRED_IOC, EXPIRED_STP = (int(r) for r in list(CloseReason)[:4])
EXPIRE_TAKER = int(StpMode.EXPIRE_TAKER)
_new = tuple.__new__          # a message built without its NamedTuple constructor's frame (same object)


class FusedSpot:
    """``apply(command) -> events | None`` over an Engine's shard and markets."""

    __slots__ = ("shard", "shards", "markets", "accounts", "orders", "order_buckets", "memory", "memory_buckets",
                 "market_seq", "fees", "assets", "gate", "index_ticks")

    def __init__(self, shard, markets: dict):
        self.shard = shard
        self.markets = markets                       # name -> MarketEngine
        self.accounts = shard.ledger.accounts
        self.orders = shard.orders
        self.order_buckets = shard.orders.buckets
        self.memory = shard.results
        self.memory_buckets = shard.results.buckets     # by account id & 63 (``RequestMemory``)
        self.shards = shard.shards
        self.market_seq = shard.market_seq
        self.fees = shard.ledger.fees
        self.assets = len(shard.config.assets)
        self.gate = shard.risk                       # the risk rulebook's gate (None: off)
        self.index_ticks: dict = {}                  # market -> index ticks (the Engine's; the gate's price band)

    def apply(self, cmd) -> list | None:
        """The events of a spot ``PlaceOrder``/``CancelOrder`` on the common path, or None
        (nothing changed: run the pipeline)."""
        kind = type(cmd)
        if kind is PlaceOrder:
            return self.place(cmd)
        if kind is CancelOrder:
            return self.cancel(cmd)
        return None

    # ---- place --------------------------------------------------------------------
    def place(self, cmd) -> list | None:
        request_id, ts_ns, account_id, market_name, side, otype, price, qty, tif, client_id, stp = cmd
        # The guard: every field as the door and ``AccountShard.order_terms`` would admit it,
        # written as one positive test (anything it does not pass goes to the pipeline, which
        # gives the reason); the differential suite holds it to the pipeline.
        if not ((type(request_id) is int and 0 < request_id <= INT64_MAX) or
                (type(request_id) is str and rid_text_ok(request_id))):
            return None
        if type(ts_ns) is not int or not INT64_MIN <= ts_ns <= INT64_MAX:
            return None
        if type(account_id) is not int or type(market_name) is not str:
            return None
        account = self.accounts.get(account_id)
        market = self.markets.get(market_name)
        if account is None or market is None or (market.guard is not None and market.guard.mode):
            return None                              # (a market not open: the pipeline says why)
        if type(side) is not int or not (side == BUY or side == SELL) or type(otype) is not int \
                or type(tif) is not int or not (tif == GTC or tif == IOC or tif == POST_ONLY) \
                or type(stp) is not int or not 0 <= stp <= 3 or type(qty) is not int or type(price) is not int:
            return None
        spec = market.spec
        lots, off_lot = divmod(qty, spec.lot_minor)
        if off_lot or not spec.min_lots <= lots <= spec.max_lots:
            return None
        book = market.book
        if otype == LIMIT:
            ticks, off_tick = divmod(price, spec.tick_minor)
            if off_tick or price <= 0 or price > INT64_MAX:
                return None
            if tif == POST_ONLY and book.crosses(side, ticks):
                return None
        elif otype == MARKET and tif != POST_ONLY and not price:
            reference = book.best_ask() if side == BUY else book.best_bid()
            if reference is None:
                return None                          # an empty side: the pipeline refuses (NO_LIQUIDITY)
            ticks = protection_price(reference, side, spec.max_slippage_bps)
        else:
            return None                              # a protected market order, or malformed: the pipeline
        if ticks * lots * spec.quote_per_tick_lot * 2 > INT64_MAX:
            return None
        if type(client_id) is not str or (client_id and (not coid_ok(client_id) or client_id in account.client_ids)):
            return None
        key = (account_id, request_id)
        if key in self.memory_buckets[account_id & 63] or (self.shards != 1 and not self.shard.owns(account_id)):
            return None
        if side == BUY:
            asset, per_lot = spec.quote.index, buy_hold_per_lot(spec, ticks, account.taker_ppm)
        else:
            asset, per_lot = spec.base.index, spec.lot_minor
        need = lots * per_lot
        available = account.available
        if available[asset] < need:
            return None
        gate = self.gate
        if gate is not None and not gate.quiet_place(account, market_name, ticks if otype == LIMIT else None,
                                                     self.index_ticks.get(market_name), ts_ns):
            return None                              # a control to record or enforce: the pipeline
        shard = self.shard
        # ---- from here on, state changes: the shard's hold and record ----------------
        available[asset] -= need
        account.held[asset] += need
        shard.order_seq += 1
        order_id = (shard.order_seq << ORDER_ID_SHARD_BITS) | shard.shard_index
        record = OpenOrder(order_id, account_id, spec, side, ticks, lots, per_lot, need, client_id, request_id,
                           None, False, account, otype, tif)
        self.order_buckets[(order_id >> 10) & 63][order_id] = record
        if client_id:
            account.client_ids[client_id] = order_id
        stp = stp or shard._default_stp
        # ---- the market: match --------------------------------------------------------
        fills: list = []
        expired: list = []
        remaining, taker_expired = book.take(side, ticks, lots, account_id, stp, fills, expired)
        name, lot, tick, qptl = market.name, market._lot, market._tick, market._qptl
        seq = market.seq
        events: list = []
        if fills:
            taker_ppm = account.taker_ppm
            base, quote = spec.base.index, spec.quote.index
            held, orders, fees = account.held, self.order_buckets, self.fees
            for maker, fill_lots, fill_ticks in fills:
                notional = fill_ticks * fill_lots * qptl
                taker_fee = -((-notional * taker_ppm) // PPM)                 # ceil: the taker pays
                maker_fee_ppm = maker.maker_ppm
                maker_fee = -((-notional * maker_fee_ppm) // PPM) if maker_fee_ppm >= 0 \
                    else -((notional * -maker_fee_ppm) // PPM)
                seq += 1
                fill = _new(Fill, (name, seq, ts_ns, fill_ticks * tick, fill_lots * lot, order_id, account_id,
                                   side, maker.order_id, maker.account_id, taker_fee, maker_fee))
                if not record.acknowledged:
                    record.acknowledged = True
                    events.append(_new(OrderAccepted, (request_id, ts_ns, order_id, account_id, name, side,
                                                       ticks * tick, lots * lot, client_id, otype, tif)))
                    if gate is not None and account.risk.orders_tat:    # its first fill gives its token
                        account.risk.orders_tat -= gate.ord_interval    # back (RiskGate.refund)
                events.append(fill)
                # the taker's side of the fill (AccountShard._settle_side)
                used = fill_lots * per_lot
                if side == BUY:
                    held[quote] -= used
                    available[quote] += used - notional - taker_fee
                    available[base] += fill_lots * lot
                else:
                    held[base] -= used
                    available[quote] += notional - taker_fee
                record.held -= used
                record.remaining -= fill_lots
                fees[quote] += taker_fee
                # the maker's side
                maker_id = maker.order_id
                mine = orders[(maker_id >> 10) & 63].get(maker_id)
                if mine is not None:
                    wallet = mine.wallet
                    used = fill_lots * mine.per_lot
                    if gate is not None and mine.remaining == mine.total:
                        gate.refund(mine.account_id)
                    if side == BUY:                          # the maker sold
                        wallet.held[base] -= used
                        wallet.available[quote] += notional - maker_fee
                    else:
                        wallet.held[quote] -= used
                        wallet.available[quote] += used - notional - maker_fee
                        wallet.available[base] += fill_lots * lot
                    mine.held -= used
                    mine.remaining -= fill_lots
                    fees[quote] += maker_fee
                if not maker.remaining:
                    seq += 1
                    self._close_maker(mine, _new(OrderClosed, (name, seq, ts_ns, maker_id, maker.account_id,
                                                               FILLED, 0, 0)), events)
            market.last_price = fills[-1][2]
            market.trade_count += len(fills)
            if market.guard is not None:
                market.guard.observe(ts_ns, market.last_price)
        for maker, open_lots in expired:
            seq += 1
            maker_id = maker.order_id
            self._close_maker(self.orders.get(maker_id),
                              _new(OrderClosed, (name, seq, ts_ns, maker_id, maker.account_id, EXPIRED_STP,
                                                 open_lots * lot, 0)), events)
        seq += 1
        if remaining and not taker_expired and otype != MARKET and tif != IOC:
            book.add(RestingOrder(order_id, account_id, side, ticks, remaining, lots, account.maker_ppm, tif, ts_ns))
            last = _new(OrderBooked, (name, seq, ts_ns, order_id, account_id, ticks * tick, remaining * lot))
        else:
            reason = FILLED if not remaining else EXPIRED_STP if taker_expired else EXPIRED_IOC
            last = _new(OrderClosed, (name, seq, ts_ns, order_id, account_id, reason, remaining * lot, 0))
            self._release(record, account)
        if not record.acknowledged:
            record.acknowledged = True
            events.append(_new(OrderAccepted, (request_id, ts_ns, order_id, account_id, name, side,
                                               ticks * tick, lots * lot, client_id, otype, tif)))
        events.append(last)
        market.seq = self.market_seq[name] = seq
        self._remember(key, cmd, events)
        return events

    def _release(self, record: OpenOrder, account) -> None:
        """A closed taker: what it still holds back to available, its record and client id gone
        (``AccountShard._closed`` for an order the shard funded from the spot account)."""
        order_id = record.order_id
        del self.order_buckets[(order_id >> 10) & 63][order_id]
        spec = record.market
        asset = spec.quote.index if record.side == BUY else spec.base.index
        account.held[asset] -= record.held
        account.available[asset] += record.held
        record.held = 0
        if self.gate is not None:
            risk = account.risk                      # (RiskGate.closed, without the lookup)
            if risk is None:
                self.gate.closed(record.account_id)
            elif risk.open_orders:
                risk.open_orders -= 1
        if record.client_order_id:
            account.client_ids.pop(record.client_order_id, None)

    def _close_maker(self, record: OpenOrder | None, event, events: list) -> None:
        """A maker closed by the match: released like any closed order; one a product funded
        goes through the shard's own ``_closed`` (the product's hook)."""
        if record is None:
            events.append(event)
        elif record.book is not None or not record.acknowledged:
            events.extend(self.shard._closed(event))
        else:
            self._release(record, record.wallet)
            events.append(event)

    def _remember(self, key: tuple, cmd, events: list) -> None:
        """``RequestMemory.remember`` for a key known to be new."""
        memory = self.memory
        self.memory_buckets[key[0] & 63][key] = (cmd, events)
        order = memory.order
        order.append((key, cmd, events))
        if len(order) > memory.window:
            oldest = order.popleft()[0]
            del memory.buckets[memory._bucket_index(oldest)][oldest]

    # ---- cancel -------------------------------------------------------------------
    def cancel(self, cmd) -> list | None:
        request_id, ts_ns, account_id, market_name, order_id, client_id = cmd
        # The guard: a cancel by order id of the caller's own acknowledged order resting on
        # the market it names, every field as the door and ``AccountShard._find`` would take
        # it (by client order id, or anything else: the pipeline).
        if not ((type(request_id) is int and 0 < request_id <= INT64_MAX) or
                (type(request_id) is str and rid_text_ok(request_id))):
            return None
        if type(ts_ns) is not int or not INT64_MIN <= ts_ns <= INT64_MAX or type(account_id) is not int \
                or type(market_name) is not str or type(order_id) is not int or order_id <= 0 \
                or type(client_id) is not str or client_id:
            return None
        found = self.order_buckets[(order_id >> 10) & 63].get(order_id)
        market = self.markets.get(market_name)
        if found is None or market is None or found.account_id != account_id or found.market.name != market_name \
                or found.book is not None or not found.acknowledged or account_id not in self.accounts:
            return None
        key = (account_id, request_id)
        if key in self.memory_buckets[account_id & 63] or (self.shards != 1 and not self.shard.owns(account_id)):
            return None
        resting = market.book.orders.get(order_id)
        if resting is None or resting.account_id != account_id:
            return None
        if self.gate is not None and not self.gate.quiet_cancel(found.wallet, market_name, ts_ns):
            return None
        open_lots = resting.remaining
        market.book.remove(order_id)
        market.seq = seq = market.seq + 1
        self.market_seq[market.name] = seq
        account = found.wallet
        self._release(found, account)
        events = [_new(OrderClosed, (market.name, seq, ts_ns, order_id, account_id, CANCELLED,
                                     open_lots * market._lot, 0))]
        self._remember(key, cmd, events)
        return events
