"""An actor's journal: group commit, snapshots on a schedule, recovery.

Group commit: handlers ``await journal.commit(records)`` after changing state
and before anything leaves the actor (a reply, a forwarded request, an
acknowledgement). Records are queued in the order handlers changed state; one
commit task writes everything queued in one LMDB transaction on a dedicated
thread (py-lmdb releases the GIL during the fsync), so the actor keeps
serving while the disk syncs and every caller that queued meanwhile shares the
next fsync. A snapshot is taken from the after-commit hook when nothing is
queued, so it matches the journal position exactly.

Records are lists written with orjson; messages inside them are encoded by
``codec.encode_shallow`` as orjson's ``default`` hook, and a snapshot is one
orjson document of the actor's whole state. ``recover`` loads the newest intact
snapshot and replays every record after it through the actor's own apply
code, the same path a live command takes, so replay reaches the same state.
What is checked on the way (checksums, a complete journal) and when recovery
refuses with ``RecoveryError`` is the store's rule (``actors/durability/storage.py``).
Room: ``has_room(nbytes)`` answers whether the store can take ``nbytes`` more
(``full`` keeps the last answer, for metrics); the actor refuses new commands
with ``Reason.STORAGE_FULL`` while it is False. A commit that fails anyway
exits the process (nothing is acknowledged; recovery follows); a snapshot
that finds no room is logged and skipped.
With no data directory the journal is off (``Journal.disabled()``): nothing is
written and nothing survives a restart (used to measure what durability
costs, and by tests of pure actor behaviour).
A data directory ``memory:<volume>`` (the seeded simulator, ``ops/simulation``)
puts the journal on a ``MemoryStore`` kept in a process-wide registry by volume
and actor name, so it outlives the actor object that wrote it (a crash drops
the object, the restart finds the store). On such a store commits and
snapshots run inline on the event loop (no writer thread: the order of
everything is the scheduler's alone) and snapshots are due by count only
(``snapshot_every``, which the volume may set), never by the clock.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import lmdb
import orjson

from actors.capability import Keyring, Role
from actors.durability.storage import FormatError, LmdbStore, MemoryStore, RecoveryError
from exchange.messages.codec import encode_shallow

log = logging.getLogger("exchange.journal")
MEMORY_PREFIX = "memory:"
HANG_S = 3_600                   # a ``hang:`` test hook holds the process this long (it is killed first)


class MemoryVolume:
    """The in-memory stores of one simulated run, by actor name; ``snapshot_every``
    (None: the config's) is the count-based snapshot schedule of every journal on it."""

    def __init__(self, snapshot_every: int | None = None, keep_snapshots: int = 3):
        self.snapshot_every = snapshot_every
        self.keep_snapshots = keep_snapshots
        self.stores: dict[str, MemoryStore] = {}

    def store(self, actor_name: str) -> MemoryStore:
        store = self.stores.get(actor_name)
        if store is None:
            store = self.stores[actor_name] = MemoryStore(self.keep_snapshots)
        return store


MEMORY_VOLUMES: dict[str, MemoryVolume] = {}


def memory_volume(name: str, snapshot_every: int | None = None) -> str:
    """Create (or replace) the in-memory volume ``name``; return its data directory."""
    MEMORY_VOLUMES[name] = MemoryVolume(snapshot_every)
    return MEMORY_PREFIX + name


def drop_memory_volume(data_dir: str) -> None:
    """Forget a volume made by ``memory_volume`` (its stores go with it)."""
    MEMORY_VOLUMES.pop(data_dir[len(MEMORY_PREFIX):], None)


class Journal:
    def __init__(self, store, snapshot_every: int = 200_000, snapshot_interval_s: float = 300.0,
                 inline: bool = False):
        self.store = store
        self.inline = inline                # write on the loop, not the writer thread (memory stores)
        self.snapshot_every = snapshot_every
        self.snapshot_interval_s = snapshot_interval_s
        self.since_snapshot = 0
        self.last_snapshot_at = time.monotonic()
        self.commit_seconds_total = 0.0
        self.commits = 0
        self.snapshot_seconds_last = 0.0
        self.snapshot_bytes_last = 0
        self._queued: list[bytes] = []
        self._weight = 0
        self._waiters: list[asyncio.Future] = []
        self._committing = False
        self.held = False                   # a test's crash hook: nothing more reaches the store
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="journal") \
            if store is not None and not inline else None
        self.after_commit = None            # called on the loop whenever the queue has drained
        self.on_commit = None               # called with each group commit's seconds (metrics)
        self.full = False                   # the last has_room answer (metrics, alerts)

    @classmethod
    def for_actor(cls, data_dir: str | None, actor_name: str, config) -> "Journal":
        """``open`` with the exchange config's durability settings and assets."""
        return cls.open(data_dir, actor_name, config.sections.get("durability", {}),
                        tuple(a.name for a in config.asset_list))

    @classmethod
    def open(cls, data_dir: str | None, actor_name: str, settings: dict, assets: tuple[str, ...] = ()) -> "Journal":
        """The actor's journal under ``data_dir`` (none without one), whose store is bound to
        ``assets``, the config's asset names in index order (``LmdbStore.bind_assets``)."""
        if not data_dir:
            return cls(None)
        if data_dir.startswith(MEMORY_PREFIX):
            volume = MEMORY_VOLUMES[data_dir[len(MEMORY_PREFIX):]]
            every = volume.snapshot_every or int(settings.get("snapshot_every", 200_000))
            return cls(volume.store(actor_name), every, float("inf"), inline=True)
        store = LmdbStore(Path(data_dir) / actor_name.replace(":", "-"), settings.get("mode", "sync"),
                          int(settings.get("keep_snapshots", 3)), int(settings.get("map_size_mb", 16384)) << 20)
        if assets:
            try:
                store.bind_assets(assets)
            except FormatError:
                store.close()
                raise
        return cls(store, int(settings.get("snapshot_every", 200_000)),
                   float(settings.get("snapshot_interval_s", 300)))

    @property
    def enabled(self) -> bool:
        return self.store is not None

    @property
    def idle(self) -> bool:
        """Nothing queued or being written: the actor's state is what its journal says."""
        return not self._queued and not self._committing

    def has_room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more can be journaled with the store's reserve left
        (always True when disabled); the answer is kept in ``full``."""
        self.full = self.store is not None and not self.store.has_room(nbytes)
        return not self.full

    @property
    def used_ratio(self) -> float:
        """Used fraction of the store's map (0.0 when disabled)."""
        return 0.0 if self.store is None else self.store.used_ratio()

    @staticmethod
    def _encode(records: list) -> list[bytes]:
        return [r if type(r) is bytes else orjson.dumps(r, default=encode_shallow) for r in records]

    def write(self, records: list) -> None:
        """Append records (lists, or bytes already encoded) in one synced transaction, on
        the caller's thread (no-op when disabled). Actors use ``commit``; this
        synchronous form is what the journal benchmark times."""
        if self.store is None or not records:
            return
        started = time.perf_counter()
        self.store.append(self._encode(records))
        self.commit_seconds_total += time.perf_counter() - started
        self.commits += 1
        self.since_snapshot += len(records)

    async def commit(self, records: list, weight: int | None = None) -> None:
        """Make ``records`` durable; concurrent callers share one transaction.

        ``weight`` is how many commands the records stand for (a batch record
        holds many), counted toward ``snapshot_every``; default one per record.
        """
        await self.enqueue(records, weight)

    def enqueue(self, records: list, weight: int | None = None) -> asyncio.Future:
        """Queue ``records`` now, behind everything queued before them, and return what to
        await for their durability (``commit`` is enqueue-then-wait). Records reach the
        store in the order they were queued, so a record queued later is never durable
        without this one."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.store is None or not records:
            future.set_result(None)
            return future
        self._queued.extend(self._encode(records))
        self._weight += len(records) if weight is None else weight
        self._waiters.append(future)
        if not self._committing:
            self._committing = True
            loop.create_task(self._commit_queued())
        return future

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queued and not self.held:
                batch, self._queued = self._queued, []
                waiters, self._waiters = self._waiters, []
                weight, self._weight = self._weight, 0
                started = time.perf_counter()
                try:
                    if self.inline:
                        self.store.append(batch)
                    else:
                        await loop.run_in_executor(self._writer, self.store.append, batch)
                except Exception as exc:    # the disk failed us: nothing after this can be promised
                    full = isinstance(exc, lmdb.MapFullError)
                    hint = " (storage full: raise [durability] map_size_mb)" if full else ""
                    log.critical("journal commit failed: %s%s; exiting so the actor restarts and recovers", exc, hint)
                    os._exit(70)
                elapsed = time.perf_counter() - started
                self.commit_seconds_total += elapsed
                self.commits += 1
                self.since_snapshot += weight
                if self.on_commit is not None:
                    self.on_commit(elapsed)
                for waiter in waiters:
                    waiter.set_result(None)
        finally:
            self._committing = False
        if self.after_commit is not None and not self._queued:
            self.after_commit()

    async def drain(self) -> None:
        """Wait until everything queued is durable."""
        while self._committing or self._queued:
            await asyncio.sleep(0.001)

    def snapshot_due(self) -> bool:
        return self.store is not None and self.since_snapshot > 0 and (
            self.since_snapshot >= self.snapshot_every
            or time.monotonic() - self.last_snapshot_at >= self.snapshot_interval_s)

    def snapshot(self, state: dict):
        """Encode a snapshot now and write it on the writer thread (after any queued
        commit, before any later one); return the write's future, or None if
        encoding failed (logged; the journal still has everything, so it is
        simply tried again later)."""
        started = time.perf_counter()
        position = self.store.last_position()
        try:
            payload = orjson.dumps(state, default=encode_shallow)
        except TypeError as exc:
            log.error("snapshot failed: %s", exc)
            self.last_snapshot_at = time.monotonic()
            return None
        self.since_snapshot = 0
        self.last_snapshot_at = time.monotonic()
        self.snapshot_bytes_last = len(payload)
        if not self.store.has_room(len(payload)):
            log.error("snapshot at %d skipped: storage full (%.0f%% used); raise [durability] map_size_mb",
                      position, 100 * self.used_ratio)
            return None
        if self.inline:
            self._write_snapshot(position, payload, started)
            future = Future()
            future.set_result(None)
            return future
        future = self._writer.submit(self._write_snapshot, position, payload, started)
        future.add_done_callback(_log_failure)
        return future

    def _write_snapshot(self, position: int, payload: bytes, started: float) -> None:
        try:
            self.store.write_snapshot(position, payload)
        except lmdb.MapFullError as exc:     # the journal still has everything: state is not at risk
            log.error("snapshot at %d failed: storage full (%s); raise [durability] map_size_mb", position, exc)
            return
        self.snapshot_seconds_last = time.perf_counter() - started

    def recover(self, restore: Callable[[dict], None], replay: Callable[[list], None], oldest: bool = False) -> dict:
        """Load the newest verified snapshot with a complete journal after it (or the
        oldest, for ``exchange verify``), replay the journal after it; return what
        was done. Raises RecoveryError (logged as critical, the store closed) when
        no verified state can be reached: the actor must not start."""
        started = time.perf_counter()
        if self.store is None:
            return {"snapshot": None, "replayed": 0, "seconds": 0.0}
        try:
            position, payload = self.store.recovery_start(oldest)
            if payload is not None:
                restore(orjson.loads(payload))
            replayed = 0
            for _, record in self.store.read_after(position):
                replay(orjson.loads(record))
                replayed += 1
        except RecoveryError as exc:      # release the store, so the directory can be examined or restored
            log.critical("refusing to start: %s", exc)
            self.store.close()
            raise
        self.since_snapshot = replayed
        result = {"snapshot": position if payload is not None else None, "replayed": replayed,
                  "seconds": round(time.perf_counter() - started, 4)}
        if payload is not None or replayed:
            log.warning("recovered", extra={"fields": result})
        return result


class DurableActor:
    """What every journaled actor offers besides its own handlers: an operator's
    snapshot-now and the crash hook the recovery tests use, both for the
    operator role only. Needs ``journal``, ``keyring`` and ``_state()`` on the actor."""

    journal: Journal
    keyring: Keyring
    crash_point: str | None = None

    def _state(self) -> dict:
        raise NotImplementedError

    async def snapshot_now(self, capability) -> int:
        """Write a snapshot now (operators, tests); return the journal position it covers.
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        if not self.journal.enabled:
            return 0
        await self.journal.drain()
        position = self.journal.store.last_position()
        written = self.journal.snapshot(self._state())
        if written is not None:
            await asyncio.wrap_future(written)
        return position

    def arm_crash(self, capability, point: str | None) -> bool:
        """Test hook: exit the process abruptly the next time ``point`` is reached (with
        ``"hang:" + point``, stop there instead, holding the process until it is killed: what
        it journaled is all a store will have, for an offline check).
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        self.crash_point = point
        return True

    def _maybe_crash(self, point: str) -> None:
        if self.crash_point == point:
            os._exit(17)
        if self.crash_point == "hang:" + point:
            time.sleep(HANG_S)

    def _maybe_crash_undurable(self, point: str, after_s: float = 0.5) -> None:
        """Test hook: at ``point``, write nothing more to the journal and exit ``after_s``
        later, so what was handed out meanwhile (answers) leaves and what was queued for
        the journal never reaches it."""
        if self.crash_point == point:
            self.journal.held = True
            asyncio.get_running_loop().call_later(after_s, os._exit, 17)


def _log_failure(future) -> None:
    if future.exception() is not None:
        log.error("snapshot write failed: %s", future.exception())

