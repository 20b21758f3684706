"""The journal/snapshot store contract, run against LMDB and the in-memory fake."""
from __future__ import annotations

import pytest

from actors.storage import FORMAT_VERSION, HEADER, POSITION, FormatError, LmdbStore, MemoryStore


@pytest.fixture(params=["lmdb", "memory"])
def store(request, tmp_path):
    made = LmdbStore(tmp_path / "actor", keep_snapshots=2) if request.param == "lmdb" else MemoryStore(2)
    yield made
    made.close()


def test_store_with_appended_batches_reads_them_back_in_order(store):
    assert store.append([b"a", b"b"]) == 2
    assert store.append([b"c"]) == 3
    assert list(store.read_after(1)) == [(2, b"b"), (3, b"c")]
    assert store.last_position() == 3


def test_store_with_many_snapshots_keeps_the_newest_and_the_journal_after_the_oldest(store):
    for i in range(1, 5):
        store.append([f"r{i}".encode()])
        store.write_snapshot(store.last_position(), f"state{i}".encode())
    store.append([b"tail"])
    assert store.snapshots() == [3, 4]
    assert store.latest_snapshot() == (4, b"state4")
    assert [p for p, _ in store.read_after(0)] == [4, 5]


def test_lmdb_store_with_corrupt_latest_snapshot_falls_back_to_the_previous(tmp_path):
    store = LmdbStore(tmp_path / "a", keep_snapshots=3)
    store.append([b"x"])
    store.write_snapshot(1, b"first")
    store.append([b"y"])
    store.write_snapshot(2, b"second")
    store.corrupt_snapshot_for_test(2)
    assert store.latest_snapshot() == (1, b"first")
    assert list(store.read_after(1)) == [(2, b"y")]


def test_lmdb_store_reopened_continues_after_its_last_position(tmp_path):
    store = LmdbStore(tmp_path / "a")
    store.append([b"x", b"y"])
    store.close()
    again = LmdbStore(tmp_path / "a")
    assert again.append([b"z"]) == 3


def test_lmdb_store_written_by_a_newer_format_is_refused_before_reading(tmp_path):
    store = LmdbStore(tmp_path / "a")
    with store.env.begin(write=True) as txn:
        txn.put(b"format", str(FORMAT_VERSION + 1).encode(), db=store.meta)
    store.close()
    with pytest.raises(FormatError, match="newer"):
        LmdbStore(tmp_path / "a")


def test_lmdb_snapshot_with_a_newer_format_header_is_refused(tmp_path):
    store = LmdbStore(tmp_path / "a")
    with store.env.begin(write=True) as txn:
        txn.put(POSITION.pack(7), HEADER.pack(FORMAT_VERSION + 1, 7, b"\0" * 32) + b"{}", db=store.snaps)
    with pytest.raises(FormatError):
        store.latest_snapshot()


def test_lmdb_store_with_unknown_durability_mode_is_refused(tmp_path):
    with pytest.raises(ValueError):
        LmdbStore(tmp_path / "a", durability="sometimes")
