"""The liquidator actor's perpetual side: it carries the domain's perpetual liquidator
(``exchange/perp/liquidator.py``, a step machine) over Ray, and keeps the perpetual
insurance funds public. No rule lives here.

**When.** A shard that applied a mark and holds a position at or under its
maintenance calls ``perp_due``; the actor then runs rounds (one at a time;
calls meanwhile ask for one more) until nothing is open: each round asks every
shard who is due (``perp_read_many``), opens a liquidation for each
(``PerpLiquidator.admit``), steps every open liquidation concurrently (at
most ``CONCURRENT`` at once), runs one ADL round for all that need it
(``PerpLiquidator.deleverage``: its closes leave together) and steps the
deleveraged ones on to their finish. Liquidations the per-second notional limit
held wait for the next second's round.

**How.** A step is a generator; this module answers what it yields: a read
goes to the account's shard (who is due and ADL candidates: to every shard,
merged) through ``perp_read_many``, a command through the shard's liquidator
door (``execute_as``). Reads and commands of concurrent liquidations to one
shard travel together (``Batcher``). Before any command leaves, the
machine's facts are journaled and durable (``_journal``), so a restart finds
every liquidation it opened and every ADL it planned, and resumes them with
the same request ids (``resume``).

**The fee share** (``exchange.perp.fees``): every ``fee_sweep_s`` the actor
asks each shard for its markets' fee share (``PerpLiquidator.sweep``, a
command to the shard's house account) and records ``FEE_SHARE`` entries; an
operator can sweep at once (``sweep_perp_fees``).

**Compensations** (``exchange.perp.compensation``): an operator pays an account
out of a market's fund (``compensate``); the entry is durable before the
shard is asked to credit it. What a shard has not acknowledged (its answer
lost, the shard away, the actor restarted) is delivered again at each sweep
and when the actor starts.
"""
from __future__ import annotations

import asyncio
import logging
import time

from actors import clock
from actors.capability import Role
from exchange.core.routing import shard_for
from exchange.perp.compensation import Compensation
from exchange.perp.liquidation import CANDIDATES, DUE
from exchange.perp.liquidator import Read, Send, SendAll

CONCURRENT = 256          # liquidations stepped at once (each holds a few small requests in flight)
FEE_SWEEP_S = 60          # the fee share is swept into the funds this often (``[perp_fund] fee_sweep_s``)
NS = 10**9
log = logging.getLogger("exchange.liquidator")


