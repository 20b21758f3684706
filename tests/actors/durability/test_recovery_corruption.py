"""Corruption run (issue 11, item 3): damage a random byte of a random snapshot or
journal record and check the store either recovers exactly the state it had or
refuses to start with RecoveryError, never with less, and that ``problems()``
(what ``exchange verify`` reports) always sees the damage. No Ray: the store
and ``Journal`` directly, and the real shard actor class constructed in-process.
"""
from __future__ import annotations

import asyncio
import hashlib
import random

import orjson
import pytest

from actors.durability.journal import Journal
from actors.durability.storage import LmdbStore, MemoryStore, RecoveryError

ROUNDS = {"memory": 2000, "lmdb": 400}


class Tally:
    """The reference state machine: a count, a total and a hash chain over every
    deposit in order, so any record lost, doubled or changed shows."""

    def __init__(self):
        self.count, self.total, self.chain = 0, 0, ""

    def apply(self, record: list) -> None:
        self.count += 1
        self.total += record[1]
        self.chain = hashlib.sha256(self.chain.encode() + orjson.dumps(record)).hexdigest()

    def state(self) -> dict:
        return {"count": self.count, "total": self.total, "chain": self.chain}

    def restore(self, state: dict) -> None:
        self.count, self.total, self.chain = state["count"], state["total"], state["chain"]

    def fingerprint(self) -> tuple:
        return self.count, self.total, self.chain


def _make_store(kind: str, tmp_path, seed: int, keep: int):
    return MemoryStore(keep) if kind == "memory" else LmdbStore(tmp_path / f"s{seed}", "async", keep)


def _history(rng: random.Random, journal: Journal) -> Tally:
    """Random deposits journaled in batches, with snapshots now and then."""
    tally = Tally()
    for _ in range(rng.randint(3, 30)):
        records = [["deposit", rng.randrange(1, 10**9)] for _ in range(rng.randint(1, 3))]
        journal.write(records)
        for record in records:
            tally.apply(record)
        if rng.random() < 0.3:
            journal.snapshot(tally.state()).result()
    return tally


def _damage(rng: random.Random, store) -> tuple[str, int]:
    """Change one byte of one stored snapshot or record, picked uniformly; return which."""
    items = [("snapshot", p) for p in store.snapshots()] + [("record", p) for p, _ in store._records(0)]
    kind, position = rng.choice(items)
    value = store._raw(kind, position)
    store.corrupt_for_test(kind, position, rng.randrange(len(value)), rng.randrange(1, 256))
    return kind, position


def _recover(store) -> tuple | None:
    tally = Tally()
    try:
        Journal(store).recover(tally.restore, tally.apply)
    except RecoveryError:
        return None
    return tally.fingerprint()


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_store_with_one_damaged_byte_recovers_exactly_or_refuses_never_less(kind, tmp_path):
    outcomes = {"recovered": 0, "refused": 0}
    for seed in range(ROUNDS[kind]):
        rng = random.Random(seed)
        store = _make_store(kind, tmp_path, seed, rng.choice([2, 3]))
        try:
            expected = _history(rng, Journal(store, snapshot_every=10**9)).fingerprint()
            newest = (store.latest_snapshot() or (0, None))[0]
            damaged, position = _damage(rng, store)
            context = f"seed {seed} ({kind}): damaged {damaged} {position}, newest snapshot {newest}"
            assert store.problems(), f"{context}: the damage went unreported"
            got = _recover(store)                          # a refusal closes the store
            assert got is None or got == expected, f"{context}: recovered {got}, had {expected}"
            needed = damaged == "record" and position > newest
            assert (got is None) == needed, f"{context}: {'refused' if got is None else 'recovered'}"
            outcomes["refused" if got is None else "recovered"] += 1
        except Exception as exc:
            exc.add_note(f"replay with seed {seed}, store {kind}")
            raise
        finally:
            store.close()
    assert min(outcomes.values()) > ROUNDS[kind] // 10, outcomes


# ---- the old symptom, on the real shard actor ------------------------------------------

@pytest.fixture
def shard_dir(tmp_path):
    """A shard actor's directory with accounts and deposits, one snapshot and a journal
    tail after it; yields (data dir, the shard's state hash, its accounts)."""
    from exchange.messages.records import Deposit, OpenAccount
    from exchange.core.routing import shard_for
    actor = _shard(tmp_path)
    accounts = [a for a in range(1, 200) if shard_for(a, actor.config.shards) == 0][:3]
    _run(actor, [OpenAccount(f"open-{a}", 0, a) for a in accounts])
    _run(actor, [Deposit(f"dep-{a}", 0, a, "USDT", 1_234_567) for a in accounts])
    actor.journal.snapshot(actor._state()).result()
    _run(actor, [Deposit(f"more-{a}", 0, a, "USDT", 7_654_321) for a in accounts])
    expected = actor.state_hash()
    actor.journal.store.close()
    return tmp_path, expected, accounts


def _shard(data_dir):
    from actors.shard_actor import AccountShardActor
    return AccountShardActor(None, 0, str(data_dir))


def _run(actor, commands: list) -> list:
    return asyncio.run(actor._execute(commands))


def _store(data_dir) -> LmdbStore:
    return LmdbStore(data_dir / "shard-0")


def test_shard_with_its_only_snapshot_corrupt_recovers_exactly_from_the_kept_journal(shard_dir):
    data_dir, expected, accounts = shard_dir
    store = _store(data_dir)
    (only,) = store.snapshots()
    store.corrupt_snapshot_for_test(only)
    store.close()
    actor = _shard(data_dir)
    assert actor.recovery["snapshot"] is None and actor.recovery["replayed"] == store.last_position()
    assert actor.state_hash() == expected and len(actor.shard.ledger.accounts) == len(accounts)
    actor.journal.store.close()


def test_shard_with_its_only_snapshot_corrupt_and_the_journal_before_it_gone_refuses(shard_dir):
    data_dir, _, _ = shard_dir
    store = _store(data_dir)
    (only,) = store.snapshots()
    store._delete_through(only)                              # what the old compaction had done
    store.corrupt_snapshot_for_test(only)
    store.close()
    with pytest.raises(RecoveryError, match=r"shard-0: cannot recover: .*snapshot \d+ fails its checksum"
                                            r".*restore this directory from a backup"):
        _shard(data_dir)


def test_shard_with_a_changed_digit_in_a_journaled_deposit_refuses_and_verify_fails(shard_dir, capsys):
    from ops.cli import main
    data_dir, _, _ = shard_dir
    store = _store(data_dir)
    position, value = next((p, v) for p, v in store._records(store.snapshots()[-1]) if b"7654321" in v)
    store.corrupt_for_test("record", position, value.index(b"7654321"), ord("7") ^ ord("8"))   # 7654321 -> 8654321
    store.close()
    with pytest.raises(RecoveryError, match=f"journal record {position} fails its checksum"):
        _shard(data_dir)
    assert main(["verify", "--data", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert f"shard-0: journal record {position} fails its checksum" in out and "Traceback" not in out
