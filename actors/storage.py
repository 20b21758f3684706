"""Durable storage for one actor: a command journal and snapshots in LMDB.

Layout: one LMDB environment per actor, ``<data>/<actor name>/``, with three
named databases:
- ``journal``: key = 8-byte big-endian position (1, 2, ...), value = one record;
- ``snapshots``: key = the journal position the snapshot covers, value =
  header (format version u32, position u64, SHA-256 of the payload) + payload;
- ``meta``: ``format`` = the store's format version.
One environment per actor (not one per node) so that an actor can move to
another node with its directory, and so that one actor's fsyncs never wait on
another's writer lock.

Durability: ``sync`` (the default) fsyncs every group commit; ``async`` lets
the OS flush (LMDB ``sync=False, metasync=False``): a power loss may drop the
last commits, a process crash does not (the page cache survives it).

Formats: a store whose format is newer than this code is refused with
``FormatError`` before anything is read. A snapshot whose checksum or header
does not match is skipped and the previous one is used.
"""
from __future__ import annotations

import hashlib
import logging
import struct
from pathlib import Path
from typing import Iterator, Protocol

import lmdb

FORMAT_VERSION = 1
HEADER = struct.Struct(">IQ32s")
POSITION = struct.Struct(">Q")
log = logging.getLogger("exchange.storage")


class FormatError(RuntimeError):
    """Stored data written by a newer format than this code understands."""


class Store(Protocol):
    def append(self, records: list[bytes]) -> int: ...
    def last_position(self) -> int: ...
    def read_after(self, position: int) -> Iterator[tuple[int, bytes]]: ...
    def write_snapshot(self, position: int, payload: bytes) -> None: ...
    def latest_snapshot(self) -> tuple[int, bytes] | None: ...
    def snapshots(self) -> list[int]: ...
    def close(self) -> None: ...


