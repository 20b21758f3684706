"""Durable storage for one actor: a checksummed command journal and snapshots in
LMDB, the rules that decide what may be deleted and where recovery may start,
and how full the store is.

Layout (format 3): one LMDB environment per actor, ``<data>/<actor name>/``,
with three named databases:
- ``journal``: key = 8-byte big-endian position (1, 2, ...), value = CRC32
  (u32, big-endian) of key + payload, then the payload. CRC32 detects every
  error burst up to 32 bits (so any one changed byte, such as a changed digit
  in an amount) and other damage with probability 1 - 2**-32; it is the cheap
  check a record on the hot path can afford. It guards against corruption,
  not tampering (nothing here is keyed);
- ``snapshots``: key = the journal position the snapshot covers, value =
  header (format version u32, position u64, SHA-256 of the payload) + payload;
- ``meta``: ``format`` = the store's format version.
One environment per actor (not one per node) so that an actor can move to
another node with its directory, and so that one actor's fsyncs never wait on
another's writer lock.

Durability: ``sync`` (the default) fsyncs every group commit; ``async`` lets
the OS flush (LMDB ``sync=False, metasync=False``): a power loss may drop the
last commits, a process crash does not (the page cache survives it).

Formats: a store whose format is not this code's is refused with
``FormatError`` before anything is read, saying why (``OLD_FORMATS``): format
1 predates checksums; format 2 predates Core v2's typed records (letter
journal tags, market events without ``ts_ns``, liquidation stages as
strings), which this code would misread, and a migration would have to
re-shape every stored event: drain the old deployment (``exchange verify``
on a stopped cluster), then start the new one on an empty directory, or
restore a format-3 backup. A newer format needs newer code.

Compaction: after a snapshot, snapshots older than the oldest of the newest
``keep_snapshots`` *verified* snapshots, and the journal up to it, are
deleted, and only when at least two snapshots verify; otherwise nothing is.

Recovery starts from the newest verified snapshot (the oldest, for ``exchange
verify``) from which the journal is complete: contiguous from the snapshot's
position + 1 to the newest position the store has seen, every record passing
its checksum. Without a verified snapshot it starts from nothing only if the
journal starts at position 1 (or the store is empty). Anything else raises
``RecoveryError``: the actor refuses to start rather than start with less.

Room: ``has_room(nbytes)`` is False when the pages used plus ``nbytes`` plus a
reserve of max(1 MiB, 2% of the capacity) would not fit the capacity: the
map, or the pages used plus the disk's free space (asked at most once a
second) if that is less. LMDB's
last page number is a high-water mark (freed pages are reused before the
file grows), so this errs on the side of "full"; the remedy is a larger
``map_size_mb`` (or disk).
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import struct
import time
import zlib
from pathlib import Path
from typing import Iterator, Protocol

import lmdb

FORMAT_VERSION = 3
OLD_FORMATS = {1: "predates journal checksums",
               2: "predates Core v2's typed journal records (letter tags, events without ts_ns, "
                  "liquidation stages as strings)"}
HEADER = struct.Struct(">IQ32s")          # snapshot: format, position, SHA-256 of the payload
RECORD = struct.Struct(">I")              # journal record: CRC32 of key + payload
POSITION = struct.Struct(">Q")
RESERVE_BYTES_MIN = 1 << 20
RESERVE_FRACTION = 50                     # 1/50 = 2% of the map
DISK_CHECK_INTERVAL_S = 1.0               # the disk's free space is asked at most this often
RESTORE_ADVICE = ("restore this directory from a backup (run `exchange verify --data <data dir>` to list every "
                  "problem); do not delete it to start empty: that would lose acknowledged state")
log = logging.getLogger("exchange.storage")


class FormatError(RuntimeError):
    """Stored data in a format this code does not read (older or newer)."""


class RecoveryError(RuntimeError):
    """The store cannot be brought back to a verified state: the actor must not start."""


class Store(Protocol):
    def append(self, records: list[bytes]) -> int: ...
    def last_position(self) -> int: ...
    def read_after(self, position: int) -> Iterator[tuple[int, bytes]]: ...
    def write_snapshot(self, position: int, payload: bytes) -> None: ...
    def recovery_start(self, oldest: bool = False) -> tuple[int, bytes | None]: ...
    def snapshots(self) -> list[int]: ...
    def problems(self) -> list[str]: ...
    def has_room(self, nbytes: int) -> bool: ...
    def used_ratio(self) -> float: ...
    def close(self) -> None: ...


# ---- formats (pure) -------------------------------------------------------------------

def _pack_snapshot(position: int, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    return HEADER.pack(version, position, hashlib.sha256(payload).digest()) + payload


def _unpack_snapshot(key_position: int, value: bytes) -> bytes | None:
    """The payload if the snapshot is intact; None if corrupt. The store's format
    marker is the one authority on the format (checked at open), so a header
    claiming another version is damage, not a newer snapshot."""
    if len(value) < HEADER.size:
        return None
    version, position, digest = HEADER.unpack_from(value)
    payload = value[HEADER.size:]
    if version != FORMAT_VERSION or position != key_position or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def pack_record(position: int, payload: bytes) -> bytes:
    """A journal value: CRC32 of the 8-byte key and the payload, then the payload."""
    return RECORD.pack(zlib.crc32(payload, zlib.crc32(POSITION.pack(position)))) + payload


def unpack_record(position: int, value: bytes) -> bytes | None:
    """The payload if the record at ``position`` passes its checksum, else None."""
    if len(value) < RECORD.size:
        return None
    payload = value[RECORD.size:]
    if RECORD.unpack_from(value)[0] != zlib.crc32(payload, zlib.crc32(POSITION.pack(position))):
        return None
    return payload


# ---- rules (pure) ---------------------------------------------------------------------

def compaction_floor(verified: list[int], keep_snapshots: int) -> int | None:
    """The position at or below which journal records (and below which snapshots)
    may go: the oldest of the newest ``keep_snapshots`` verified snapshots, if at
    least two verify; None (delete nothing) otherwise."""
    kept = verified[-keep_snapshots:]
    return kept[0] if len(kept) >= 2 else None


def has_room(used_bytes: int, nbytes: int, capacity_bytes: int) -> bool:
    """Whether ``nbytes`` more fit with the reserve of max(1 MiB, 2% of capacity) left."""
    reserve = max(RESERVE_BYTES_MIN, capacity_bytes // RESERVE_FRACTION)
    return used_bytes + nbytes + reserve <= capacity_bytes


def _check_keep(keep_snapshots: int) -> None:
    if keep_snapshots < 2:
        raise ValueError("keep_snapshots must be at least 2 (the journal is kept back to two verified snapshots)")


# ---- the contract, on top of a few primitives -------------------------------------------

class _CheckedStore:
    """Checksums, compaction, recovery start and room, for any store that provides
    ``_snapshot_value(p)``, ``_records(after)`` (raw, ascending), ``_record_bounds()``,
    ``_put_records``, ``_put_snapshot``, ``_delete_through(floor)``, ``_usage()``
    (bytes used, capacity or None), ``location`` and ``snapshots()``."""

    keep_snapshots: int
    location: str
    _last: int

    def _initial_last(self) -> int:
        bounds = self._record_bounds()
        return max([bounds[1] if bounds else 0, *self.snapshots()])

    def append(self, records: list[bytes]) -> int:
        """Append records in one transaction (one fsync with ``sync``); return the last position."""
        first = self._last + 1
        self._put_records([(p, pack_record(p, r)) for p, r in enumerate(records, first)])
        self._last = first + len(records) - 1
        return self._last

    def last_position(self) -> int:
        return self._last

    def read_after(self, position: int) -> Iterator[tuple[int, bytes]]:
        """Every record after ``position`` up to the last one, checked. Raises
        RecoveryError at a gap, a record failing its checksum, or a journal that
        ends before the newest position the store has seen."""
        expected = position + 1
        for p, value in self._records(position):
            if p != expected:
                raise self._refusal(f"journal records {expected}..{p - 1} are missing")
            payload = unpack_record(p, value)
            if payload is None:
                raise self._refusal(f"journal record {p} fails its checksum")
            yield p, payload
            expected += 1
        if expected <= self._last:
            raise self._refusal(f"journal records {expected}..{self._last} are missing")

    def write_snapshot(self, position: int, payload: bytes) -> None:
        """Store a snapshot covering the journal up to ``position``, read it back,
        then compact (module docstring)."""
        self._put_snapshot(position, _pack_snapshot(position, payload))
        if self.snapshot_payload(position) != payload:
            raise RuntimeError(f"{self.location}: snapshot at {position} did not read back intact")
        self._compact()

    def _compact(self) -> None:
        floor = compaction_floor(self.verified_snapshots(), self.keep_snapshots)
        if floor is not None:
            self._delete_through(floor)

    def snapshot_payload(self, position: int) -> bytes | None:
        """The payload of the snapshot at ``position`` if it verifies."""
        value = self._snapshot_value(position)
        return None if value is None else _unpack_snapshot(position, value)

    def verified_snapshots(self) -> list[int]:
        return [p for p in self.snapshots() if self.snapshot_payload(p) is not None]

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot that verifies (position, payload)."""
        verified = self.verified_snapshots()
        return (verified[-1], self.snapshot_payload(verified[-1])) if verified else None

    def recovery_start(self, oldest: bool = False) -> tuple[int, bytes | None]:
        """Where recovery starts: (snapshot position, payload), or (0, None) to replay
        the whole journal. Raises RecoveryError if no verified state can be reached."""
        verified, bounds = self.verified_snapshots(), self._record_bounds()
        for position in (verified if oldest else reversed(verified)):
            if self._complete_after(position, bounds):
                return position, self.snapshot_payload(position)
        if self._complete_after(0, bounds):
            return 0, None
        raise self._refusal(self._why_unrecoverable(verified, bounds))

    def _complete_after(self, position: int, bounds: tuple[int, int] | None) -> bool:
        """Whether the journal holds every record from ``position`` + 1 to the last position."""
        if position >= self._last:
            return True
        return bounds is not None and bounds[0] <= position + 1 and bounds[1] >= self._last

    def _why_unrecoverable(self, verified: list[int], bounds: tuple[int, int] | None) -> str:
        corrupt = [p for p in self.snapshots() if p not in verified]
        parts = [f"snapshot {p} fails its checksum" for p in corrupt]
        parts.append(f"verified snapshots: {verified or 'none'}")
        journal = f"the journal holds {bounds[0]}..{bounds[1]}" if bounds else "the journal is empty"
        parts.append(f"{journal}, the store had reached {self._last}")
        return "no verified snapshot with a complete journal after it (" + "; ".join(parts) + ")"

    def _refusal(self, what: str) -> RecoveryError:
        return RecoveryError(f"{self.location}: cannot recover: {what}; {RESTORE_ADVICE}")

    def problems(self) -> list[str]:
        """Every corruption found, one line each (``exchange verify``): snapshots and
        records failing their checksums, gaps in the journal, and whether recovery
        can reach a verified state."""
        found = [f"{self.location}: {line}" for line in self._snapshot_problems() + self._journal_problems()]
        try:
            self.recovery_start()
        except RecoveryError as exc:
            found.append(str(exc))
        return found

    def _snapshot_problems(self) -> list[str]:
        return [f"snapshot {p} fails its checksum" for p in self.snapshots() if self.snapshot_payload(p) is None]

    def _journal_problems(self) -> list[str]:
        lines, expected = [], None
        for p, value in self._records(0):
            if expected is not None and p != expected:
                lines.append(f"journal records {expected}..{p - 1} are missing")
            if unpack_record(p, value) is None:
                lines.append(f"journal record {p} fails its checksum")
            expected = p + 1
        return lines

    def has_room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more can be written with the reserve left (module docstring);
        cheap enough to ask once per command."""
        used, capacity = self._usage()
        return capacity is None or has_room(used, nbytes, capacity)

    def used_ratio(self) -> float:
        """Used fraction of the store's capacity (0.0 if unbounded)."""
        used, capacity = self._usage()
        return used / capacity if capacity else 0.0

    def corrupt_for_test(self, kind: str, position: int, index: int = -1, xor: int = 0xFF) -> None:
        """Flip bits of one stored byte (``kind`` = "snapshot" or "record"), as a disk
        might; used by tests and the chaos harness."""
        value = bytearray(self._raw(kind, position))
        value[index] ^= xor
        self._put_raw(kind, position, bytes(value))

    def corrupt_snapshot_for_test(self, position: int) -> None:
        self.corrupt_for_test("snapshot", position)


