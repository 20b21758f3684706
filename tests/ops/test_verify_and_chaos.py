"""`exchange verify` on real stored state, and a short `exchange chaos` run."""
from __future__ import annotations

import argparse
import hashlib
import json

import orjson
import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring
from actors.client.operator import OperatorClient
from actors.durability.storage import FORMAT_VERSION, HEADER, POSITION, LmdbStore
from ops.cli import main
from ops.chaos import run_chaos
from ops.verify import verify
from tests.actors.conftest import accounts_on_shards, funded


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A data directory with real trading history, the exchange stopped."""
    data = tmp_path_factory.mktemp("data")
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    operator = OperatorClient(bootstrap.create_actors(data_dir=data, keyring=keyring), keyring)
    client = operator.client
    a, b, c = accounts_on_shards(client, 10)
    funded(client, a, b, c)
    for i in range(20):
        client.place_order(a, "BTC-USDT", "sell", "0.01", price=f"{45000 + i}.00")
        client.place_order(b, "BTC-USDT", "buy", "0.02", price=f"{45000 + i}.00")
        if i == 10:
            [operator.snapshot_now(s) for s in client.handles.shards]
    client.place_order(c, "ETH-USDT", "buy", "1.000", price="1000.00")
    bootstrap.destroy_actors(client.handles)
    ray.shutdown()
    return data


def test_verify_with_sound_history_reports_ok(stored):
    report = verify(str(stored))
    assert report["ok"], report["problems"]
    assert report["accounts"] == 3 and report["open_orders"] >= 1
    assert not any(report["imbalance"].values())


def test_verify_with_a_tampered_balance_reports_the_asset_and_the_replay_mismatch(stored, tmp_path):
    tampered = tmp_path / "copy"
    import shutil
    shutil.copytree(stored, tampered)
    store = LmdbStore(tampered / "shard-0")
    position, payload = store.latest_snapshot()
    state = orjson.loads(payload)
    state["shard"]["accounts"][0][2][2] += 7            # 7 micro-USDT out of thin air
    forged = orjson.dumps(state)
    with store.env.begin(write=True, db=store.snaps) as txn:   # a valid checksum: only verify can tell
        txn.put(POSITION.pack(position), HEADER.pack(FORMAT_VERSION, position, hashlib.sha256(forged).digest())
                + forged)
    store.close()
    report = verify(str(tampered))
    assert not report["ok"]
    assert report["imbalance"]["USDT"] == 7
    assert any("USDT off by 7" in p for p in report["problems"])


def _copy(stored, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(stored, copy)
    return copy


def test_verify_with_a_corrupt_snapshot_and_record_reports_each_and_exits_1(stored, tmp_path, capsys):
    damaged = _copy(stored, tmp_path)
    store = LmdbStore(damaged / "shard-0")
    snapshot = store.snapshots()[-1]
    store.corrupt_snapshot_for_test(snapshot)
    record = store.last_position()
    store.corrupt_for_test("record", record, index=-2)
    store.close()
    report = verify(str(damaged))
    assert not report["ok"]
    assert f"{damaged / 'shard-0'}: snapshot {snapshot} fails its checksum" in report["problems"]
    assert f"{damaged / 'shard-0'}: journal record {record} fails its checksum" in report["problems"]
    assert main(["verify", "--data", str(damaged)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "Traceback" not in out and "restore this directory from a backup" in out


def test_verify_with_a_format_1_store_reports_it_without_a_traceback(stored, tmp_path, capsys):
    old = _copy(stored, tmp_path)
    store = LmdbStore(old / "market-BTC-USDT")
    with store.env.begin(write=True) as txn:
        txn.put(b"format", b"1", db=store.meta)
    store.close()
    assert main(["verify", "--data", str(old)]) == 1
    out = capsys.readouterr().out
    assert "market-BTC-USDT: store format 1 predates journal checksums" in out and "Traceback" not in out


def test_verify_without_data_directory_fails_clearly(tmp_path):
    report = verify(str(tmp_path / "missing"))
    assert not report["ok"] and "no data directory" in report["error"]


def test_chaos_with_kills_under_load_loses_nothing_acknowledged(tmp_path):
    args = argparse.Namespace(seed=3, data=str(tmp_path / "data"), address=None, num_cpus=2, config=None,
                              accounts=60, concurrency=3, batch=100, duration=12.0, kill_interval=2.0,
                              no_progress=True, report=str(tmp_path / "chaos.png"))
    result = run_chaos(args)
    print(json.dumps(result))
    assert result["kills"] >= 2
    assert result["acked_orders"] > 1000 and result["acked_margin"] > 50
    assert result["acked_checked"] == result["acked_orders"] + result["acked_margin"]    # all still looked up
    assert result["acked_lost"] == 0 and result["pools_sound"]
    assert result["double_settlements"] == 0
    assert result["conservation_ok"] and not any(result["imbalance"].values())
    assert result["chaos"]["kills"] == result["kills"] and result["p99_ms"] >= result["p50_ms"] > 0
    assert open(result["report"], "rb").read(4) == b"\x89PNG"          # the picture, counters included
    report = verify(args.data)                            # and the stored state agrees
    assert report["ok"], report["problems"]
