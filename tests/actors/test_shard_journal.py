"""The shard actor's command path against its real LMDB journal, without Ray
(issue 11): nothing is acknowledged that the journal cannot hold, the client
never chooses the time, a full store refuses with STORAGE_FULL while reads
work, and a restart brings back exactly what was acknowledged."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from actors.shard_actor import AccountShardActor
from exchange.messages.records import BalanceChanged, Deposit, OpenAccount, OrderRejected, Withdraw
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for

ROOT = Path(__file__).resolve().parents[2]


def _shard(data_dir, config_path=None) -> AccountShardActor:
    return AccountShardActor(config_path, 0, str(data_dir))


def _run(actor, commands: list) -> list:
    return asyncio.run(actor._execute(commands))


def _mine(actor, count: int) -> list[int]:
    return [a for a in range(1, 1000) if shard_for(a, actor.config.shards) == 0][:count]


def _close(actor) -> None:
    actor.journal.store.close()


def _reopen(actor, data_dir, config_path=None) -> AccountShardActor:
    _close(actor)
    return _shard(data_dir, config_path)


def test_unencodable_request_ids_are_refused_and_everything_acknowledged_survives_a_restart(tmp_path):
    actor = _shard(tmp_path)
    alice, bob = _mine(actor, 2)
    _run(actor, [OpenAccount("o-a", 0, alice), OpenAccount("o-b", 0, bob)])
    hostile = [Deposit(2 ** 64, 0, alice, "USDT", 100), Deposit("lone-\ud800", 0, alice, "USDT", 100),
               Deposit("ok-1", 0, alice, "USDT", 1_000), Withdraw("w-1", 0, alice, "USDT", 300),
               Deposit("ok-2", 0, bob, "BTC", 5)]
    answers = _run(actor, hostile)
    assert [a[0].reason for a in answers[:2]] == [Reason.INVALID_REQUEST_ID] * 2
    assert all(type(a[0]) is BalanceChanged for a in answers[2:])
    expected = actor.state_hash(), actor.balances(alice), actor.balances(bob)
    actor = _reopen(actor, tmp_path)
    assert (actor.state_hash(), actor.balances(alice), actor.balances(bob)) == expected
    assert actor.balances(alice)["USDT"] == (700, 0)
    assert _run(actor, [Withdraw("w-1", 0, alice, "USDT", 300)]) == [answers[3]]      # a retry, not a second one
    assert actor.balances(alice)["USDT"] == (700, 0)
    _close(actor)


def test_client_timestamps_are_ignored_and_the_shard_stamps_monotonic_time(tmp_path):
    actor = _shard(tmp_path)
    (alice,) = _mine(actor, 1)
    before = time.time_ns()
    _run(actor, [OpenAccount("o", 2 ** 63 - 1, alice), Deposit("d1", 2 ** 63 - 1, alice, "USDT", 5),
                 Deposit("d2", 1, alice, "USDT", 5)])
    stamps = []
    for _, payload in actor.journal.store.read_after(0):
        for inner in orjson.loads(payload)[1]:
            stamps.append(inner[1][2])                       # ["x", [code, request_id, ts_ns, ...], ref]
    assert len(stamps) == 3 and stamps == sorted(set(stamps))
    assert before <= stamps[0] and stamps[-1] <= time.time_ns()
    _close(actor)


def test_a_request_id_reused_with_another_body_is_refused_on_the_actor_too(tmp_path):
    actor = _shard(tmp_path)
    (alice,) = _mine(actor, 1)
    _run(actor, [OpenAccount("o", 0, alice)])
    first = _run(actor, [Deposit("d", 0, alice, "USDT", 100)])
    again, reused = _run(actor, [Deposit("d", 0, alice, "USDT", 100), Deposit("d", 0, alice, "USDT", 999)])
    assert again == first[0]
    assert reused == [OrderRejected("d", alice, Reason.REQUEST_ID_REUSED)]
    assert actor.balances(alice)["USDT"] == (100, 0)
    _close(actor)


def test_a_shard_refuses_accounts_routed_elsewhere(tmp_path):
    actor = _shard(tmp_path)
    other = next(a for a in range(1, 1000) if shard_for(a, actor.config.shards) != 0)
    assert _run(actor, [OpenAccount("o", 0, other)]) == [[OrderRejected("o", other, Reason.WRONG_SHARD)]]
    assert actor.balances(other) is None
    _close(actor)


@pytest.fixture
def tiny_config(tmp_path) -> str:
    text = (ROOT / "config" / "default.toml").read_text()
    path = tmp_path / "tiny.toml"
    path.write_text(text.replace("map_size_mb = 16384", "map_size_mb = 2"))
    return str(path)


def test_a_full_store_refuses_new_commands_with_storage_full_while_reads_work(tmp_path, tiny_config):
    data = tmp_path / "data"
    actor = _shard(data, tiny_config)
    (alice,) = _mine(actor, 1)
    _run(actor, [OpenAccount("o", 0, alice)])
    credited, refused = 0, None
    for batch in range(2_000):
        answers = _run(actor, [Deposit(f"d-{batch}-{i}-" + "x" * 40, 0, alice, "USDT", 1) for i in range(50)])
        credited += sum(type(a[0]) is BalanceChanged for a in answers)
        refused = next((a[0] for a in answers if type(a[0]) is OrderRejected), None)
        if refused is not None:
            break
    assert refused is not None and refused.reason == Reason.STORAGE_FULL, "the 2 MiB store never filled"
    assert actor.journal.full
    assert actor.balances(alice)["USDT"] == (credited, 0)               # state stays readable
    assert _run(actor, [Deposit("after", 0, alice, "USDT", 1)])[0][0].reason == Reason.STORAGE_FULL
    assert actor.balances(alice)["USDT"] == (credited, 0)               # and the refusal changed nothing
    actor = _reopen(actor, data, tiny_config)
    assert actor.balances(alice)["USDT"] == (credited, 0)               # everything acknowledged survived
    _close(actor)