class LmdbStore(_CheckedStore):
    """The real store (see module docstring)."""

    def __init__(self, path: str | Path, durability: str = "sync", keep_snapshots: int = 3,
                 map_size: int = 16 << 30):
        if durability not in ("sync", "async"):
            raise ValueError(f"durability must be sync or async, not {durability!r}")
        _check_keep(keep_snapshots)
        Path(path).mkdir(parents=True, exist_ok=True)
        synced = durability == "sync"
        self.path = self.location = str(path)
        self.keep_snapshots = keep_snapshots
        self.env = lmdb.open(self.path, map_size=map_size, max_dbs=4, sync=synced, metasync=synced,
                             writemap=False, readahead=False)
        self.journal = self.env.open_db(b"journal")
        self.snaps = self.env.open_db(b"snapshots")
        self.meta = self.env.open_db(b"meta")
        self.page_bytes = self.env.stat()["psize"]
        self.map_bytes = self.env.info()["map_size"]
        self._disk_free_bytes, self._disk_checked_at = 0, float("-inf")
        self._check_format()
        self._last = self._initial_last()
        self._measure()

    def _check_format(self) -> None:
        with self.env.begin(write=True) as txn:
            stored = txn.get(b"format", db=self.meta)
            if stored is None and (txn.stat(self.journal)["entries"] or txn.stat(self.snaps)["entries"]):
                raise FormatError(f"{self.path}: holds data but no format marker; refusing to read it")
            if stored is None:
                txn.put(b"format", str(FORMAT_VERSION).encode(), db=self.meta)
                return
            version = int(stored)
        if version < FORMAT_VERSION:
            why = OLD_FORMATS.get(version, "is older than this code's")
            raise FormatError(f"{self.path}: store format {version} {why} (this code writes format "
                              f"{FORMAT_VERSION}) and will not be read: wipe the directory (its state is lost) "
                              f"or restore it from a format-{FORMAT_VERSION} backup")
        if version > FORMAT_VERSION:
            raise FormatError(f"{self.path}: store format {version} is newer than this code "
                              f"({FORMAT_VERSION}); refusing to read it")

    def bind_assets(self, names: tuple[str, ...]) -> None:
        """Record the assets this store's state is written for, in index order (stored
        balances are lists in that order), on first use; refuse (``FormatError``, before
        anything is read) a config whose assets differ: every stored balance would land
        on another asset."""
        wanted = ",".join(names)
        with self.env.begin(write=True) as txn:
            stored = txn.get(b"assets", db=self.meta)
            if stored is None:
                txn.put(b"assets", wanted.encode(), db=self.meta)
                return
        if stored.decode() != wanted:
            raise FormatError(f"{self.path}: its state was written for the assets {stored.decode()} (in that "
                              f"order) and the config has {wanted}: stored balances would land on other assets, "
                              "so it will not be read. Assets cannot be added, removed or renamed under stored "
                              "state yet (docs/DEPLOY.md)")

    # ---- primitives -------------------------------------------------------------------
    def _put_records(self, packed: list[tuple[int, bytes]]) -> None:
        with self.env.begin(write=True, db=self.journal) as txn:
            cursor = txn.cursor()
            for position, value in packed:
                cursor.put(POSITION.pack(position), value, append=True)
        self._measure()

    def _records(self, after: int) -> Iterator[tuple[int, bytes]]:
        with self.env.begin(db=self.journal, buffers=False) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(POSITION.pack(after + 1)):
                return
            for key, value in cursor:
                yield POSITION.unpack(key)[0], value

    def _record_bounds(self) -> tuple[int, int] | None:
        with self.env.begin(db=self.journal) as txn:
            cursor = txn.cursor()
            if not cursor.first():
                return None
            first = POSITION.unpack(cursor.key())[0]
            cursor.last()
            return first, POSITION.unpack(cursor.key())[0]

    def _put_snapshot(self, position: int, value: bytes) -> None:
        with self.env.begin(write=True, db=self.snaps) as txn:
            txn.put(POSITION.pack(position), value)
        self._measure()

    def _snapshot_value(self, position: int) -> bytes | None:
        with self.env.begin(db=self.snaps, buffers=False) as txn:
            return txn.get(POSITION.pack(position))

    def _delete_through(self, floor: int) -> None:
        older = [p for p in self.snapshots() if p < floor]
        with self.env.begin(write=True) as txn:
            for p in older:
                txn.delete(POSITION.pack(p), db=self.snaps)
            cursor = txn.cursor(db=self.journal)
            while cursor.first() and POSITION.unpack(cursor.key())[0] <= floor:
                cursor.delete()
        self._measure()

    def _raw(self, kind: str, position: int) -> bytes:
        with self.env.begin(db=self._db(kind), buffers=False) as txn:
            return txn.get(POSITION.pack(position))

    def _put_raw(self, kind: str, position: int, value: bytes) -> None:
        with self.env.begin(write=True, db=self._db(kind)) as txn:
            txn.put(POSITION.pack(position), value)

    def _db(self, kind: str):
        return {"snapshot": self.snaps, "record": self.journal}[kind]

    def _measure(self) -> None:
        """Note the pages in use; called after every write (on the writer's thread)."""
        self._used_bytes = (self.env.info()["last_pgno"] + 1) * self.page_bytes

    def _usage(self) -> tuple[int, int]:
        now = time.monotonic()
        if now - self._disk_checked_at >= DISK_CHECK_INTERVAL_S:
            self._disk_free_bytes, self._disk_checked_at = shutil.disk_usage(self.path).free, now
        used = self._used_bytes
        return used, min(self.map_bytes, used + self._disk_free_bytes)

    def snapshots(self) -> list[int]:
        with self.env.begin(db=self.snaps) as txn:
            return [POSITION.unpack(k)[0] for k in txn.cursor().iternext(values=False)]

    def close(self) -> None:
        self.env.close()


