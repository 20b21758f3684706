"""MarketActor: one market's matching engine on Ray, durable in LMDB.

Concurrency model: an async actor whose handlers never await while they touch
the book, so requests are applied one at a time in arrival order. ``submit``
(shards only: the shard capability) takes a whole batch from one shard: it drops requests whose per-shard number
(``rseq``) it has already applied (a re-send), journals the rest in one group
commit, runs them through ``MarketEngine``, and queues the resulting events
per shard:
- the origin shard gets ``(number, tag, events)`` per request, which completes
  the client's pending request;
- every other shard owning a side of a fill (or an order closed by it) gets
  ``(number, None, events)`` with just the events that concern it.
``number`` is the link sequence: consecutive per destination shard, given as
the entry is staged on the shard's ``Link`` in ``_apply`` (so replay gives
every entry the same number) and part of the snapshot. A shard applies only
the entry that follows the last one it applied and refuses a push with a gap.
The ``Link`` (``actors/link/link.py``, the same one the shards send with)
keeps one push per shard in flight, re-sent until the shard answers; what
queues meanwhile goes in the next push (adaptive batching). Each push
carries the best bid/ask at the moment it is sent, which shards use to price
market orders.

Journal records: ``[SHARD_BATCH, origin, [[rseq, tag, request], ...]]``
(``exchange/messages/tags.py``). Replay re-runs them and so regenerates the same events and pushes; shards ignore the
events they already applied.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque

import orjson
import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.errors import OverloadedError
from actors.durability.journal import DurableActor, Journal
from actors.event_log import EventLog
from actors.gc_policy import GcPolicy
from actors.metrics.roles import market_metrics
from actors.link.link import Links
from actors.link.peers import Peers
from actors.link.wire import pack, unpack_batch
from exchange.messages.codec import decode, decode_events, encode, encode_shallow, hashable
from exchange.config import load_config
from exchange.accounts.ledger import digest
from exchange.venue import new_market
from exchange.matching.ticker import RollingTicker
from exchange.messages.records import Fill, SetMarketMode, SetRiskRule
from exchange.accounts.shard import refusal
from exchange.core.reasons import Reason
from exchange.risk.modes import apply_rule_change, apply_set_mode
from exchange.core.routing import shard_for
from exchange.messages.tags import RecordTag, tag_of
from exchange.snapshot import market_state, restore_market
from exchange.messages.validation import admit_fields, journal_safe

log = logging.getLogger("exchange.market")


class MarketActor(DurableActor):
    def __init__(self, config_path: str | None, market: str, data_dir: str | None = None,
                 from_oldest_snapshot: bool = False, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()        # a private one: nobody can call its role methods
        self._as_market = self.keyring.capability(Role.MARKET)
        self.engine = self._make_engine(market)
        self.name = market
        self.actor_name = self._actor_name(market)
        self.num_shards = self.config.shards
        self.shards = Peers("shard:{}")
        self._owner: dict[int, int] = {}
        self.applied_rseq: dict[int, int] = {s: 0 for s in range(self.num_shards)}
        self.links = Links(range(self.num_shards), self._push, self._applied_on)   # (number, tag, events)
        self.pushed: dict[int, int] = {s: 0 for s in range(self.num_shards)}  # last seq queued per shard
        self.traded_quantity = 0
        self.recent_trades: deque = deque(maxlen=1_000)
        self.ticker = self._make_ticker()
        self.stream = EventLog(self.config.limits.stream_events_max)
        self.requests = 0
        self.calls = 0
        self.gc = GcPolicy().install()
        self.journal = Journal.for_actor(data_dir, self.actor_name, self.config)
        self.recovery = self.journal.recover(self._restore, self._replay, from_oldest_snapshot)
        self.links.release_all()                         # everything replayed is durable
        self.journal.after_commit = self._after_commit
        self.started_ns = time.time_ns()
        self.metrics = market_metrics(self)
        if self.journal.enabled and self.links.unsent() and ray.is_initialized():
            try:
                ray.get_runtime_context().current_actor.resume.remote()
            except Exception as exc:   # the next submit re-sends instead
                log.warning("could not schedule resume: %s", exc)

    # ---- what a subclass serving another engine replaces (the LendingPoolActor) ---------
    def _make_engine(self, market: str):
        return new_market(self.config, self.config.markets[market])

    def _make_ticker(self) -> RollingTicker:
        return RollingTicker(self.engine.spec.base.scale)

    @staticmethod
    def _actor_name(market: str) -> str:
        return f"market:{market}"

    def _top(self) -> tuple:
        book = self.engine.book
        return (book.best_bid(), book.best_ask())

    def _engine_state(self) -> dict:
        return market_state(self.engine)

    def _restore_engine(self, state: dict):
        return restore_market(self.config, state)

    def _shard_of(self, account_id: int) -> int:
        shard = self._owner.get(account_id)
        if shard is None:
            shard = self._owner[account_id] = shard_for(account_id, self.config.routing)
        return shard

    # ---- requests from shards -----------------------------------------------------
    async def submit(self, capability, origin: int, batch: bytes, applied: int = 0) -> bytes:
        """Apply ``[(rseq, tag, request), ...]`` (packed) from shard ``origin``, which has applied
        our push entries up to ``applied``; answer (packed) ``[last rseq applied, [best bid,
        best ask], every durable push entry for the origin it has not acknowledged]``, so the
        origin settles its requests from the answer without waiting for a push.
        Raises ``PermissionError`` without the shard capability, ``WireError`` on a malformed batch."""
        self.keyring.check(capability, Role.SHARD)
        started = time.perf_counter()
        if type(origin) is not int or origin not in self.applied_rseq:
            raise ValueError(f"no shard {origin!r}")
        if type(applied) is not int:
            raise ValueError(f"applied is an entry number, not {type(applied).__name__}")
        link = self.links[origin]
        link.acknowledge(applied)
        batch = [entry for entry in unpack_batch(batch) if entry[0] > self.applied_rseq[origin]]
        if batch and self.links.backlog() >= self.config.limits.push_entries_max:
            raise OverloadedError(f"{self.actor_name}: {self.links.backlog()} push entries queued for one shard "
                                  "(limits.push_entries_max); the shard sends this batch again")
        if batch:
            record = _batch_record(origin, batch)      # encoded before anything is applied
            if record is None:                         # a value the journal cannot hold: answer the safe request
                batch = [(rseq, tag, journal_safe(request)) for rseq, tag, request in batch]
                record = _batch_record(origin, batch)
            self._apply(origin, batch)
            marks = self.links.marks()
            self.calls += 1
            self.gc.maybe_collect()
            await self.journal.commit([record])
            self._maybe_crash("market.after_match")
            self.links.release(marks)
            self.metrics.record_submit(len(batch), time.perf_counter() - started)
        else:                   # only re-sent numbers: a copy of a batch may still be committing; answer
            await self.journal.drain()      # once it is durable, so the sender never drops an undurable batch
        entries = link.hand_over()                  # before the link's push task runs: the answer carries them
        self.links.kick()                           # new pushes for other shards, and any left from a restart
        return pack([self.applied_rseq[origin], self._top(), entries])

    async def operator_command(self, capability, command: list) -> list:
        """An operator's ``SetMarketMode`` or ``SetRiskRule`` (encoded) for this market, journaled;
        return the events (``OperatorActed`` or the refusal), encoded. Raises
        ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        events = self._operate(decode(command))
        await self.journal.commit([orjson.dumps([RecordTag.MARKET_OPERATOR, command])])
        return [encode(e) for e in events]

    def _operate(self, command) -> list:
        guard = self.engine.guard
        reason, command = admit_fields(command, len(self.config.assets))
        if reason is None and guard is None:
            reason = Reason.UNKNOWN_COMMAND
        if reason is None and type(command) is SetMarketMode and command.market != self.name:
            reason = Reason.UNKNOWN_MARKET
        if reason is None and type(command) not in (SetMarketMode, SetRiskRule):
            reason = Reason.NOT_PERMITTED
        if reason is not None:
            return [refusal(command, reason)]
        if type(command) is SetMarketMode:
            return apply_set_mode(guard, command)
        return apply_rule_change(guard, command)

    def risk_view(self) -> dict | None:
        """The market's mode, its breaker's rule and its audit chain."""
        guard = self.engine.guard
        return None if guard is None else {**guard.view(), "audit": guard.audit.snapshot()}

    def _apply(self, origin: int, batch: list) -> None:
        engine, shard_of, links = self.engine, self._shard_of, self.links
        to_others: dict[int, list] = {}
        published: list = []
        everyone = range(self.num_shards)
        for rseq, tag, request in batch:
            events = engine.handle(request)
            if origin is not None:
                links[origin].stage(tag, events)
            published.extend(events)
            for event in events:
                if type(event) is Fill:
                    self.recent_trades.append(event)
                    self.ticker.record(event.ts_ns, event.seq, event.price, event.quantity)
                    self.traded_quantity += event.quantity
                    for account in (event.taker_account, event.maker_account):
                        shard = shard_of(account)
                        if shard != origin:
                            to_others.setdefault(shard, []).append(event)
                elif not event.account_id:          # for every shard (the pools' interest index)
                    for shard in everyone:
                        if shard != origin:
                            to_others.setdefault(shard, []).append(event)
                else:
                    shard = shard_of(event.account_id)
                    if shard != origin:
                        to_others.setdefault(shard, []).append(event)
            if events and origin is not None:
                self.pushed[origin] = events[-1].seq
        self.stream.extend(published)
        for shard, events in to_others.items():
            links[shard].stage(None, events)
            self.pushed[shard] = events[-1].seq
        if origin is not None:
            self.applied_rseq[origin] = batch[-1][0]
        self.requests += len(batch)

    # ---- market -> shard links ------------------------------------------------------
    async def _push(self, shard: int, entries: list) -> int:
        """One call on the link to ``shard``, with the best prices now; the shard answers
        with the last entry number it applied."""
        return await self.shards.call(shard, "on_market_events", self._as_market, self.name, pack(entries),
                                      self._top())

    async def _applied_on(self, shard: int) -> int:
        """Before the first push since start: the last entry number ``shard`` has applied from us."""
        return await self.shards.call(shard, "applied_seq", self.name)

    async def resume(self) -> bool:
        """After a restart: re-send every push the previous incarnation had not delivered."""
        self.links.kick()
        return True

    # ---- durability ------------------------------------------------------------------
    def _after_commit(self) -> None:
        if self.journal.snapshot_due():
            self.journal.snapshot(self._state())

    def _state(self) -> dict:
        links = self.links.items()
        return {"market": self._engine_state(), "applied_rseq": {str(k): v for k, v in self.applied_rseq.items()},
                "queues": {str(s): link.pending() for s, link in links},
                "pushed": {str(k): v for k, v in self.pushed.items()},
                "entry_numbers": {str(s): link.number for s, link in links},
                "traded_quantity": self.traded_quantity, "ticker": self.ticker.state()}

    def _restore(self, state: dict) -> None:
        self.engine = self._restore_engine(state["market"])
        self.applied_rseq.update({int(k): v for k, v in state["applied_rseq"].items()})
        self.pushed.update({int(k): v for k, v in state["pushed"].items()})
        for shard, entries in state["queues"].items():
            self.links[int(shard)].restore(state["entry_numbers"][shard],
                                           [(n, hashable(tag), decode_events(ev)) for n, tag, ev in entries])
        self.traded_quantity = state["traded_quantity"]
        if "ticker" in state:                       # (snapshots from before issue 18 have none)
            self.ticker.restore(state["ticker"])

    def _replay(self, record: list) -> None:
        kind = tag_of(record)
        if kind is RecordTag.MARKET_OPERATOR:
            self._operate(decode(record[1]))
            return
        if kind is not RecordTag.SHARD_BATCH:
            raise ValueError(f"not a market's journal record: {kind.name}")
        origin = record[1]
        self._apply(origin, [(r, hashable(tag), decode(req)) for r, tag, req in record[2]])

    # ---- views ----------------------------------------------------------------
    def depth(self, levels: int = 10) -> dict:
        view = self.engine.depth(levels)
        view["last_price"] = self.engine.last_price * self.engine.spec.tick_minor
        return view

    def depth_changes(self, since: int) -> dict | None:
        """The levels touched since the read at ``since`` (``MarketEngine.depth_changes``)."""
        return self.engine.depth_changes(since)

    def trades(self, limit: int = 100) -> list:
        return list(self.recent_trades)[-limit:]

    def ticker_24h(self, levels: int = 1) -> dict:
        """The rolling 24 hours to now (``exchange.matching.ticker``), with the book's top
        ``levels`` and the last trade, all minor units."""
        last = self.recent_trades[-1] if self.recent_trades else None
        return {**self.ticker.window(clock.now_ns()), "depth": self.depth(levels),
                "last_quantity": last.quantity if last else 0}

    async def events_after(self, cursor: int, timeout_s: float = 1.0, limit: int = 10_000) -> dict:
        return await self.stream.wait_after(cursor, timeout_s, limit)

    def push_marks(self) -> dict:
        """Per shard, the last market seq queued for it (for a consistent audit)."""
        return dict(self.pushed)

    def stats(self) -> dict:
        book = self.engine.book
        tick = self.engine.spec.tick_minor
        bid, ask = book.best_bid(), book.best_ask()
        j = self.journal
        return {"market": self.name, "seq": self.engine.seq, "requests": self.requests, "calls": self.calls,
                "trades": self.engine.trade_count, "traded_quantity": self.traded_quantity,
                "resting_orders": len(book.orders),
                "best_bid": bid * tick if bid else None, "best_ask": ask * tick if ask else None,
                "last_price": self.engine.last_price * tick or None, "recovery": self.recovery,
                "started_ns": self.started_ns, "pid": os.getpid(), "gc_collections": self.gc.collections,
                "gc_pause_s_max": round(self.gc.pause_s_max, 4), "journal_commits": j.commits,
                "queued_pushes": self.links.unsent()}

    def state_hash(self) -> str:
        return digest(self.engine.canonical())


def _batch_record(origin: int, batch: list) -> bytes | None:
    """The journal record ``[SHARD_BATCH, origin, batch]``, or None if it cannot be encoded."""
    try:
        return orjson.dumps([RecordTag.SHARD_BATCH, origin, batch], default=encode_shallow)
    except TypeError:
        return None


RemoteMarket = ray.remote(MarketActor)
