"""The journal/snapshot store contract, run against LMDB and the in-memory fake."""
from __future__ import annotations

import hashlib
import shutil

import pytest

import lmdb

from actors.durability import storage
from actors.durability.journal import Journal
from actors.durability.storage import (FORMAT_VERSION, HEADER, POSITION, FormatError, LmdbStore, MemoryStore, RecoveryError,
                            pack_record)


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
    assert [p for p, _ in store.read_after(3)] == [4, 5]
    with pytest.raises(RecoveryError, match="records 1..3 are missing"):
        list(store.read_after(0))


def test_store_with_corrupt_latest_snapshot_recovers_from_the_previous(store):
    store.append([b"x"])
    store.write_snapshot(1, b"first")
    store.append([b"y"])
    store.write_snapshot(2, b"second")
    store.corrupt_snapshot_for_test(2)
    assert store.latest_snapshot() == (1, b"first")
    assert store.recovery_start() == (1, b"first")
    assert list(store.read_after(1)) == [(2, b"y")]


def test_store_with_one_verified_snapshot_deletes_no_journal(store):
    store.append([b"a", b"b"])
    store.write_snapshot(2, b"s2")
    store.append([b"c"])
    assert [p for p, _ in store.read_after(0)] == [1, 2, 3]
    store.corrupt_snapshot_for_test(2)
    assert store.recovery_start() == (0, None)             # the whole journal is still there


def test_store_with_a_corrupt_kept_snapshot_keeps_the_journal_back_to_two_verified(store):
    store.append([b"a"])
    store.write_snapshot(1, b"s1")
    store.append([b"b"])
    store.write_snapshot(2, b"s2")
    store.corrupt_snapshot_for_test(2)
    store.append([b"c"])
    store.write_snapshot(3, b"s3")                          # verified: 1 and 3; the floor is 1
    assert store.snapshots() == [1, 2, 3]
    assert [p for p, _ in store.read_after(1)] == [2, 3]
    store.corrupt_snapshot_for_test(3)
    assert store.recovery_start() == (1, b"s1")


def test_store_records_carry_a_checksum_and_a_changed_byte_is_refused(store):
    store.append([b'{"amount":100}', b"next"])
    store.corrupt_for_test("record", 1, index=-3, xor=ord("1") ^ ord("7"))     # 100 -> 700
    with pytest.raises(RecoveryError, match="journal record 1 fails its checksum"):
        list(store.read_after(0))
    assert any("journal record 1 fails its checksum" in p for p in store.problems())


def test_store_with_a_record_moved_to_another_position_is_refused(store):
    store.append([b"one", b"two"])
    moved = pack_record(1, b"one")                          # a valid record, but for position 1
    store._put_raw("record", 2, moved)
    with pytest.raises(RecoveryError, match="record 2 fails"):
        list(store.read_after(1))


def test_store_with_no_verified_snapshot_and_a_compacted_journal_refuses(store):
    for i in range(1, 4):
        store.append([f"r{i}".encode()])
        store.write_snapshot(i, f"s{i}".encode())
    store.corrupt_snapshot_for_test(2)
    store.corrupt_snapshot_for_test(3)
    with pytest.raises(RecoveryError, match="no verified snapshot with a complete journal"):
        store.recovery_start()


def test_store_with_only_corrupt_snapshots_and_no_journal_never_starts_empty(store):
    store.append([b"a"])
    store.write_snapshot(1, b"s1")
    store.append([b"b"])
    store.write_snapshot(2, b"s2")                          # two verified: journal up to 1 deleted
    for position in (1, 2):
        store.corrupt_snapshot_for_test(position)
    with pytest.raises(RecoveryError, match="snapshot 1 fails its checksum.*snapshot 2 fails"):
        store.recovery_start()
    assert len(store.problems()) == 3                       # two snapshots and the refusal


def test_store_with_a_gap_in_the_journal_refuses(store):
    store.append([b"a", b"b", b"c"])
    if isinstance(store, MemoryStore):
        del store.records[2]
    else:
        with store.env.begin(write=True, db=store.journal) as txn:
            txn.delete(POSITION.pack(2))
    with pytest.raises(RecoveryError, match="journal records 2..2 are missing"):
        list(store.read_after(0))
    assert any("records 2..2 are missing" in p for p in store.problems())


def test_empty_store_recovers_from_nothing(store):
    assert store.recovery_start() == (0, None)
    assert list(store.read_after(0)) == [] and store.problems() == []


def test_store_with_fewer_than_two_kept_snapshots_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        LmdbStore(tmp_path / "a", keep_snapshots=1)
    with pytest.raises(ValueError, match="at least 2"):
        MemoryStore(keep_snapshots=1)


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


def test_lmdb_snapshot_with_another_format_in_its_header_is_not_trusted(tmp_path):
    store = LmdbStore(tmp_path / "a")
    store.append([b"x"])
    store.write_snapshot(1, b"{}")
    store.append([b"y"])
    forged = HEADER.pack(FORMAT_VERSION + 1, 2, hashlib.sha256(b"{}").digest()) + b"{}"
    with store.env.begin(write=True) as txn:
        txn.put(POSITION.pack(2), forged, db=store.snaps)
    assert store.latest_snapshot() == (1, b"{}")            # the store's format marker decides, not a header
    assert store.problems() == [f"{store.path}: snapshot 2 fails its checksum"]


