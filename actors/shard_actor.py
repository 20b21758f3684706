"""AccountShardActor: a partition of the accounts on Ray.

Concurrency model: an async actor. ``execute`` (client batches) and
``on_market_events`` (pushes from markets) run on one event loop and never
await while they touch state, so every mutation is atomic with respect to the
others. A client batch is validated and funded at once; orders go to each
market's outbox, and one flusher task per market sends the outbox as a single
``submit`` call, accumulating while a call is in flight (adaptive batching:
one order goes out alone when the link is idle, thousands go together under
load). ``execute`` then awaits the futures of its requests, which the market's
pushes resolve.

Replay protection: a request whose ``(account, request_id)`` completed before
returns the remembered events; one still in flight waits on the same future.
"""
from __future__ import annotations

import asyncio
import itertools
import time

import ray

from actors.event_log import EventLog
from actors.gc_policy import GcPolicy
from actors.link import InboundLinks
from actors.wire import pack, unpack
from exchange.config import load_config
from exchange.ledger import digest
from exchange.messages import Fill, OrderClosed, OrderRejected, PlaceOrder
from exchange.orders import BUY, OrderType
from exchange.reasons import Reason
from exchange.shard import AccountShard

MARKET_ORDER = int(OrderType.MARKET)
CLOSED_HISTORY = 100_000


class Batch:
    """One ``execute`` call waiting for its requests' answers."""
    __slots__ = ("future", "results", "missing")

    def __init__(self, future: asyncio.Future, size: int):
        self.future = future
        self.results: list = [None] * size
        self.missing = 0

    def fill(self, position: int, events: list) -> None:
        self.results[position] = events
        self.missing -= 1
        if not self.missing and not self.future.done():
            self.future.set_result(self.results)


class Pending:
    """A request sent to a market: its events so far and who waits for it."""
    __slots__ = ("events", "waiters")

    def __init__(self, events: list, batch: Batch, position: int):
        self.events = events
        self.waiters = [(batch, position)]


