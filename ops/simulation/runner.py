"""The scheduler: one seed, one run of the real actors, one verdict.

Everything a run does is drawn from ``random.Random(seed)``: the snapshot
schedule, the clients' commands, the index's regime, and at every step one
action — deliver a message chosen among all in flight (so messages overtake
each other; an actor's timer is one of them; ``Options.deliver_per_message``
makes a delivery likelier the more are in flight), lose one, deliver a copy
of a delivered request again, start a client batch, crash an actor, restart
a crashed one, move the clock, publish index prices (to every shard, every
perpetual market and the liquidator, and the market maker quotes again) —
then let the event loop run 0, 1, 2 rounds or until it is idle (so a crash
can land between a handler's change of state and its journal commit). The
auditor checks after every step. Before the first step a setup without
faults publishes the index, funds the market maker (quotes, pool supply, its
perpetual wallet) and opens the traders' margin and perpetual positions.
After the last step the run heals: faults stop, crashed actors restart,
every message is delivered oldest first until nothing moves, twice, each
time after the index published the last prices again (every shard scans its
books at the prices the liquidator has, so a book under the line is handed
over and liquidated; every perpetual market marks again, so a shard holding
a position at or under maintenance hands it over), and the final checks run.

A perpetual market gets the index as the IndexActor sends it
(``set_index_prices(index capability, prices by asset, ts_ns)``, the run's
simulated clock as ``ts_ns``): it prices its mark and pushes it, and every
funding that came due, to the shards. A liquidator crash is counted as one in
the middle of a liquidation when a margin or a perpetual liquidation is open
(``liquidating``); the liquidator's perpetual rounds pause with
``clock.sleep``, a timer like any other.

Only the scheduler picks what runs next: one event loop, no threads (the
journals commit inline on memory stores), no real sleeps (``Peers`` retries
with no pause), a simulated clock, and the loop's ready queue is the only
source of concurrency. So a seed replays exactly: the same trace (its digest
is part of the outcome), the same state hashes, the same failure at the same
step.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass, field

from actors import clock, liquidator_actor, market_actor, shard_actor
from actors.capability import Role
from actors.durability.journal import drop_memory_volume, memory_volume
from actors.gc_policy import GcPolicy
from actors.link import peers
from actors.link.wire import pack, unpack_results
from exchange.config import load_config
from ops.simulation.auditor import AuditFailure, Auditor
from ops.simulation.cluster import LIQUIDATOR, Cluster
from ops.simulation.network import Network, Unreachable, task_factory
from ops.simulation.workload import Workload

START_NS = 1_700_000_000 * 10 ** 9
IDLE_ROUNDS_MAX = 100_000           # a loop busy longer than this is livelocked
HEAL_STEPS_MAX = 50_000
FINAL_PUBLICATIONS = 2
TRACE_KEPT = 40
DELIVER_WEIGHT = 50                 # a delivery's weight among the step's actions


@dataclass
class Options:
    """What a run may do. ``classes`` replaces actor classes (``shard``, ``market``,
    ``lending``, ``liquidator``) with variants, for tests that inject a bug.
    ``deliver_per_message`` adds that much to a delivery's weight for each message in
    flight: a faster network, in which a perpetual liquidation's round trips (who is due,
    its reads, the take-over) fit between two liquidator crashes."""
    steps: int = 150
    crashes: bool = True
    losses: bool = True                 # lose requests and replies
    duplicates: bool = True
    deliver_per_message: int = 0
    classes: dict | None = None
    config_path: str | None = None


@dataclass
class Outcome:
    seed: int
    ok: bool
    check: str | None = None            # the failed check's name
    failure: str | None = None
    step: int | None = None             # the step after which it failed (None: in the final checks)
    digest: str = ""                    # of the whole trace: equal digests, equal runs
    stats: dict = field(default_factory=dict)
    trace: list = field(default_factory=list)     # the last actions before the end

    def line(self) -> str:
        if self.ok:
            return f"seed {self.seed}: ok ({self.stats.get('steps')} steps, digest {self.digest[:12]})"
        where = "final checks" if self.step is None else f"step {self.step}"
        return f"seed {self.seed}: FAILED at {where}: {self.failure}"


class SimulatedClock:
    def __init__(self):
        self.ns = START_NS

    def now(self) -> int:
        return self.ns


def run_config(config_path: str | None):
    """The run's configuration, read once, with metrics off (nothing scrapes them here)."""
    config = load_config(config_path)
    config.sections["metrics"] = {**config.sections.get("metrics", {}), "enabled": False}
    return config


