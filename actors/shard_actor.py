"""AccountShardActor: a partition of the accounts on Ray, durable in LMDB.

Doors: ``execute`` is the client door (client commands only: a liquidator
command comes back ``NOT_PERMITTED``); ``execute_as(capability, ...)`` is the
liquidator's; ``execute_scoped(scope, ...)`` is a scoped client's (accounts
outside the scope come back ``ACCOUNT_NOT_IN_SCOPE``); ``on_market_events``
and ``set_index_prices`` need the market and index capabilities
(``actors/capability.py``, ``docs/SECURITY.md``).

Concurrency model: an async actor. ``execute`` (client batches) and
``on_market_events`` (pushes from markets) run on one event loop and never
await while they touch state, so every mutation is atomic with respect to the
others. A client batch is validated and funded at once, journaled in one
group commit, and its market requests go to each market's ``Link``
(``actors/link/link.py``), which sends them as one ``submit`` call at a time
and accumulates while that call is in flight (adaptive batching: one order
goes alone when the link is idle, thousands together under load).
``execute`` then awaits its batch, which the markets' pushes complete.

Delivery between actors is at-least-once with de-duplication on the receiver,
so the effect is exactly once:
- shard -> market: each request carries a per-(shard, market) number
  (``rseq``, the link's entry number); the link re-sends a batch until the
  market answers; the market drops numbers it has applied;
- market -> shard: one push per link in flight, re-sent until acknowledged;
  every push entry carries the link's sequence number: the shard skips the
  entries at or below the last one it applied (a re-send) and refuses, whole,
  a push whose first new entry does not follow it (``LinkSequenceError``).

The command path (issue 11): every command passes the domain's door first
(``AccountShard.admit``: field bounds the journal can hold, the sender's role
and scope, this shard's ownership of the account) and is checked against the
replay memory by its body (``REQUEST_ID_REUSED``); then this shard stamps it
with its own clock (``ts_ns``, monotonic: the client's value is ignored),
encodes its journal record, checks the journal has room (``STORAGE_FULL``),
and only then applies it. Answers leave once the record committed.

Journal records (``exchange/messages/tags.py``): ``[CLIENT_BATCH, [record,
...]]`` (one per client batch) holding ``[COMMAND, command, context]`` (a
stamped command and the ``PriceContext`` it was priced in), and ``[PUSH,
market, entries, top]`` (a market's push). Recovery replays them through the
same code. Streams are views, not state: they start empty after a restart.
The history (orders, trades, perpetual income, withdrawals:
``exchange/accounts/history.py``) is a view too, but rides in the snapshot and
is rebuilt by replay (a replayed command's events as well as a push's).
"""
from __future__ import annotations

import asyncio
from fractions import Fraction
import logging
import os
import time

import orjson
import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.errors import OverloadedError
from actors.durability.journal import DurableActor, Journal
from actors.event_log import EventLog
from actors.gc_policy import GcPolicy
from actors.metrics.roles import shard_metrics
from actors.link.link import Links
from actors.link.peers import Peers
from actors.link.wire import pack, unpack_commands, unpack_plain, unpack_push, unpack_submit_answer
from exchange.accounts import access
from exchange.messages.codec import decode, decode_events, encode_shallow, hashable
from exchange.config import load_config
from exchange.accounts.ledger import digest
from exchange.margin.desk import MARGIN_COMMANDS, index_price_vector, update_index_prices
from exchange.messages.records import (LENDING, Deposit, EnableMargin, Fill, MarkUpdated, OpenAccount,
                                       TransferMargin, Withdraw)
from exchange.core.reasons import Reason
from exchange.accounts.dedup import same_request
from exchange.accounts.history import History
from exchange.messages.validation import CLIENT_COMMAND_TYPES
from exchange.accounts.pricing import PriceContext, context_from, price_context
from exchange.accounts.shard import Admitted, admitted as admitted_as, link_of, refusal, reused, stamped
from exchange.messages.tags import RecordTag, tag_of
from exchange.snapshot import restore_shard, shard_state
from exchange.perp import liquidation as perp_liquidation
from exchange.perp.rules import perp_markets
from exchange.venue import new_shard

CLIENT_BATCH, COMMAND, PUSH = RecordTag.CLIENT_BATCH, RecordTag.COMMAND, RecordTag.PUSH
PEER_FREE = frozenset((OpenAccount, Deposit, Withdraw, EnableMargin, TransferMargin)) \
    | access.OPERATOR_COMMANDS | access.OTC_COMMANDS                                      # answered on the shard alone