class PerpLiquidation:
    """Mixed into ``LiquidatorActor``: needs ``perp`` (the domain machine), ``config``,
    ``keyring``, ``batcher``, ``_journal`` and ``_send``."""

    perp_rounds: asyncio.Task | None = None
    perp_again = False
    fee_sweeps: asyncio.Task | None = None

    # ---- rounds ------------------------------------------------------------------------------
    def perp_due(self, capability) -> bool:
        """A shard holds a perpetual position at or under maintenance: run liquidation rounds
        (the shard capability; ``PermissionError`` without it)."""
        self.keyring.check(capability, Role.SHARD)
        self._perp_wake()
        return True

    def _perp_wake(self) -> None:
        self.perp_again = True
        if self.perp_rounds is None or self.perp_rounds.done():
            self.perp_rounds = asyncio.get_running_loop().create_task(self._perp_loop())
            self.perp_rounds.add_done_callback(_log_failure)

    async def _perp_loop(self) -> None:
        while self.perp_again or self.perp.open:
            self.perp_again = False
            second, finished = clock.now_ns() // NS, self.perp.finished
            await self._perp_round()
            if self.perp.open and self.perp.finished == finished:     # none moved on: the per-second
                await clock.sleep(max(0, (second + 1) * NS - clock.now_ns()) / NS)   # limit, or no taker yet

    async def _perp_round(self) -> None:
        started, ts_ns, finished = time.perf_counter(), clock.now_ns(), self.perp.finished
        self.perp.prune(ts_ns)
        admitted = self.perp.admit(await self._perp_answer(Read(DUE)))
        gate = asyncio.Semaphore(CONCURRENT)
        stepped = sorted(self.perp.open)
        await self._perp_steps(stepped, ts_ns, gate)
        deleveraged = await self._perp_drive(self.perp.deleverage(ts_ns))     # one ADL round for all of them
        await self._perp_steps(deleveraged, ts_ns, gate)                       # and on to their finish
        await self._journal()
        log.info("perpetual liquidation round %s", {"admitted": len(admitted), "stepped": len(stepped),
                                                       "finished": self.perp.finished - finished,
                                                       "open": len(self.perp.open),
                                                       "seconds": round(time.perf_counter() - started, 3)})

    async def _perp_steps(self, numbers: list[int], ts_ns: int, gate: asyncio.Semaphore) -> None:
        outcomes = await asyncio.gather(*(self._perp_step(n, ts_ns, gate) for n in numbers), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.error("perpetual liquidation step failed: %r", outcome)

    async def _perp_step(self, n: int, ts_ns: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            if n in self.perp.open:
                await self._perp_drive(self.perp.step(n, ts_ns))

    async def _perp_drive(self, steps):
        """Run a step generator of the machine to its end, answering over Ray; its result."""
        try:
            request = next(steps)
            while True:
                request = steps.send(await self._perp_answer(request))
        except StopIteration as stop:
            return stop.value

    # ---- the fee share ---------------------------------------------------------------------------
    async def start_fee_sweeps(self) -> bool:
        """Sweep the perpetual fee share into the funds every ``[perp_fund] fee_sweep_s`` (60 by
        default; idempotent: the actor starts it itself when it starts on Ray)."""
        if self.fee_sweeps is None and self.perp.markets:
            interval = float(self.config.sections.get("perp_fund", {}).get("fee_sweep_s", FEE_SWEEP_S))
            self.fee_sweeps = asyncio.get_running_loop().create_task(self._fee_sweep_loop(interval))
            self.fee_sweeps.add_done_callback(_log_failure)
            if self.perp.pending():                 # compensations a restart left undelivered
                asyncio.get_running_loop().create_task(self._deliver_compensations()).add_done_callback(
                    _log_failure)
        return True

    async def _fee_sweep_loop(self, interval_s: float) -> None:
        while True:
            await clock.sleep(interval_s)
            try:
                await self._sweep_fees()
            except Exception as exc:       # a shard away: the next sweep counts what this one missed
                log.warning("perpetual fee sweep failed: %r", exc)

    async def sweep_perp_fees(self, capability) -> dict:
        """An operator sweeps the perpetual fee share into the funds now (``FEE_SHARE`` entries,
        durable before this returns); returns the funds' view."""
        self.keyring.check(capability, Role.OPERATOR)
        await self._sweep_fees()
        return self.perp_fund.view()

    async def _sweep_fees(self) -> None:
        async with self.sweeping:          # one sweep at a time: each reads what the fund recorded
            ts_ns, shards = clock.now_ns(), self.config.shards
            await asyncio.gather(*(self._perp_drive(self.perp.sweep(s, self.config.routing, ts_ns)) for s in range(shards)))
            await self._journal()

    # ---- compensations ------------------------------------------------------------------------
    async def compensate(self, capability, market: str, account_id: int, amount: int, operator: str,
                         reason: str) -> dict:
        """An operator pays ``amount`` (minor units) of ``market``'s fund to ``account_id``
        (``exchange.perp.compensation``): checked, recorded in the fund's chain (durable), then
        credited on the account's shard. Returns ``refused`` (the Reason's name, nothing
        recorded; or None), ``delivered`` (False: recorded, the shard did not answer; the next
        sweep delivers it) and the funds' view. ``PermissionError`` without the operator
        capability; ``ValueError`` for fields of the wrong type."""
        self.keyring.check(capability, Role.OPERATOR)
        if type(amount) is not int or type(account_id) is not int or not all(
                type(v) is str for v in (market, operator, reason)):
            raise ValueError("market, operator and reason are str; account_id and amount ints")
        order = Compensation(market, account_id, amount, operator, reason)
        delivered = True
        async with self.sweeping:                   # one crossing at a time: each reads what the fund recorded
            recorded = len(self.perp_fund.entries)
            try:
                refused = await self._perp_drive(self.perp.compensate(order, clock.now_ns(), self.config.routing))
            except Exception as exc:
                if len(self.perp_fund.entries) == recorded:
                    raise                           # nothing recorded: the caller may ask again
                log.warning("compensation recorded, not delivered yet: %r", exc)   # the entry is durable:
                refused, delivered = None, False                                   # the next sweep delivers it
            await self._journal()
        return {"refused": None if refused is None else refused.name, "delivered": delivered and refused is None,
                "fund": self.perp_fund.view()}

    async def _deliver_compensations(self) -> None:
        async with self.sweeping:
            for market, shard in self.perp.pending():
                await self._perp_drive(self.perp.deliver(market, shard))

    async def _perp_answer(self, request):
        shards, routing = self.config.shards, self.config.routing
        if type(request) is Send or type(request) is SendAll:
            commands = request.commands if type(request) is SendAll else (request.command,)
            await self._journal()                   # the facts behind these commands are durable first
            for kind in sorted({type(command).__name__ for command in commands}):
                self._maybe_crash(f"liquidator.perp_send:{kind}")
            answers = await asyncio.gather(*(self._send(shard_for(command.account_id, routing), command)
                                             for command in commands))
            return answers if type(request) is SendAll else answers[0]
        if request.what in (DUE, CANDIDATES):
            parts = await asyncio.gather(*(self.batcher.call(s, "perp_read_many", list(request))
                                           for s in range(shards)))
            merged = [item for part in parts for item in part]
            return sorted(merged) if request.what == DUE else merged
        return await self.batcher.call(shard_for(request.account_id, routing), "perp_read_many", list(request))

    # ---- the funds and the records: public -----------------------------------------------------
    @property
    def perp_fund(self):
        return self.perp.fund

    async def top_up_perp_fund(self, capability, market: str, amount: int) -> dict:
        """An operator adds capital to a perpetual market's insurance fund (a ``TOP_UP`` entry in
        its chain, durable before this returns). Raises ``PermissionError`` without the
        operator capability, ``ValueError`` for an unknown market or a non-positive amount."""
        self.keyring.check(capability, Role.OPERATOR)
        if type(amount) is not int:
            raise ValueError("amount is an int of minor units")
        self.perp.top_up(market, amount, clock.now_ns())
        await self._journal()
        return self.perp_fund.view()

    async def link_perp_accounts(self, capability, a: int, b: int) -> bool:
        """An operator marks two accounts as one owner: ADL never closes one against the other."""
        self.keyring.check(capability, Role.OPERATOR)
        if type(a) is not int or type(b) is not int or a == b:
            raise ValueError("two different account ids")
        self.perp.link(a, b)
        await self._journal()
        return True

    def perp_fund_view(self) -> dict:
        """The perpetual funds: balances, caps, the chain's head and length (public)."""
        return self.perp_fund.view()

    def perp_fund_entries(self, after: int = 0, limit: int = 1_000) -> list[list]:
        """The chain's entries after number ``after`` (public: anyone can recompute the fund)."""
        return [e.to_plain() for e in self.perp_fund.entries[after:after + limit]]

    def perp_liquidations(self, limit: int = 100) -> dict:
        """The latest ``limit`` finished perpetual liquidations (accounts under pseudonyms), how
        many finished in all and how many are open (public)."""
        return {"open": len(self.perp.open), "finished": self.perp.finished,
                "records": self.perp.records[-limit:] if limit else []}


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("perpetual liquidation rounds failed: %r", task.exception())