@contextmanager
def harness(network: Network, sim_clock: SimulatedClock, config):
    """Install the simulator's ports for the duration of a run: the resolver, no retry
    pause, the clock and the timers. And two shims that only save time: every actor gets the run's
    configuration instead of parsing the file again at each construction, and no
    garbage-collector policy (each actor's would run a full collection then)."""
    previous_peers = peers.use_resolver(network.resolve, 0.0)
    loaders = {module: module.load_config for module in (shard_actor, market_actor, liquidator_actor)}
    for module in loaders:
        module.load_config = lambda path: config
    previous_clock = clock.use_clock(sim_clock.now)
    previous_sleep = clock.use_sleep(network.sleep)
    install = GcPolicy.install
    GcPolicy.install = lambda self: self
    logger = logging.getLogger("exchange")          # retries and recoveries are the point here, not news
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        for module, loader in loaders.items():
            module.load_config = loader
        GcPolicy.install = install
        clock.use_clock(previous_clock)
        clock.use_sleep(previous_sleep)
        peers.use_resolver(*previous_peers)


def simulate(seed: int, options: Options | None = None) -> Outcome:
    """Run seed ``seed``; return its outcome (never raises for a failed check)."""
    options = options or Options()
    loop = asyncio.new_event_loop()
    loop.set_task_factory(task_factory)
    run = Run(seed, options)
    try:
        with harness(run.network, run.clock, run.config):     # the ports stay in place until every task ended
            try:
                return loop.run_until_complete(run.main())
            finally:
                loop.run_until_complete(run.shutdown())
    finally:
        loop.close()
        drop_memory_volume(run.data_dir)