@pytest.mark.parametrize("version, why", [(1, "predates journal checksums"),
                                          (2, "predates Core v2's typed journal records")])
def test_lmdb_store_of_an_older_format_is_refused_saying_why_and_what_to_do(tmp_path, version, why):
    store = LmdbStore(tmp_path / "a")
    store.append([b"x"])
    with store.env.begin(write=True) as txn:
        txn.put(b"format", str(version).encode(), db=store.meta)
    store.close()
    with pytest.raises(FormatError, match=f"format {version} {why}.*wipe the directory.*format-3 backup"):
        LmdbStore(tmp_path / "a")


def test_lmdb_store_with_data_but_no_format_marker_is_refused(tmp_path):
    store = LmdbStore(tmp_path / "a")
    store.append([b"x"])
    with store.env.begin(write=True) as txn:
        txn.delete(b"format", db=store.meta)
    store.close()
    with pytest.raises(FormatError, match="no format marker"):
        LmdbStore(tmp_path / "a")


def test_lmdb_store_with_unknown_durability_mode_is_refused(tmp_path):
    with pytest.raises(ValueError):
        LmdbStore(tmp_path / "a", durability="sometimes")


# ---- room ------------------------------------------------------------------------------

def test_memory_store_with_a_capacity_reports_no_room_before_it_is_exceeded():
    store = MemoryStore(capacity_bytes=4 << 20)               # reserve: 1 MiB
    assert store.has_room(3 << 20) and not store.has_room((3 << 20) + 1)
    store.append([b"x" * (2 << 20)])
    assert not store.has_room(1 << 20) and 0.49 < store.used_ratio() < 0.51
    assert MemoryStore().has_room(1 << 40) and MemoryStore().used_ratio() == 0.0


def test_lmdb_store_filling_up_says_no_room_before_a_commit_fails_and_stays_readable(tmp_path):
    store = LmdbStore(tmp_path / "a", durability="async", map_size=4 << 20)
    record = b"r" * 2000
    while store.has_room(len(record) * 50):
        store.append([record] * 50)                          # never fails while has_room says yes
    written = store.last_position()
    assert store.used_ratio() > 0.6
    with pytest.raises(lmdb.MapFullError):                  # what an actor that ignored it would hit
        for _ in range(1000):
            store.append([record] * 50)
    assert store.last_position() >= written
    assert sum(1 for _ in store.read_after(0)) == store.last_position()    # state stays readable


def test_lmdb_store_on_a_nearly_full_disk_has_no_room(tmp_path, monkeypatch):
    store = LmdbStore(tmp_path / "a")
    assert store.has_room(1 << 20)
    free = shutil.disk_usage(tmp_path)._replace(free=1 << 19)        # under the 1 MiB reserve
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free)
    monkeypatch.setattr(storage, "DISK_CHECK_INTERVAL_S", 0.0)     # ask the disk again now
    assert not store.has_room(0) and store.used_ratio() > 0.0
    store.close()


def test_journal_open_reads_the_map_size_from_durability_settings(tmp_path):
    journal = Journal.open(str(tmp_path), "shard:0", {"map_size_mb": 8})
    assert journal.store.env.info()["map_size"] == 8 << 20
    assert journal.has_room(1000) and not journal.full
    assert not journal.has_room(8 << 20) and journal.full
    assert 0 < journal.used_ratio < 0.1
    journal.store.close()


def test_journal_disabled_always_has_room():
    journal = Journal(None)
    assert journal.has_room(1 << 50) and not journal.full and journal.used_ratio == 0.0


def test_journal_snapshot_without_room_is_skipped_and_logged(tmp_path, caplog):
    journal = Journal.open(str(tmp_path), "shard:0", {"map_size_mb": 2})
    journal.write([[1, "deposit"]])
    assert journal.snapshot({"big": "x" * (1 << 20)}) is None
    assert "storage full" in caplog.text and journal.store.snapshots() == []
    journal.store.close()


def test_a_store_is_bound_to_its_assets_and_refuses_a_config_whose_assets_differ(tmp_path):
    from dataclasses import replace
    from exchange.config import AssetSpec, load_config
    config = load_config()
    journal = Journal.for_actor(str(tmp_path), "shard:0", config)
    journal.write([[1, "deposit"]])
    journal.store.close()
    again = Journal.for_actor(str(tmp_path), "shard:0", config)               # the same assets: read
    again.store.close()
    aave = AssetSpec("AAVE", 0, 8)                                             # sorts first: every index moves
    shifted = replace(config, assets={"AAVE": aave, **{n: replace(a, index=a.index + 1)
                                                       for n, a in config.assets.items()}})
    with pytest.raises(FormatError, match="written for the assets BTC,ETH,USDT .* config has AAVE,BTC,ETH,USDT"):
        Journal.for_actor(str(tmp_path), "shard:0", shifted)
    reopened = LmdbStore(tmp_path / "shard-0")                                 # refused, released, untouched
    assert reopened.last_position() == 1
    reopened.close()
