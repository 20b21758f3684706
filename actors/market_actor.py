"""MarketActor: one market's matching engine on Ray.

Concurrency model: an async actor whose methods never await while they touch
the book, so requests are applied one at a time in arrival order (Ray starts
an actor's tasks from one caller in submission order). ``submit`` takes a whole
batch from one shard, runs each request through ``MarketEngine``, then pushes
the resulting events to the shards in one call per shard (fire-and-forget; each
shard applies pushes from a market in order and ignores repeated ``seq``):
- the origin shard gets ``(tag, events)`` per request, which completes the
  client's pending request;
- every other shard owning a side of a fill (or an order closed by it) gets
  ``(None, events)`` with just the events that concern it.
Each push carries the best bid/ask, which shards use to price market orders,
and a per-shard link number: Ray may run an async actor's calls out of order,
so the shard reorders pushes by that number (``actors.link``).
"""
from __future__ import annotations

from collections import deque

import ray

from actors.event_log import EventLog
from actors.gc_policy import GcPolicy
from actors.link import OutboundLinks
from actors.wire import pack, unpack
from exchange.config import load_config
from exchange.ledger import digest
from exchange.market import MarketEngine
from exchange.messages import Fill
from exchange.routing import shard_for


class MarketActor:
    def __init__(self, config_path: str | None, market: str):
        self.config = load_config(config_path)
        self.engine = MarketEngine(self.config.markets[market])
        self.name = market
        self.shards: list = []
        self.num_shards = self.config.shards
        self._owner: dict[int, int] = {}
        self.recent_trades: deque = deque(maxlen=1_000)
        self.stream = EventLog()
        self.pushed: dict[int, int] = {}      # shard -> last seq pushed (for consistent audits)
        self.links = OutboundLinks()
        self.gc = GcPolicy().install()
        self.requests = 0
        self.calls = 0

    def connect(self, shards: list) -> bool:
        self.shards = shards
        return True

    def _shard_of(self, account_id: int) -> int:
        shard = self._owner.get(account_id)
        if shard is None:
            shard = self._owner[account_id] = shard_for(account_id, self.num_shards)
        return shard

    async def submit(self, origin: int, batch: bytes) -> int:
        """Apply ``[(tag, request), ...]`` (packed) from shard ``origin``; push the events."""
        batch = unpack(batch)
        engine, shard_of = self.engine, self._shard_of
        to_origin: list = []
        to_others: dict[int, list] = {}
        publish = self.stream.append
        for tag, request in batch:
            events = engine.handle(request)
            to_origin.append((tag, events))
            for event in events:
                publish(event)
                if type(event) is Fill:
                    self.recent_trades.append(event)
                    for account in (event.taker_account, event.maker_account):
                        shard = shard_of(account)
                        if shard != origin:
                            to_others.setdefault(shard, []).append(event)
                else:
                    shard = shard_of(event.account_id)
                    if shard != origin:
                        to_others.setdefault(shard, []).append(event)
        self.requests += len(batch)
        self.calls += 1
        book = engine.book
        top = (book.best_bid(), book.best_ask())
        for shard, events in to_others.items():
            self._push(shard, [(None, events)], top)
            self.pushed[shard] = events[-1].seq
        self._push(origin, to_origin, top)
        self.gc.maybe_collect()
        self.pushed[origin] = max(events[-1].seq for _, events in to_origin if events)
        return len(batch)

    def _push(self, shard: int, entries: list, top: tuple) -> None:
        self.shards[shard].on_market_events.remote(self.name, self.links.next(shard), pack(entries), top)

    # ---- views ----------------------------------------------------------------
    def depth(self, levels: int = 10) -> dict:
        view = self.engine.depth(levels)
        view["last_price"] = self.engine.last_price * self.engine.spec.tick_minor
        return view

    def trades(self, limit: int = 100) -> list:
        return list(self.recent_trades)[-limit:]

    async def events_after(self, cursor: int, timeout_s: float = 1.0, limit: int = 10_000) -> dict:
        return await self.stream.wait_after(cursor, timeout_s, limit)

    def push_marks(self) -> dict:
        """Per shard, the last market seq pushed to it (for a consistent audit)."""
        return {shard: self.pushed.get(shard, 0) for shard in range(self.num_shards)}

    def stats(self) -> dict:
        book = self.engine.book
        tick = self.engine.spec.tick_minor
        bid, ask = book.best_bid(), book.best_ask()
        return {"market": self.name, "seq": self.engine.seq, "requests": self.requests, "calls": self.calls,
                "trades": self.engine.trade_count, "resting_orders": len(book.orders),
                "best_bid": bid * tick if bid else None, "best_ask": ask * tick if ask else None,
                "last_price": self.engine.last_price * tick or None}

    def state_hash(self) -> str:
        return digest(self.engine.canonical())


RemoteMarket = ray.remote(MarketActor)