class Run:
    def __init__(self, seed: int, options: Options):
        self.seed = seed
        self.options = options
        self.rng = random.Random(seed)
        self.config = run_config(options.config_path)
        snapshot_every = self.rng.choice((2, 5, 20, 10 ** 9))
        self.data_dir = memory_volume(f"sim-{seed}-{id(self)}", snapshot_every)
        self.cluster = Cluster(self.config, self.data_dir, options.classes, options.config_path)
        self.auditor = Auditor(self.config, self.cluster, None, self.rng)
        self.clock = SimulatedClock()
        self.network = Network(self.cluster, self.auditor.observe, self.auditor.answered, self.clock)
        self.auditor.network = self.network
        self.workload = Workload(self.config, self.rng)
        self.digest = hashlib.sha256()
        self.trace: list[str] = []
        self.step = 0
        self.stats = {"snapshot_every": snapshot_every, "delivered": 0, "lost": 0, "duplicated": 0,
                      "crashes": 0, "restarts": 0, "batches": 0, "quiet_checks": 0,
                      "regime": self.workload.regime, "publications": 0, "liquidator_crashes_mid_liquidation": 0,
                      "liquidator_crashes_mid_perp_liquidation": 0}

    def note(self, line: str) -> None:
        line = f"{self.step}: {line}"
        self.digest.update(line.encode() + b"\n")
        self.trace.append(line)
        if len(self.trace) > 4 * TRACE_KEPT:
            del self.trace[:-TRACE_KEPT]

    async def main(self) -> Outcome:
        loop = asyncio.get_running_loop()
        failed_at = None
        try:
            for name in self.cluster.names:
                self.cluster.start(name)
            await self.setup()
            for self.step in range(1, self.options.steps + 1):
                failed_at = self.step
                self.act()
                await self.settle(self.rng.choice((0, 1, 2, None, None, None)))
                self.auditor.check_step()
                self.maybe_check_recovery()
                if self.quiet(loop):
                    self.auditor.check_quiet()
            failed_at = None
            await self.heal(loop)
            self.auditor.check_final(self.workload.clients)
            self.note("state " + " ".join(f"{name}={self.cluster.actor(name).state_hash()[:16]}"
                                          for name in self.cluster.names))
        except AuditFailure as failure:
            return self.outcome(ok=False, check=failure.check, failure=str(failure), step=failed_at)
        return self.outcome(ok=True)

    async def setup(self) -> None:
        """Before the faults: the index's first publication, the market maker's funds, pool
        supply, perpetual wallet and quotes, the traders' margin books, perpetual wallets
        and first positions, delivered oldest first (so every seed starts with leveraged
        books and positions and markets to trade in)."""
        self.note("setup")
        self.publish(self.workload.prices)
        await self.drain()
        for client in [self.workload.maker] + [c for c in self.workload.clients if c.kind in ("trader", "perp")]:
            self._client(client)
            await self.drain()

    async def shutdown(self) -> None:
        """Crash every actor (their tasks end) and end the clients' calls."""
        for name in self.cluster.up():
            self.cluster.crash(name)
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def outcome(self, ok: bool, check=None, failure=None, step=None) -> Outcome:
        self.stats.update(steps=self.step, acknowledged=len(self.auditor.answers), fills=len(self.auditor.fills),
                          recoveries_checked=self.auditor.recoveries_checked,
                          quiet_checks=self.auditor.quiet_checks, **self.auditor.liquidation_stats())
        return Outcome(self.seed, ok, check, failure, step, self.digest.hexdigest(), dict(self.stats),
                       self.trace[-TRACE_KEPT:])

    # ---- one step ------------------------------------------------------------------------
    def act(self) -> None:
        rng, network, cluster, options = self.rng, self.network, self.cluster, self.options
        actions = []
        if network.inflight:
            actions += [("deliver", DELIVER_WEIGHT + options.deliver_per_message * len(network.inflight))]
            if options.losses and network.losable:
                actions += [("lose", 4)]
        if options.duplicates and network.delivered:
            actions += [("duplicate", 4)]
        if self.workload.idle():
            actions += [("client", 24)]
        if options.crashes and cluster.up():
            actions += [("crash", 2)]
            if self.liquidating():
                actions += [("crash_liquidator", 3)]
        if cluster.down():
            actions += [("restart", 8)]
        actions += [("clock", 3), ("index", 5)] + ([("sweep", 1)] if self.workload.perps else [])
        action = rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
        getattr(self, "_" + action)()

    def _deliver(self) -> None:
        message = self.network.inflight.pop(self.rng.randrange(len(self.network.inflight)))
        self.note(f"deliver {message.describe()}")
        self.stats["delivered"] += 1
        self.network.deliver(message)

    def _lose(self) -> None:
        message = self.rng.choice(self.network.losable)
        self.note(f"lose {message.describe()}")
        self.stats["lost"] += 1
        self.network.drop(message)

    def _duplicate(self) -> None:
        copy = self.network.duplicate(self.rng.choice(self.network.delivered))
        self.note(f"duplicate as {copy.describe()}")
        self.stats["duplicated"] += 1

    def _client(self, client=None) -> None:
        client = client or self.workload.pick()
        commands = self.workload.batch(client)
        self.note(f"{client.name} sends {[type(c).__name__ for c in commands]}")
        self.stats["batches"] += 1
        client.busy = True
        self.auditor.sending(client.shard, commands)
        asyncio.get_running_loop().create_task(self.call(client, commands))

    async def call(self, client, commands: list) -> None:
        """A client's call: sent again (same request ids) until the shard answers."""
        packed = pack(commands)
        while True:
            try:
                answer = await self.network.send(f"shard:{client.shard}", "execute", (packed,), client.name)
                break
            except Unreachable:
                continue
        results = unpack_results(answer)
        self.auditor.acknowledged(client.shard, commands, results)
        for command, events in zip(commands, results):
            client.learn(command, events)
            if command not in client.acknowledged:
                client.acknowledged.append(command)
        client.busy = False
        if client is self.workload.maker and self.workload.quotes_stale:
            self._client(client)

    def liquidating(self) -> bool:
        """A margin or a perpetual liquidation is in progress on the liquidator."""
        liquidator = self.cluster.actor(LIQUIDATOR)
        return liquidator is not None and bool(liquidator.liquidator.active or liquidator.perp.open)

    def _crash(self, name: str | None = None) -> None:
        busy, liquidator = self.liquidating(), self.cluster.actor(LIQUIDATOR)
        perp_busy = liquidator is not None and bool(liquidator.perp.open)
        name = name or self.rng.choice(self.cluster.up())
        self.note(f"crash {name}")
        self.stats["crashes"] += 1
        if busy and name == LIQUIDATOR:
            self.stats["liquidator_crashes_mid_liquidation"] += 1
            self.stats["liquidator_crashes_mid_perp_liquidation"] += int(perp_busy)
        self.cluster.crash(name)

    def _crash_liquidator(self) -> None:
        """Crash the liquidator in the middle of a liquidation (more likely than any other
        crash while one runs: its recovery is what is tested)."""
        self._crash(LIQUIDATOR)

    def _restart(self) -> None:
        name = self.rng.choice(self.cluster.down())
        self.note(f"restart {name}")
        self.stats["restarts"] += 1
        self.cluster.start(name)

    def _index(self) -> None:
        """The index feed: the workload's next prices, to every shard, every perpetual market
        and the liquidator (a message like any other: it can be lost, delayed or reach an
        actor that is down); the market maker, if idle, quotes around them."""
        self.note("index prices")
        self.publish(self.workload.next_prices())
        if not self.workload.maker.busy:
            self._client(self.workload.maker)       # else as soon as its call is answered (``call``)

    def publish(self, prices: dict[str, int]) -> None:
        """Send ``prices`` (market -> quote minor units per whole base) as the IndexActor does:
        ticks and prices by asset to the shards, prices by asset to the liquidator and, at the
        run's clock, to every perpetual market (which marks from its underlying's)."""
        self.stats["publications"] += 1
        ticks, by_asset = {}, {}
        for market in self.config.market_list:
            ticks[market.name] = max(1, prices[market.name] // market.tick_minor)
            by_asset[market.base.name] = prices[market.name]
        self.cluster.index.prices.update(by_asset)
        capability = self.cluster.keyring.capability(Role.INDEX)
        sends = [(LIQUIDATOR, (capability, by_asset))]
        sends += [(f"shard:{index}", (capability, ticks, by_asset)) for index in range(self.config.shards)]
        sends += [(f"market:{name}", (capability, by_asset, self.clock.ns)) for name in self.workload.perps]
        for target, args in sends:                   # fire and forget, as the IndexActor publishes: no
            self.network.send(target, "set_index_prices", args, "index").cancel()   # answer travels back

    def _sweep(self) -> None:
        """The liquidator's fee sweep (a timer on Ray; here an operator's call, fire and forget):
        the perpetual fee share from every shard into the funds."""
        self.note("fee sweep")
        capability = self.cluster.keyring.capability(Role.OPERATOR)
        self.network.send(LIQUIDATOR, "sweep_perp_fees", (capability,), "operator").cancel()

    def _clock(self) -> None:
        advance = self.rng.choice((1, 1_000, 60_000, 3_600_000))      # milliseconds: up to an hour (interest)
        self.clock.ns += advance * 1_000_000
        self.note(f"clock +{advance} ms")

    # ---- the loop -------------------------------------------------------------------------
    async def settle(self, rounds: int | None) -> None:
        """Let ready callbacks run ``rounds`` loop iterations, or until none is ready."""
        if rounds is not None:
            for _ in range(rounds):
                await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        for _ in range(IDLE_ROUNDS_MAX):
            if not loop._ready:           # noqa: SLF001 (the one place the simulator reads the loop)
                return
            await asyncio.sleep(0)
        raise AuditFailure("livelock", f"the event loop never went idle in {IDLE_ROUNDS_MAX} rounds")

    def quiet(self, loop) -> bool:
        return not self.network.inflight and not loop._ready and not self.cluster.down() \
            and not any(c.busy for c in self.workload.clients)

    def maybe_check_recovery(self) -> None:
        if self.rng.random() >= 0.3:
            return
        idle = [name for name in self.cluster.up() if _journal_idle(self.cluster.actor(name))]
        if idle:
            self.auditor.check_recovery(self.rng.choice(idle))

    async def heal(self, loop) -> None:
        """No more faults: restart what is down; publish the last prices again and let the
        market maker quote around them, then deliver everything oldest first; twice
        (``FINAL_PUBLICATIONS``): the first brings every actor to the same prices (a
        liquidator that lost a publication prices its orders off the old index), the
        second makes every shard scan its books once the rest has settled, so a book
        under the line is handed over and liquidated."""
        self.step += 1
        self.note("heal")
        for name in self.cluster.down():
            self.cluster.start(name)
        for _ in range(FINAL_PUBLICATIONS):
            self.publish(self.workload.prices)
            if not self.workload.maker.busy:
                self._client(self.workload.maker)
            await self.drain()

    async def drain(self) -> None:
        """Deliver everything in flight, oldest first, until nothing moves."""
        await self.settle(None)
        for _ in range(HEAL_STEPS_MAX):
            if self.auditor.tapped:
                raise self.auditor.tapped[0]
            if not self.network.inflight:
                return
            self.network.deliver(self.network.inflight.pop(0))
            self.stats["delivered"] += 1
            await self.settle(None)
        raise AuditFailure("livelock", f"messages still in flight after {HEAL_STEPS_MAX} deliveries")


def _journal_idle(actor) -> bool:
    """Nothing the actor changed waits to be journaled. The liquidator hands its facts to
    a commit task (``ensure_future``) that queues them only once it runs: until then its
    journal looks idle while its state is ahead (its ``_committing`` future, read here
    only, says so). Its perpetual machine keeps the facts of a step until the next
    command or the round's end journals them (``perp.facts``: a read may be in flight
    meanwhile)."""
    committing = getattr(actor, "_committing", None)
    facts = getattr(getattr(actor, "perp", None), "facts", None)
    return actor.journal.idle and (committing is None or committing.done()) and not facts