def _pack_snapshot(position: int, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    return HEADER.pack(version, position, hashlib.sha256(payload).digest()) + payload


def _unpack_snapshot(key_position: int, value: bytes) -> bytes | None:
    """The payload if the snapshot is intact; None if corrupt. Raises FormatError if newer."""
    if len(value) < HEADER.size:
        return None
    version, position, digest = HEADER.unpack_from(value)
    if version > FORMAT_VERSION:
        raise FormatError(f"snapshot at {position} has format {version}; this code reads up to {FORMAT_VERSION}")
    payload = value[HEADER.size:]
    if position != key_position or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


class LmdbStore:
    """The real store (see module docstring)."""

    def __init__(self, path: str | Path, durability: str = "sync", keep_snapshots: int = 3,
                 map_size: int = 16 << 30):
        if durability not in ("sync", "async"):
            raise ValueError(f"durability must be sync or async, not {durability!r}")
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be at least 1")
        Path(path).mkdir(parents=True, exist_ok=True)
        synced = durability == "sync"
        self.path = str(path)
        self.keep_snapshots = keep_snapshots
        self.env = lmdb.open(self.path, map_size=map_size, max_dbs=4, sync=synced, metasync=synced,
                             writemap=False, readahead=False)
        self.journal = self.env.open_db(b"journal")
        self.snaps = self.env.open_db(b"snapshots")
        self.meta = self.env.open_db(b"meta")
        with self.env.begin(write=True) as txn:
            stored = txn.get(b"format", db=self.meta)
            if stored is None:
                txn.put(b"format", str(FORMAT_VERSION).encode(), db=self.meta)
            elif int(stored) > FORMAT_VERSION:
                raise FormatError(f"{self.path}: store format {int(stored)} is newer than this code "
                                  f"({FORMAT_VERSION}); refusing to read it")
        self._last = self._read_last()

    def _read_last(self) -> int:
        with self.env.begin(db=self.journal) as txn:
            cursor = txn.cursor()
            return POSITION.unpack(cursor.key())[0] if cursor.last() else self._snapshot_floor()

    def _snapshot_floor(self) -> int:
        positions = self.snapshots()
        return positions[-1] if positions else 0

    def append(self, records: list[bytes]) -> int:
        """Append records in one transaction (one fsync with ``sync``); return the last position."""
        position = self._last
        with self.env.begin(write=True, db=self.journal) as txn:
            cursor = txn.cursor()
            for record in records:
                position += 1
                cursor.put(POSITION.pack(position), record, append=True)
        self._last = position
        return position

    def last_position(self) -> int:
        return self._last

    def read_after(self, position: int) -> Iterator[tuple[int, bytes]]:
        with self.env.begin(db=self.journal, buffers=False) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(POSITION.pack(position + 1)):
                return
            for key, value in cursor:
                yield POSITION.unpack(key)[0], value

    def write_snapshot(self, position: int, payload: bytes) -> None:
        """Store a snapshot covering the journal up to ``position``, read it back,
        keep the newest ``keep_snapshots``, and drop journal records older than
        the oldest snapshot kept."""
        key = POSITION.pack(position)
        with self.env.begin(write=True, db=self.snaps) as txn:
            txn.put(key, _pack_snapshot(position, payload))
        with self.env.begin(db=self.snaps) as txn:
            if _unpack_snapshot(position, bytes(txn.get(key))) != payload:
                raise RuntimeError(f"snapshot at {position} did not read back intact")
        self._compact()

    def _compact(self) -> None:
        positions = self.snapshots()
        drop, keep = positions[:-self.keep_snapshots], positions[-self.keep_snapshots:]
        with self.env.begin(write=True) as txn:
            for p in drop:
                txn.delete(POSITION.pack(p), db=self.snaps)
            if keep:
                cursor = txn.cursor(db=self.journal)
                floor = keep[0]
                while cursor.first() and POSITION.unpack(cursor.key())[0] <= floor:
                    cursor.delete()

    def snapshots(self) -> list[int]:
        with self.env.begin(db=self.snaps) as txn:
            return [POSITION.unpack(k)[0] for k, _ in txn.cursor()]

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest intact snapshot (position, payload); corrupt ones are skipped."""
        with self.env.begin(db=self.snaps) as txn:
            cursor = txn.cursor()
            if not cursor.last():
                return None
            for key, value in cursor.iterprev():
                position = POSITION.unpack(key)[0]
                payload = _unpack_snapshot(position, bytes(value))
                if payload is not None:
                    return position, payload
                log.warning("snapshot at %d is corrupt; trying the previous one", position)
        return None

    def oldest_snapshot(self) -> tuple[int, bytes] | None:
        for position in self.snapshots():
            with self.env.begin(db=self.snaps) as txn:
                payload = _unpack_snapshot(position, bytes(txn.get(POSITION.pack(position))))
            if payload is not None:
                return position, payload
        return None

    def corrupt_snapshot_for_test(self, position: int) -> None:
        """Flip a byte in a stored snapshot (used by tests and the chaos harness)."""
        key = POSITION.pack(position)
        with self.env.begin(write=True, db=self.snaps) as txn:
            value = bytearray(txn.get(key))
            value[-1] ^= 0xFF
            txn.put(key, bytes(value))

    def close(self) -> None:
        self.env.close()


class MemoryStore:
    """In-memory store with the same contract, for unit tests."""

    def __init__(self, keep_snapshots: int = 3):
        self.records: dict[int, bytes] = {}
        self.snaps: dict[int, bytes] = {}
        self.keep_snapshots = keep_snapshots
        self._last = 0

    def append(self, records: list[bytes]) -> int:
        for record in records:
            self._last += 1
            self.records[self._last] = record
        return self._last

    def last_position(self) -> int:
        return self._last

    def read_after(self, position: int) -> Iterator[tuple[int, bytes]]:
        for p in sorted(self.records):
            if p > position:
                yield p, self.records[p]

    def write_snapshot(self, position: int, payload: bytes) -> None:
        self.snaps[position] = _pack_snapshot(position, payload)
        for p in sorted(self.snaps)[:-self.keep_snapshots]:
            del self.snaps[p]
        floor = min(self.snaps)
        for p in [p for p in self.records if p <= floor]:
            del self.records[p]

    def snapshots(self) -> list[int]:
        return sorted(self.snaps)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        for p in sorted(self.snaps, reverse=True):
            payload = _unpack_snapshot(p, self.snaps[p])
            if payload is not None:
                return p, payload
        return None

    def oldest_snapshot(self) -> tuple[int, bytes] | None:
        for p in sorted(self.snaps):
            payload = _unpack_snapshot(p, self.snaps[p])
            if payload is not None:
                return p, payload
        return None

    def close(self) -> None:
        pass