class AccountShardActor:
    def __init__(self, config_path: str | None, shard_index: int):
        self.config = load_config(config_path)
        self.index = shard_index
        self.shard = AccountShard(self.config, shard_index)
        self.markets: dict = {}
        self.outbox: dict[str, list] = {name: [] for name in self.config.markets}
        self.inflight: dict[str, bool] = {name: False for name in self.config.markets}
        self.pending: dict[tuple, Pending] = {}
        self.top: dict[str, tuple] = {name: (None, None) for name in self.config.markets}
        self.index_ticks: dict[str, int] = {}
        self.streams: dict[int, EventLog] = {}
        self.closed: dict[int, object] = {}              # recent closed orders, for get_order
        self.links = InboundLinks()
        self.gc = GcPolicy().install()
        self.busy_s = 0.0                                  # time spent applying, for stats
        self.commands = 0

    def connect(self, markets: dict) -> bool:
        self.markets = markets
        return True

    def exchange_config(self):
        """The configuration this shard runs with (clients read scales from it)."""
        return self.config

    # ---- client commands ----------------------------------------------------------
    async def execute(self, commands: list | bytes) -> bytes:
        """Apply a batch of client commands; return each one's events (packed, in order)."""
        return pack(await self._execute(unpack(commands)))

    async def _execute(self, commands: list) -> list:
        busy_start = time.perf_counter()
        shard, pending = self.shard, self.pending
        batch = Batch(asyncio.get_running_loop().create_future(), len(commands))
        results = batch.results
        touched: set = set()
        for i, cmd in enumerate(commands):
            key = _request_key(cmd)
            done = shard.results.get(key)
            if done is not None:
                results[i] = done
                continue
            waiting = pending.get(key)
            if waiting is not None:          # the same request is in flight: share its answer
                waiting.waiters.append((batch, i))
                batch.missing += 1
                continue
            try:
                events, request = shard.apply_client(cmd, self._reference(cmd))
            except (AttributeError, TypeError, ValueError, IndexError):
                events, request = [OrderRejected(key[1], key[0], int(Reason.MALFORMED_COMMAND))], None
            if request is None:
                shard.remember(*key, events)
                self._publish(events)
                results[i] = events
                continue
            pending[key] = Pending(events, batch, i)
            batch.missing += 1
            self.outbox[cmd.market].append((key, request))
            touched.add(cmd.market)
        self.commands += len(commands)
        for market in touched:
            self._kick(market)
        self.gc.maybe_collect()
        self.busy_s += time.perf_counter() - busy_start
        if batch.missing:
            return await batch.future
        return results

    def _reference(self, cmd) -> int | None:
        if type(cmd) is not PlaceOrder or cmd.order_type != MARKET_ORDER or cmd.price:
            return None
        bid, ask = self.top.get(cmd.market, (None, None))
        best = ask if cmd.side == BUY else bid
        return best if best is not None else self.index_ticks.get(cmd.market)

    def _kick(self, market: str) -> None:
        if not self.inflight[market] and self.outbox[market]:
            self.inflight[market] = True
            asyncio.get_running_loop().create_task(self._flush(market))

    async def _flush(self, market: str) -> None:
        try:
            while self.outbox[market]:
                batch, self.outbox[market] = self.outbox[market], []
                await self.markets[market].submit.remote(self.index, pack(batch))
        finally:
            self.inflight[market] = False
            if self.outbox[market]:
                self._kick(market)

    # ---- market pushes -------------------------------------------------------------
    async def on_market_events(self, market: str, number: int, entries: bytes, top: tuple) -> None:
        """Receive push ``number`` from ``market``; apply pushes strictly in order."""
        busy_start = time.perf_counter()
        self.links.receive(market, number, (market, unpack(entries), top), self._apply_push)
        self.busy_s += time.perf_counter() - busy_start

    def _apply_push(self, message: tuple) -> None:
        """Settle a market's events; complete the requests they answer."""
        market, entries, top = message
        shard, pending = self.shard, self.pending
        apply_market = shard.apply_market
        self.top[market] = top
        for tag, events in entries:
            produced: list = []
            for event in events:
                produced.extend(apply_market(event))
            self._publish(produced)
            if tag is None:
                continue
            waiting = pending.pop(tag, None)
            if waiting is None:
                continue
            account = tag[0]
            events = waiting.events
            events.extend(e for e in produced if _concerns(e, account))
            shard.remember(*tag, events)
            for batch, position in waiting.waiters:
                batch.fill(position, events)

    def _publish(self, events: list) -> None:
        """Feed subscribed account streams and the closed-order history."""
        streams, closed = self.streams, self.closed
        for event in events:
            kind = type(event)
            if kind is Fill:
                if streams:
                    for account in (event.taker_account, event.maker_account):
                        log = streams.get(account)
                        if log is not None:
                            log.append(event)
                continue
            if kind is OrderClosed or (kind is OrderRejected and event.order_id):
                closed[event.order_id] = event
            if streams:
                log = streams.get(event.account_id)
                if log is not None:
                    log.append(event)
        if len(closed) > 2 * CLOSED_HISTORY:          # trim in bulk, not per event
            for order_id in list(itertools.islice(closed, len(closed) - CLOSED_HISTORY)):
                del closed[order_id]

    def set_index_prices(self, prices: dict[str, int]) -> None:
        """Index price per market in ticks (from the IndexActor)."""
        self.index_ticks.update(prices)

    # ---- queries ---------------------------------------------------------------------
    def balances(self, account_id: int) -> dict | None:
        account = self.shard.ledger.accounts.get(account_id)
        if account is None:
            return None
        return {a.name: (account.available[a.index], account.held[a.index]) for a in self.config.asset_list}

    def open_orders(self, account_id: int) -> list[dict]:
        return [_order_view(o) for o in self.shard.open_orders(account_id)]

    def get_order(self, account_id: int, order_id: int) -> dict | None:
        record = self.shard.orders.get(order_id)
        if record is not None:
            return _order_view(record) if record.account_id == account_id else None
        closed = self.closed.get(order_id)
        if closed is None or closed.account_id != account_id:
            return None
        return {"order_id": order_id, "status": "closed", "event": closed}

    def subscribe(self, account_id: int) -> int:
        """Start (or keep) the event log of an account; return its last cursor."""
        log = self.streams.setdefault(account_id, EventLog())
        return log.last

    async def events_after(self, account_id: int, cursor: int, timeout_s: float = 1.0) -> dict:
        log = self.streams.setdefault(account_id, EventLog())
        return await log.wait_after(cursor, timeout_s)

    def audit(self) -> dict:
        """Totals for the conservation audit, with the market seqs they reflect."""
        ledger = self.shard.ledger
        return {"shard": self.index, "totals": ledger.totals(), "deposited": list(ledger.deposited),
                "withdrawn": list(ledger.withdrawn), "applied": dict(self.shard.market_seq),
                "pending": len(self.pending), "open_orders": len(self.shard.orders),
                "reorder_backlog": self.links.backlog(), "busy_s": round(self.busy_s, 3),
                "cpu_s": round(time.process_time(), 3)}

    def check_invariants(self) -> bool:
        self.shard.check_invariants()
        return True

    def stats(self) -> dict:
        return {"shard": self.index, "accounts": len(self.shard.ledger.accounts), "commands": self.commands,
                "pending": len(self.pending), "open_orders": len(self.shard.orders)}

    def state_hash(self) -> str:
        return digest(self.shard.canonical())


def _request_key(cmd) -> tuple:
    try:
        return (cmd[2], cmd[0])
    except (TypeError, IndexError, KeyError):
        return (None, None)


def _concerns(event, account: int) -> bool:
    if type(event) is Fill:
        return event.taker_account == account or event.maker_account == account
    return getattr(event, "account_id", account) == account


def _order_view(o) -> dict:
    m = o.market
    return {"order_id": o.order_id, "account_id": o.account_id, "market": m.name, "side": o.side,
            "price": o.price * m.tick_minor, "quantity": o.total * m.lot_minor,
            "remaining": o.remaining * m.lot_minor, "client_order_id": o.client_order_id, "status": "open"}


RemoteShard = ray.remote(AccountShardActor)