class MemoryStore(_CheckedStore):
    """In-memory store with the same contract, for unit tests; ``capacity_bytes``
    (payload bytes, default unbounded) lets a test fill it."""

    def __init__(self, keep_snapshots: int = 3, capacity_bytes: int | None = None):
        _check_keep(keep_snapshots)
        self.records: dict[int, bytes] = {}
        self.snaps: dict[int, bytes] = {}
        self.keep_snapshots = keep_snapshots
        self.capacity_bytes = capacity_bytes
        self.location = "memory store"
        self._last = 0

    def _put_records(self, packed: list[tuple[int, bytes]]) -> None:
        self.records.update(packed)

    def _records(self, after: int) -> Iterator[tuple[int, bytes]]:
        for p in sorted(self.records):
            if p > after:
                yield p, self.records[p]

    def _record_bounds(self) -> tuple[int, int] | None:
        return (min(self.records), max(self.records)) if self.records else None

    def _put_snapshot(self, position: int, value: bytes) -> None:
        self.snaps[position] = value

    def _snapshot_value(self, position: int) -> bytes | None:
        return self.snaps.get(position)

    def _delete_through(self, floor: int) -> None:
        for p in [p for p in self.snaps if p < floor]:
            del self.snaps[p]
        for p in [p for p in self.records if p <= floor]:
            del self.records[p]

    def _raw(self, kind: str, position: int) -> bytes:
        return (self.snaps if kind == "snapshot" else self.records)[position]

    def _put_raw(self, kind: str, position: int, value: bytes) -> None:
        (self.snaps if kind == "snapshot" else self.records)[position] = value

    def _usage(self) -> tuple[int, int | None]:
        used = sum(map(len, self.records.values())) + sum(map(len, self.snaps.values()))
        return used, self.capacity_bytes

    def snapshots(self) -> list[int]:
        return sorted(self.snaps)

    def close(self) -> None:
        pass
