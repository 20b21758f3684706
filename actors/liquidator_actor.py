"""LiquidatorActor: drives the domain ``Liquidator`` and ``InsuranceFund``
(``exchange/margin/liquidator.py``, ``exchange/margin/insurance.py``) over
messages: journaling, Ray calls, metrics and views, no rule.

Shards re-value their margin books on every index tick and hand a book at or
under the liquidation line to ``candidate``; the domain decides whether to take
it (once per book, at most ``limits.liquidations_max`` at once) and, command
by command, what the owning shard must run. This actor runs one task per
liquidation: it asks the domain for the next command, journals the facts the
decision produced (a drawn cover is durable before it is sent), sends the
command through ``execute_as`` (the liquidator capability, batched per shard
with the book's view), hands the answer back (``on_answer``) and journals
again. When the domain holds a liquidation (no bid at the widest limit, no
index price) the task waits ``RETRY_S`` (and refreshes prices) and releases it.

Ports (for the seeded simulator, ``ops/simulation``; the Ray path unchanged):
the clock and the retry pause are ``actors/clock.py`` (``now_ns``, ``sleep``),
and every peer, the index included, is looked up through ``Peers`` (its
resolver is ``ray.get_actor`` unless the simulator installs its own).

Journal records are the domain's facts (``fact_to_record``, tagged by
``RecordTag``, ``exchange/messages/tags.py``): ``[FUND_DEPOSITED, asset,
amount]``, ``[LIQUIDATION_BEGUN, n, shard, account, market, level, prices]``,
``[COVER_DRAWN, rid, n, shard, account, market, asset, amount]``,
``[COVER_SETTLED, rid]``, ``[LIQUIDATION_ENDED, n, record]``. The snapshot
is ``Liquidator.to_plain`` (format 2; any other refused by ``Liquidator.from_plain``).
Liquidation records are public with the account id hashed (seed 002).

The perpetual liquidations and funds are ``actors/liquidator_perp.py``'s (mixed in):
their facts (``RecordTag.PERP_*``) share this journal, and the snapshot carries
the machine's state (``perp``) and the funds' entries (``perp_fund``).
"""
from __future__ import annotations

import asyncio
import logging
import os

import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.durability.journal import DurableActor, Journal
from actors.metrics import perp as perp_metrics
from actors.metrics.recorders import StateView
from actors.metrics.roles import actor_metrics
from actors.link.batching import Batcher
from actors.liquidator_perp import PerpLiquidation
from actors.link.peers import Peers
from actors.link.wire import unpack_plain, unpack_results
from exchange.config import load_config
from exchange.margin.desk import index_price_vector, update_index_prices
from exchange.margin.liquidator import (CoverDrawn, Hold, LiquidationBegun, Liquidator, account_hash,  # noqa: F401
                                        fact_from_record, fact_to_record)
from exchange.messages.tags import tag_of
from exchange.perp.liquidator import new_perp_liquidator

RETRY_S = 0.2
log = logging.getLogger("exchange.liquidator")