CLIENT = access.Role.CLIENT
LINK_FIELDS = {kind: tuple(i for i, f in enumerate(kind._fields) if f in ("market", "trade_market"))
               for kind in CLIENT_COMMAND_TYPES}          # per command type: the fields naming a market's link
log = logging.getLogger("exchange.shard")


class LinkSequenceError(RuntimeError):
    """A market's push does not follow the last entry this shard applied from it."""


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
    """A command whose requests went to markets or the pool: its events so far, its
    command (to tell a re-used id: ``dedup.same_request``), how many answers are still due (follow-up requests
    add to it), who waits."""
    __slots__ = ("events", "command", "waiters", "outstanding")

    def __init__(self, events: list, command, outstanding: int = 1):
        self.events = events
        self.command = command
        self.waiters: list = []
        self.outstanding = outstanding


class AccountShardActor(DurableActor):
    def __init__(self, config_path: str | None, shard_index: int, data_dir: str | None = None,
                 from_oldest_snapshot: bool = False, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.limits = self.config.limits
        self.keyring = keyring or Keyring.mint()        # a private one: nobody can call its role methods
        self._as_shard = self.keyring.capability(Role.SHARD)
        self.index = shard_index
        self.name = f"shard:{shard_index}"
        self.shard = new_shard(self.config, shard_index, self.config.routing)
        self.last_ts_ns = 0                                        # the last stamp given (monotonic)
        names = [m.name for m in self.config.market_list] + sorted(perp_markets(self.config)) + [LENDING]
        self.markets = Peers("market:{}", {LENDING: LENDING})      # the markets and the lending pool
        self.liquidator = Peers("{}")
        self.asset_prices = index_price_vector(self.config)        # index price per asset (quote minor / unit)
        self.zones: dict[tuple, int] = {}                          # margin book -> last notified zone (a view)
        self.links = Links(names, self._submit)                    # (rseq, tag, request) to each market
        self.pending: dict[tuple, Pending] = {}
        self.top: dict[str, tuple] = {n: (None, None) for n in names}
        self.fill_quantity_applied: dict[str, int] = {n: 0 for n in names}
        self.link_applied: dict[str, int] = {n: 0 for n in names}   # last push entry number applied per market
        self.index_ticks: dict[str, int] = {}
        self.streams: dict[int, EventLog] = {}
        self.history = self._new_history()                        # orders and trades, for get_order and HTTP
        self.commands = 0
        self.busy_s = 0.0
        self.gc = GcPolicy().install()
        self.journal = Journal.for_actor(data_dir, self.name, self.config)
        self.recovery = self.journal.recover(self._restore, self._replay, from_oldest_snapshot)
        self.links.release_all()                          # everything replayed is durable
        self.link_durable = dict(self.link_applied)       # the last push entry applied *and journaled*: the
                                                          # only number ever reported to a market
        self.journal.after_commit = self._after_commit
        self.started_ns = clock.now_ns()
        self.metrics = shard_metrics(self)
        if self.journal.enabled and self.links.unsent() and ray.is_initialized():
            try:     # re-send what the previous incarnation had not delivered, once we are up
                ray.get_runtime_context().current_actor.resume.remote()
            except Exception as exc:   # not running as an actor: the next call re-sends instead
                log.warning("could not schedule resume: %s", exc)

    # ---- client commands ----------------------------------------------------------
    async def execute(self, commands: list | bytes) -> bytes:
        """The client door: apply a batch of client commands; return each one's events
        (packed, in order). Anything else is rejected ``NOT_PERMITTED``; an
        element that does not decode, ``MALFORMED_COMMAND``."""
        return await self._door(commands, access.Role.CLIENT, None)

    async def execute_as(self, capability, commands: list | bytes) -> bytes:
        """The liquidator's door: its commands (and cancels) with the liquidator capability.
        Raises ``PermissionError`` without it."""
        self.keyring.check(capability, Role.LIQUIDATOR)
        return await self._door(commands, access.Role.LIQUIDATOR, None)

    async def execute_operator(self, capability, commands: list | bytes) -> bytes:
        """The risk desk's door: freezes, locks, restrictions, asset freezes and threshold
        changes (``exchange.risk``), each checked against its operator's roles and reason.
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        return await self._door(commands, access.Role.OPERATOR, None)

    async def execute_otc(self, capability, commands: list | bytes) -> bytes:
        """The OTC desk's door: its numbered crossings (``exchange.otc.crossing``). Raises
        ``PermissionError`` without the OTC capability."""
        self.keyring.check(capability, Role.OTC)
        return await self._door(commands, access.Role.OTC, None)

    async def execute_scoped(self, scope, commands: list | bytes) -> bytes:
        """A scoped client's door: client commands for the scope's accounts only (others are
        rejected ``ACCOUNT_NOT_IN_SCOPE``). Raises ``PermissionError`` for a scope not issued
        by this deployment's keyring."""
        accounts = self.keyring.check_scope(scope)
        return await self._door(commands, access.Role.CLIENT, accounts)

    async def _door(self, commands: list | bytes, role: access.Role, scope: frozenset | None) -> bytes:
        started = time.perf_counter()
        commands = unpack_commands(commands)
        results = await self._execute(commands, role, scope)
        self.metrics.record_batch(commands, results, time.perf_counter() - started)
        return pack(results)

    async def _execute(self, commands: list, role: access.Role = access.Role.CLIENT,
                       scope: frozenset | None = None) -> list:
        """Admit, stamp, journal-encode, apply each command; one group commit for the
        batch; the answers once every request the batch sent is answered.

        A command is applied only once its journal record is encoded and the journal
        has room for it (``STORAGE_FULL`` otherwise, changing nothing), and it is
        acknowledged only once that record committed (a failed commit takes the
        actor down into recovery, acknowledging nothing)."""
        busy_start = time.perf_counter()
        shard, pending, journal = self.shard, self.pending, self.journal
        batch = Batch(asyncio.get_running_loop().create_future(), len(commands))
        results = batch.results
        records: list = []
        limit = self.limits.batch_commands_max
        for i, cmd in enumerate(commands):
            if i >= limit:                       # past the batch limit: refused, changes nothing
                results[i] = [refusal(cmd, Reason.OVERLOADED)]
                continue
            admitted = shard.admit(cmd, role, scope)
            if type(admitted) is list:           # refused at the door: changes nothing, never remembered
                results[i] = admitted
                continue
            done = shard.recall(admitted)
            if done is not None:
                results[i] = done
                continue
            waiting = pending.get(admitted.key)
            if waiting is not None:          # the same request is in flight: share its answer
                if not same_request(waiting.command, admitted.command):
                    results[i] = reused(admitted)
                    continue
                waiting.waiters.append((batch, i))
                batch.missing += 1
                continue
            if self._overloaded(admitted.command):
                results[i] = [refusal(admitted.command, Reason.OVERLOADED)]
                continue
            cmd = stamped(admitted.command, self._stamp())            # time is ours, never the client's
            context = self._context(cmd, role)
            record = orjson.dumps([COMMAND, cmd, [*context], *([] if role == CLIENT else [int(role)])],
                                  default=encode_shallow)   # admitted: always encodable; the door if not a client's
            if not journal.has_room(len(record)):
                results[i] = [refusal(cmd, Reason.STORAGE_FULL)]
                continue
            records.append(record)
            events, market = self._accept(admitted_as(cmd, admitted.key), context, role)
            self._publish(events)            # what the command did at once (the rest comes with the answers)
            if market is None:
                results[i] = events
            else:
                pending[admitted.key].waiters.append((batch, i))
                batch.missing += 1
        marks = self.links.marks()
        self.commands += len(commands)
        self.gc.maybe_collect()
        self.busy_s += time.perf_counter() - busy_start
        if records:     # one journal record for the whole batch: one LMDB put, not hundreds
            await self.journal.commit([batch_record(records)], weight=len(records))
        self._maybe_crash("shard.after_journal")
        self.links.release(marks)
        self.links.kick()                            # new requests, and any left from a restart
        if batch.missing:
            return await batch.future
        return results

    def _overloaded(self, cmd) -> bool:
        """Would ``cmd`` add work in flight beyond a ``[limits]`` maximum: commands waiting
        for answers, pool requests awaiting the pool, requests queued on a link?
        Commands that never talk to a peer always pass."""
        kind = type(cmd)
        if kind in PEER_FREE:
            return False
        limits = self.limits
        if len(self.pending) >= limits.pending_commands_max:
            return True
        if kind in MARGIN_COMMANDS and len(self.shard.margin.awaiting) >= limits.pool_requests_max:
            return True
        links, most = self.links, limits.link_requests_max
        for field in LINK_FIELDS[kind]:
            name = cmd[field]
            if name in links and len(links[name]) >= most:
                return True
        return kind in MARGIN_COMMANDS and LENDING in links and len(links[LENDING]) >= most

    def _stamp(self) -> int:
        """This shard's time for the next command: the wall clock, never going back."""
        self.last_ts_ns = max(self.last_ts_ns + 1, clock.now_ns())
        return self.last_ts_ns

    def _accept(self, admitted: Admitted, context: PriceContext,
                role: access.Role = access.Role.CLIENT) -> tuple[list, str | None]:
        """Run an admitted, stamped command through the domain (through ``role``'s door: the
        risk gate checks a client's); queue its requests (to a market or the pool, and any
        follow-ups) if any; return (events, a link or None)."""
        shard, cmd = self.shard, admitted.command
        self.last_ts_ns = max(self.last_ts_ns, cmd.ts_ns)
        events, request = shard.apply_client(cmd, context, role)
        requests = [] if request is None else [(link_of(cmd, request), request)]
        requests.extend(shard.take_followups())
        if not requests:
            shard.remember(admitted, events)
            return events, None
        self._stage(admitted.key, requests)
        self.pending[admitted.key] = Pending(events, admitted.command, len(requests))
        return events, requests[0][0]

    def _stage(self, tag, requests: list) -> None:
        """Number each (link, request) on its link and stage it until the journal has it."""
        for link, request in requests:
            self.links[link].stage(tag, request)

    def _context(self, cmd, role: access.Role = CLIENT) -> PriceContext:
        """What ``cmd`` is priced at: the best prices of the market's last push, its index
        price, every asset's index price (``exchange.accounts.pricing``; for an order too when
        the risk gate's open-order cap needs the account's equity)."""
        gate = self.shard.risk
        return price_context(cmd, self._top, self.index_ticks, self.asset_prices,
                             gate is not None and role == CLIENT and gate.wants_prices(cmd))

    def _top(self, market: str) -> tuple:
        return self.top.get(market, (None, None))

    # ---- shard -> market links ------------------------------------------------------
    async def _submit(self, market: str, batch: list) -> int:
        """One call on the link to ``market``, saying which of its push entries this shard
        has applied: it drops the rseqs it has applied (a re-send) and answers with the
        last one it applied and its push entries for us not acknowledged yet, which are
        settled here at once (``_settle``), so the requests' answers need no push."""
        answer = await self.markets.call(market, "submit", self._as_shard, self.index, pack(batch),
                                         self.link_durable[market])
        applied, top, entries = unpack_submit_answer(answer)
        if entries:
            try:
                await self._settle(market, entries, top)
            except LinkSequenceError as exc:     # the market hands over every entry we have not
                log.warning("%s", exc)           # acknowledged, so no gap; if one came, its push delivers them
        return applied

    async def resume(self) -> bool:
        """After a restart: re-send every request the previous incarnation had not delivered."""
        self.links.kick()
        return True

    # ---- market pushes -------------------------------------------------------------
    async def on_market_events(self, capability, market: str, entries: bytes, top: tuple) -> int:
        """Settle a market's push; journal it; return the last entry number applied.

        Entries at or below the last applied number are a re-send and skipped;
        the first new one must follow it, or the push is refused whole
        (``LinkSequenceError``, nothing applied). Raises ``PermissionError``
        without the market capability, ``WireError`` on a malformed push.
        """
        self.keyring.check(capability, Role.MARKET)
        if type(market) is not str or market not in self.link_applied:
            raise ValueError(f"no market {market!r}")
        return await self._settle(market, unpack_push(entries), top)

    async def _settle(self, market: str, entries: list, top: tuple) -> int:
        """Apply a market's push entries (a push, or its answer to our ``submit``), let the
        answers they complete leave, journal the entries; return the last entry number applied.

        The answers leave before the entries' record is durable here: the market made the
        entries durable before it sent them and keeps them until this shard acknowledges
        them as journaled (``link_durable``, moved only after the commit), so a crash in
        between loses nothing acknowledged: recovery replays the commands, the market
        sends the entries again, and they settle the same way. The record is queued now,
        ahead of any later command's, so no later command is ever durable without it (a
        command that spent what these entries released replays after them). Follow-up
        requests still wait for the commit: a peer must never hold what this shard could
        forget."""
        busy_start = time.perf_counter()
        entries = self._new_entries(market, entries)
        if not entries:              # a re-send: acknowledge what is durable (a settlement may be committing)
            return self.link_durable[market]
        completions = self._apply_push(market, entries, top)
        applied = self.link_applied[market]
        marks = self.links.marks()
        durable = self.journal.enqueue([[PUSH, market, entries, top]])
        for batch, position, events in completions:
            batch.fill(position, events)
        self._maybe_crash_undurable("shard.after_answer")
        self.gc.maybe_collect()
        self.busy_s += time.perf_counter() - busy_start
        await durable
        self.link_durable[market] = max(self.link_durable[market], applied)
        self.links.release(marks)                       # follow-up requests, now durable
        self.metrics.record_push(time.perf_counter() - busy_start)
        return applied

    def _new_entries(self, market: str, entries: list) -> list:
        """The entries of a push not applied yet; raise ``LinkSequenceError`` unless they
        follow the last applied one without a gap."""
        expected = self.link_applied[market] + 1
        fresh = [entry for entry in entries if entry[0] >= expected]
        for number, _, _ in fresh:
            if number != expected:
                raise LinkSequenceError(f"push from {market}: entry {number} where {expected} was due; "
                                        f"nothing applied")
            expected += 1
        return fresh

    def _apply_push(self, market: str, entries: list, top: tuple) -> list:
        """Settle a push's ``(number, tag, events)`` entries (those at or below the last
        applied number are skipped); return the (batch, position, events) answers it completes."""
        shard, pending = self.shard, self.pending
        completions: list = []
        apply_market = shard.apply_market
        self.top[market] = tuple(top)
        last = self.link_applied[market]
        marked = False
        for number, tag, events in entries:
            if number <= last:
                continue
            last = self.link_applied[market] = number
            produced: list = []
            for event in events:
                marked = marked or type(event) is MarkUpdated
                applied = apply_market(event)
                if type(event) is Fill and applied:
                    self.fill_quantity_applied[market] += event.quantity * self._sides_here(event)
                produced.extend(applied)
            self._publish(produced)
            followups = shard.take_followups()
            if followups:
                self._stage(tag, followups)
            if tag is None:
                continue
            waiting = pending.get(tag)
            if waiting is None:
                continue
            account = tag[0]
            events = waiting.events
            events.extend(e for e in produced if _concerns(e, account))
            waiting.outstanding += len(followups) - 1
            if waiting.outstanding > 0:
                continue
            del pending[tag]
            shard.remember(Admitted(waiting.command, tag), events)
            completions.extend((batch, position, events) for batch, position in waiting.waiters)
        if marked:
            self._perp_due()
        return completions

    def _perp_due(self) -> None:
        """After a mark: if a perpetual position here is at or under maintenance, tell the liquidator
        (every mark while one is: a liquidation that could not start yet is retried)."""
        desk = self.shard.products.get("perp")
        if desk is None or 2 not in desk.zones.values():
            return
        try:
            self.liquidator.handle("liquidator").perp_due.remote(self._as_shard)
        except Exception as exc:      # no liquidator running (yet): the next mark tells it again
            log.warning("liquidator unavailable: %s", exc)

    def _sides_here(self, fill: Fill) -> int:
        accounts = self.shard.ledger.accounts
        return (fill.taker_account in accounts) + (fill.maker_account in accounts)

    def _publish(self, events: list) -> None:
        """Feed subscribed account streams and the order and trade history."""
        self.history.record(events, self.shard.ledger.accounts.__contains__)
        streams = self.streams
        if not streams:
            return
        for event in events:
            if type(event) is Fill:
                for account in (event.taker_account, event.maker_account):
                    log_ = streams.get(account)
                    if log_ is not None:
                        log_.append(event)
                continue
            log_ = streams.get(getattr(event, "account_id", None))     # (an operator's trace has none)
            if log_ is not None:
                log_.append(event)

    def _new_history(self) -> History:
        scales = {m.name: m.base.scale for m in self.config.market_list}
        scales.update((name, perp.spec.base.scale) for name, perp in perp_markets(self.config).items())
        limits = self.limits
        return History(limits.history_orders_max, limits.history_trades_max, scales.__getitem__,
                       limits.history_income_max, limits.history_withdrawals_max)

    def applied_seq(self, market: str) -> int:
        """The last push entry number of ``market`` this shard has applied and journaled (its
        link sequence as the market may rely on it)."""
        return self.link_durable[market]

    def set_index_prices(self, capability, prices: dict[str, int], asset_prices: dict[str, int] | None = None) -> None:
        """Index price per market in ticks and per asset in quote minor units
        (from the IndexActor: the index capability); then re-value every margin
        book (``scan_margin``). Raises ``PermissionError`` without it."""
        self.keyring.check(capability, Role.INDEX)
        self.index_ticks.update(prices)
        if asset_prices:
            update_index_prices(self.config, self.asset_prices, asset_prices)
            self.scan_margin()

    def scan_margin(self) -> dict:
        """Margin level of every book that owes something, at the current index prices,
        in one pass (``MarginDesk.scan``): publish the zone changes (warning, margin
        call, liquidation) on the accounts' streams, hand books at or under the
        liquidation line to the liquidator, and replace the margin-level metrics
        (distribution and accounts at risk per market and mode)."""
        started = time.perf_counter()
        scan = self.shard.margin.scan(self.asset_prices, self.zones)
        if scan.changes:
            self._publish(scan.changes)
        for key, level in scan.candidates:
            self._hand_over(key, level)
        margin = self.metrics.margin
        for market, values in scan.levels.items():
            series = (market, "isolated") if market else ("all", "cross")
            margin.levels(*series, values)
            margin.at_risk(*series, scan.at_risk[market])
        return {"books": scan.books, "seconds": time.perf_counter() - started}

    def _hand_over(self, key: tuple, level: int) -> None:
        try:
            self.liquidator.handle("liquidator").candidate.remote(self._as_shard, self.index, key[0], key[1], level)
        except Exception as exc:      # no liquidator running (yet): the next price tick hands it over again
            log.warning("liquidator unavailable: %s", exc)

    # ---- durability ------------------------------------------------------------------
    def _after_commit(self) -> None:
        """Everything queued is durable: the state matches the journal, so a snapshot may be taken."""
        if self.journal.snapshot_due():
            self._maybe_crash("shard.before_snapshot")
            self.journal.snapshot(self._state())

    def _state(self) -> dict:
        queued = [[m, r, tag, req] for m, link in self.links.items() for r, tag, req in link.pending()]
        return {"shard": shard_state(self.shard), "rseq": {m: link.number for m, link in self.links.items()},
                "outbox": queued,
                "pending": [[tag, p.events, p.command, p.outstanding] for tag, p in self.pending.items()],
                "last_ts_ns": self.last_ts_ns,
                "top": {m: list(t) for m, t in self.top.items()},
                "fill_quantity_applied": self.fill_quantity_applied, "link_applied": self.link_applied,
                "history": self.history.state()}

    def _restore(self, state: dict) -> None:
        self.shard = restore_shard(self.config, state["shard"])
        outbox: dict[str, list] = {}
        for market, rseq, tag, request in state["outbox"]:
            outbox.setdefault(market, []).append((rseq, hashable(tag), decode(request)))
        for market, number in state["rseq"].items():
            self.links[market].restore(number, outbox.get(market, ()))
        for tag, events, command, outstanding in state["pending"]:
            self.pending[hashable(tag)] = Pending(decode_events(events), decode(command), outstanding)
        self.last_ts_ns = state["last_ts_ns"]
        self.top.update({m: tuple(t) for m, t in state["top"].items()})
        self.fill_quantity_applied.update(state["fill_quantity_applied"])
        self.link_applied.update(state["link_applied"])
        if "history" in state:                       # (snapshots from before issue 18 have none)
            self.history.restore(state["history"])

    def _replay(self, record: list) -> None:
        kind = tag_of(record)
        if kind is CLIENT_BATCH:
            for inner in record[1]:
                self._replay(inner)
        elif kind is COMMAND:        # it passed the door when it was accepted
            cmd = decode(record[1])
            role = access.Role(record[3]) if len(record) > 3 else CLIENT
            events, _ = self._accept(Admitted(cmd, (cmd.account_id, cmd.request_id)), context_from(record[2]), role)
            self._publish(events)                        # as when it was accepted (no stream is subscribed yet)
        elif kind is PUSH:
            entries = [(number, hashable(tag), decode_events(events)) for number, tag, events in record[2]]
            self._apply_push(record[1], entries, tuple(record[3]))
        else:
            raise ValueError(f"not a shard's journal record: {kind.name}")

    # ---- queries ---------------------------------------------------------------------
    def exchange_config(self):
        """The configuration this shard runs with (clients read scales from it)."""
        return self.config

    def balances(self, account_id: int) -> dict | None:
        return self.shard.balances(account_id)

    def risk_view(self, account_id: int) -> dict | None:
        """An account's standing under the risk rulebook (lock, freezes, restrictions in force)."""
        gate = self.shard.risk
        return None if gate is None else gate.view(account_id, self.last_ts_ns)

    def audit_chain(self) -> dict | None:
        """This shard's audit chain (``exchange.risk.audit``): name, base and every kept entry."""
        gate = self.shard.risk
        return None if gate is None else gate.audit.snapshot()

    def withdrawals(self, account_id: int | None = None) -> list[dict]:
        """Withdrawals in progress (of one account): the cashier's view."""
        return self.shard.cashier.view(account_id) if "cashier" in self.shard.products else []

    def rulebook(self) -> dict | None:
        """The rulebook in force on this shard and its published hash."""
        gate = self.shard.risk
        return None if gate is None else gate.rulebook.view()

    def open_orders(self, account_id: int) -> list[dict]:
        return [o.view() for o in self.shard.open_orders(account_id)]

    def get_order(self, account_id: int, order_id: int) -> dict | None:
        """An open order's record, else the history's view of a closed one (``status`` Binance's)."""
        record = self.shard.orders.get(order_id)
        if record is not None:
            return record.view() if record.account_id == account_id else None
        return self.history.order(account_id, order_id)

    def order_history(self, account_id: int, market: str, from_order_id: int = 0, limit: int = 500) -> list[dict]:
        """The account's orders in ``market`` that the history keeps (``exchange.accounts.history``)."""
        return self.history.account_orders(account_id, market, from_order_id, limit)

    def trade_history(self, account_id: int, market: str, from_trade_id: int = 0, order_id: int = 0,
                      limit: int = 500) -> list[dict]:
        """The account's trades in ``market`` that the history keeps."""
        return self.history.account_trades(account_id, market, from_trade_id, order_id, limit)

    def income_history(self, account_id: int, market: str | None = None, kind: int | None = None,
                       start_ns: int | None = None, end_ns: int | None = None, limit: int = 100) -> list[dict]:
        """The account's perpetual income the history keeps (``exchange.accounts.income``)."""
        return self.history.income.account(account_id, market, kind, start_ns, end_ns, limit)

    def withdrawal_history(self, account_id: int, asset: str | None = None) -> list[dict]:
        """The account's withdrawals, finished ones too (``exchange.accounts.withdrawal_history``)."""
        return self.history.withdrawals.account(account_id, asset)

    def known_requests(self, keys: list) -> list[bool]:
        """For each (account, request id): is its outcome remembered or in flight?"""
        shard = self.shard
        return [hashable(k) in shard.results or hashable(k) in self.pending for k in keys]

    def subscribe(self, account_id: int) -> int:
        """Start (or keep) the event log of an account; return its last cursor."""
        return self._stream(account_id).last

    async def events_after(self, account_id: int, cursor: int, timeout_s: float = 1.0) -> dict:
        return await self._stream(account_id).wait_after(cursor, timeout_s)

    def _stream(self, account_id: int) -> EventLog:
        """The account's event log, started if need be; at most ``streams_max`` of them
        (``OverloadedError`` beyond), each keeping ``stream_events_max`` events."""
        log_ = self.streams.get(account_id)
        if log_ is None:
            if len(self.streams) >= self.limits.streams_max:
                raise OverloadedError(f"shard {self.index}: {len(self.streams)} account streams (limits.streams_max)")
            log_ = self.streams[account_id] = EventLog(self.limits.stream_events_max)
        return log_

    def margin_book(self, account_id: int, market: str = "") -> dict | None:
        """A margin book at the current index prices (balances, debts, level, zone)."""
        book = self.shard.margin.book(account_id, market)
        return None if book is None else self.shard.margin.book_view(book, self.asset_prices)

    def large_positions(self, min_lots: dict[str, int]) -> list[tuple]:
        """Perpetual positions of at least ``min_lots[market]`` lots (``PerpDesk.large_positions``)."""
        desk = self.shard.products.get("perp")
        return [] if desk is None else desk.large_positions(min_lots)

    def perp_position(self, account_id: int, market: str) -> dict | None:
        """A perpetual position at the mark (``PerpDesk.position_view``); None without one
        (or on a venue without perpetuals)."""
        desk = self.shard.products.get("perp")
        return None if desk is None else desk.position_view(account_id, market)

    def perp_adl_place(self, market: str, long_side: bool, numerator: int, denominator: int,
                       account_id: int) -> tuple[int, int]:
        """(positions here ranked for ADL before a position of that score and account, positions
        ranked here) on one side of ``market`` (``PerpDesk.adl_place``): public counts."""
        desk = self.shard.products.get("perp")
        if desk is None or market not in desk.markets or denominator <= 0:
            return 0, 0
        return desk.adl_place(market, bool(long_side), Fraction(numerator, denominator), account_id)

    def perp_marks(self) -> dict:
        """Per perpetual market, the (index, mark) in ticks this shard values positions at."""
        desk = self.shard.products.get("perp")
        return {} if desk is None else dict(desk.marks)

    def perp_wallet(self, account_id: int) -> dict | None:
        """The account's perpetual wallet per settlement asset: cash, held, available, withdrawable."""
        desk = self.shard.products.get("perp")
        wallet = None if desk is None else desk.accounts.get(account_id)
        if wallet is None:
            return None
        return {name: {"cash": wallet.cash[i], "held": wallet.held[i], "available": desk.available(wallet, i),
                       "withdrawable": desk.withdrawable(wallet, i)}
                for name, i in ((a, self.config.assets[a].index) for a in sorted(desk.settlement))}

    def perp_read_many(self, capability, requests: list | bytes) -> bytes:
        """The perpetual liquidator's reads (``exchange.perp.liquidation.read``: who is due, orders
        to cancel, a liquidation, ADL candidates), packed; the liquidator capability only
        (``PermissionError`` without it): they name accounts and positions."""
        self.keyring.check(capability, Role.LIQUIDATOR)
        requests = requests if type(requests) is list else unpack_plain(requests)
        desk = self.shard.products.get("perp")
        return pack([None if desk is None else perp_liquidation.read(desk, *request) for request in requests])

    def margin_book_many(self, keys: list | bytes) -> bytes:
        """``margin_book`` for many ``(account, market)`` at once (packed; the liquidator batches its reads)."""
        keys = keys if type(keys) is list else unpack_plain(keys)
        return pack([self.margin_book(account, market) for account, market in keys])

    def margin_books(self, account_id: int) -> list[dict]:
        desk = self.shard.margin
        return [desk.book_view(b, self.asset_prices) for (a, _), b in sorted(desk.books.items()) if a == account_id]

    def audit(self) -> dict:
        """Totals for the conservation audit, with the market seqs they reflect (and the
        perpetual fee share moved out for the funds and the compensations credited from them,
        to count what is between the two)."""
        ledger = self.shard.ledger
        return {"shard": self.index, "totals": self.shard.totals(), "deposited": list(ledger.deposited),
                "withdrawn": list(ledger.withdrawn), "fund_in": list(self.shard.margin.fund_in),
                "applied": dict(self.shard.market_seq),
                "pending": len(self.pending), "open_orders": len(self.shard.orders),
                "fill_quantity_applied": dict(self.fill_quantity_applied),
                "perp_fees_swept": self.perp_fees_swept(), "perp_compensated": self.perp_compensated()}

    def perp_fees_swept(self) -> dict[str, int]:
        """Per perpetual market, the fee share this shard has moved out for its fund, ever
        (``exchange.perp.fees``; none on a venue without perpetuals)."""
        return dict(getattr(self.shard.products.get("perp"), "fee_swept", {}))

    def perp_compensated(self) -> dict[str, tuple[int, int]]:
        """Per perpetual market, the (seq, through) of the last compensation from its fund this
        shard credited (``exchange.perp.compensation``)."""
        return dict(getattr(self.shard.products.get("perp"), "compensated", {}))

    def check_invariants(self) -> bool:
        self.shard.check_invariants()
        return True

    def stats(self) -> dict:
        j = self.journal
        return {"shard": self.index, "accounts": len(self.shard.ledger.accounts), "commands": self.commands,
                "remembered": len(self.shard.results), "replay_window": self.shard.results.window,
                "pending": len(self.pending), "open_orders": len(self.shard.orders),
                "busy_s": round(self.busy_s, 3), "cpu_s": round(time.process_time(), 3),
                "recovery": self.recovery, "started_ns": self.started_ns, "pid": os.getpid(), "gc_collections": self.gc.collections,
                "gc_pause_s_max": round(self.gc.pause_s_max, 4), "journal_commits": j.commits,
                "journal_commit_seconds_total": round(j.commit_seconds_total, 4)}

    def state_hash(self) -> str:
        return digest(self.shard.canonical())

    def routing(self) -> dict:
        """The highest account id this shard holds, and those it holds without owning them
        (``AccountShard.strays``): what adding shards checks (``actors/growth.py``)."""
        return {"highest_account": max(self.shard.ledger.accounts, default=0), "strays": self.shard.strays()}

    def canonical(self) -> tuple:
        """The domain state as canonical tuples (for offline comparison and debugging)."""
        return self.shard.canonical()


def batch_record(records: list[bytes]) -> bytes:
    """One ``[CLIENT_BATCH, [record, ...]]`` journal record around already-encoded records."""
    return orjson.dumps([CLIENT_BATCH, [orjson.Fragment(r) for r in records]])


def _concerns(event, account: int) -> bool:
    if type(event) is Fill:
        return event.taker_account == account or event.maker_account == account
    return getattr(event, "account_id", account) == account


RemoteShard = ray.remote(AccountShardActor)