class LiquidatorActor(PerpLiquidation, DurableActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, from_oldest_snapshot: bool = False,
                 seed_fund: bool = True, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()        # a private one: nobody can call its role methods
        self.assets = self.config.asset_list
        self.prices = index_price_vector(self.config)
        self.shards = Peers("shard:{}")
        # its commands go through the shards' liquidator door, its reads as packed lists
        as_liquidator = (self.keyring.capability(Role.LIQUIDATOR),)
        self.batcher = Batcher(self.shards, leading_args={"execute_as": as_liquidator, "perp_read_many": as_liquidator},
                               decoders={"execute_as": unpack_results, "margin_book_many": unpack_plain,
                                         "perp_read_many": unpack_plain})
        self.liquidator = Liquidator(self.config)
        self.perp = new_perp_liquidator(self.config)
        self.tasks: dict[int, asyncio.Task] = {}
        self.sweeping = asyncio.Lock()                      # the perpetual fee sweeps, one at a time
        self._committing: asyncio.Future | None = None      # the latest journal commit of facts
        self.journal = Journal.for_actor(data_dir, "liquidator", self.config)
        self.recovery = self.journal.recover(self._restore, self._replay, from_oldest_snapshot)
        if seed_fund:
            self.liquidator.seed_fund()
            self.perp.seed(clock.now_ns())
            self.journal.write([fact_to_record(f) for f in self.liquidator.take_facts()] + self.perp.take_facts())
        self.journal.after_commit = self._after_commit
        self.started_ns = clock.now_ns()
        self.metrics = actor_metrics(self, "liquidator")
        if self.perp_fund.balances and hasattr(self.metrics, "registry"):
            self.metrics.registry.register(StateView(lambda: perp_metrics.fund_families(self)))
        self._report([])
        if ray.is_initialized():
            try:
                me = ray.get_runtime_context().current_actor
                if self.liquidator.active or self.liquidator.fund.in_flight or self.perp.open:
                    me.resume.remote()
                if self.perp.markets:
                    me.start_fee_sweeps.remote()
            except Exception as exc:  # the next candidate call resumes instead
                log.warning("could not schedule resume: %s", exc)

    # ---- the domain's facts, journaled -----------------------------------------------------
    @property
    def fund(self):
        return self.liquidator.fund

    @property
    def covers_in_flight(self) -> dict:
        """Covers drawn and not known to be applied (``ops/verify.py`` applies them)."""
        return self.liquidator.fund.in_flight

    def _replay(self, record: list) -> None:
        if tag_of(record).name.startswith("PERP_"):
            self.perp.apply(record)
            return
        self.liquidator.apply(fact_from_record(record))

    async def _journal(self) -> None:
        """Journal the facts the domain produced since the last call and wait until they,
        and any another task queued before, are durable (then a command may be sent)."""
        facts, perp_facts = self.liquidator.take_facts(), self.perp.take_facts()
        if facts or perp_facts:
            self._report(facts)
            records = [fact_to_record(f) for f in facts] + perp_facts
            self._committing = asyncio.ensure_future(self.journal.commit(records))
        if self._committing is not None and not self._committing.done():
            await self._committing

    def _report(self, facts: list) -> None:
        """Liquidations, bad debt, fund balances and the backlog for Prometheus."""
        metrics = self.metrics.liquidation
        for fact in facts:
            if type(fact) is LiquidationBegun:
                metrics.liquidated(fact.market or "all", "isolated" if fact.market else "cross")
            elif type(fact) is CoverDrawn:
                metrics.bad_debt(fact.cover.asset, fact.cover.amount)
        for asset, balance in self.fund.balance.items():
            metrics.insurance_fund(asset, balance)
        for mode, count in self.liquidator.pending_by_mode().items():
            metrics.pending(mode, count)

    def _state(self) -> dict:
        return {**self.liquidator.to_plain(), "perp_fund": [e.to_plain() for e in self.perp_fund.entries],
                "perp": self.perp.to_plain()}

    def _restore(self, state: dict) -> None:
        self.liquidator = Liquidator.from_plain(self.config, state)
        self.perp = new_perp_liquidator(self.config)
        for entry in state.get("perp_fund", ()):
            self.perp_fund.replay(entry)
        if "perp" in state:
            self.perp.restore(state["perp"])

    def _after_commit(self) -> None:
        """A snapshot, when due and the state is all journaled: facts a task produced and has not
        handed to the journal yet (a perpetual liquidation between two reads) would otherwise be
        in the snapshot and then journaled after it, and applied twice on recovery."""
        if self.journal.snapshot_due() and not self.liquidator.facts and not self.perp.facts:
            self.journal.snapshot(self._state())

    # ---- inputs -------------------------------------------------------------------------
    def set_index_prices(self, capability, asset_prices: dict[str, int]) -> None:
        """Index prices per asset (from the IndexActor: the index capability)."""
        self.keyring.check(capability, Role.INDEX)
        update_index_prices(self.config, self.prices, asset_prices)

    async def candidate(self, capability, shard: int, account_id: int, market: str, level_ppm: int) -> bool:
        """A shard found this book at or under the liquidation line: take it over (once;
        False when it is in liquidation already or ``liquidations_max`` run at once).
        Raises ``PermissionError`` without the shard capability."""
        self.keyring.check(capability, Role.SHARD)
        if type(shard) is not int or not 0 <= shard < self.config.shards or type(account_id) is not int \
                or type(market) is not str or type(level_ppm) is not int:
            raise ValueError("candidate(shard index, account id, market name, level ppm)")
        if (account_id, market) in self.liquidator.by_book:
            return False
        if not all(self.prices):
            await self._refresh_prices()
        if not self.liquidator.candidate(shard, account_id, market, level_ppm, self.prices):
            return False
        n = self.liquidator.by_book[(account_id, market)]
        await self._journal()
        self._spawn(n)
        return True

    async def resume(self) -> bool:
        """After a restart: finish covers in flight, then every liquidation in progress."""
        for send in self.liquidator.pending_covers(clock.now_ns()):
            events = await self._send(send.shard, send.command)
            self.liquidator.on_answer(send.command.request_id, events, None, clock.now_ns())
            await self._journal()
        for n in list(self.liquidator.active):
            if n not in self.tasks:
                self._spawn(n)
        if self.perp.open:
            self._perp_wake()
        return True

    def _spawn(self, n: int) -> None:
        task = asyncio.get_running_loop().create_task(self._drive(n))
        self.tasks[n] = task
        task.add_done_callback(lambda t, k=n: self._done(k, t))

    def _done(self, n: int, task: asyncio.Task) -> None:
        self.tasks.pop(n, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("liquidation %s failed: %r", n, task.exception())

    async def _refresh_prices(self) -> None:
        """Ask the index for its prices (after a restart the next publication may be a while away)."""
        try:        # a fresh lookup each time (``Peers``' resolver port): the index may have restarted
            update_index_prices(self.config, self.prices, await Peers("{}").handle("index").index_prices.remote())
        except Exception as exc:           # no index actor: wait for its publications
            log.warning("index prices unavailable: %s", exc)

    async def _send(self, shard: int, command) -> list:
        """Run one command on a shard until it answers; return its events (concurrent
        liquidations' commands to one shard travel together in one ``execute``)."""
        return await self.batcher.call(shard, "execute_as", command)

    async def _view(self, shard: int, account: int, market: str) -> dict:
        return await self.batcher.call(shard, "margin_book_many", (account, market))

    # ---- one liquidation: the domain decides, this loop carries ---------------------------
    async def _drive(self, n: int) -> None:
        liquidator = self.liquidator
        while n in liquidator.active:
            hold = liquidator.hold_of(n)
            if hold is not Hold.NONE:
                await clock.sleep(RETRY_S)
                if hold is Hold.PRICES:
                    await self._refresh_prices()
                liquidator.release(n)
            send = liquidator.next_command(n, self.prices, clock.now_ns())
            await self._journal()
            if send is None:
                return
            command = send.command
            events = await self._send(send.shard, command)
            view = await self._view(send.shard, command.account_id, send.book)
            liquidator.on_answer(command.request_id, events, view, clock.now_ns())
            await self._journal()

    # ---- views ----------------------------------------------------------------------------
    def liquidation_records(self, limit: int = 100) -> list[dict]:
        """The latest public liquidation records (account ids hashed)."""
        return self.liquidator.public_records(limit)

    def in_progress(self) -> list[tuple]:
        return self.liquidator.in_progress()

    def insurance_fund(self) -> dict:
        return self.fund.view()

    def audit(self) -> dict:
        """Fund balances and deposits (the margin fund's and the perpetual funds', per asset),
        covers still on their way, perpetual ADLs planned and not done (one side of such a
        close may be applied before the other: audit when none) and the fee share recorded
        from each shard (what a shard moved beyond it is on its way: ``exchange.perp.fees``), and the
        compensations paid to each (what a shard has not credited is on its way:
        ``exchange.perp.compensation``)."""
        holdings, deposited = self.fund_totals()
        return {"fund": holdings, "deposited": deposited, "covers_in_flight": len(self.fund.in_flight),
                "adl_in_flight": len(self.perp.adl), "perp_fees_through": dict(self.perp_fund.fees_through),
                "perp_paid": dict(self.perp_fund.paid)}

    def fund_totals(self) -> tuple[dict, dict]:
        """Per asset: what every fund holds (covers in flight included) and what came into them
        from outside (the margin fund's deposits, the perpetual funds' top-ups)."""
        holdings, deposited = self.fund.holdings(), dict(self.fund.deposited)
        self.perp.add_fund_totals(holdings, deposited)
        return holdings, deposited

    async def deposit_fund(self, capability, asset: str, amount: int) -> dict:
        """An operator adds capital to the insurance fund (a recorded deposit).
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        self.liquidator.deposit(asset, amount)          # ValueError: unknown asset or non-positive amount
        await self._journal()
        return self.insurance_fund()

    def stats(self) -> dict:
        return {"liquidations": self.liquidator.count, "active": len(self.liquidator.active),
                "recovery": self.recovery, "started_ns": self.started_ns, "pid": os.getpid(),
                "fund": dict(self.fund.balance)}

    def state_hash(self) -> str:
        """The digest of the durable state (the fund, liquidations begun and ended), as every actor has."""
        return self.liquidator.state_hash()


RemoteLiquidator = ray.remote(LiquidatorActor)
