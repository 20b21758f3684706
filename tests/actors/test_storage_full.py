"""A full store under Ray (issue 11, item 11), shown: with a 2 MiB LMDB map a
shard fills up under deposits; it then refuses new commands with
STORAGE_FULL and changes nothing, every balance stays readable, the storage
gauges on the real scrape endpoint say so (``ExchangeStorageFull`` fires on
``exchange_storage_full == 1``), and after a restart everything acknowledged
is still there."""
from __future__ import annotations

import time
import urllib.request

import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring
from actors.client.operator import OperatorClient
from exchange.config import DEFAULT_CONFIG_PATH
from exchange.messages.records import Deposit
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from tests.actors.test_durability import wait_for_restart


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    config = root / "tiny.toml"
    text = DEFAULT_CONFIG_PATH.read_text()
    assert "map_size_mb = 16384" in text
    config.write_text(text.replace("map_size_mb = 16384", "map_size_mb = 2"))
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    exchange = OperatorClient(bootstrap.create_actors(config, data_dir=root / "data", metrics_port=0,
                                                      keyring=keyring), keyring)
    yield exchange
    bootstrap.destroy_actors(exchange.handles)
    ray.shutdown()


def scrape(operator) -> str:
    host, port = ray.get(operator.handles.metrics.address.remote())
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def gauge(text: str, name: str, actor: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f'{name}{{') and f'actor="{actor}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_full_shard_refuses_with_storage_full_stays_readable_and_alerts(operator):
    client = operator.client
    account = next(a for a in range(1, 1000) if shard_for(a, client.config.shards) == 0)
    assert client.open_account(account).ok
    credited, refused = 0, None
    for batch in range(400):
        commands = [Deposit(f"fill:{batch}:{i}:" + "x" * 40, 0, account, "USDT", 1) for i in range(200)]
        answers = client.execute(commands)
        credited += sum(type(a[0]).__name__ == "BalanceChanged" for a in answers)
        refused = next((a[0] for a in answers if type(a[0]).__name__ == "OrderRejected"), None)
        if refused is not None:
            break
    assert refused is not None and refused.reason == Reason.STORAGE_FULL, "the 2 MiB store never filled"
    assert client.deposit(account, "USDT", 1).reason is Reason.STORAGE_FULL
    assert client.balances(account)["USDT"] == (credited, 0)          # readable, and nothing half-applied
    other = next(a for a in range(1, 1000) if shard_for(a, client.config.shards) == 1)
    assert client.open_account(other).ok                              # the other shard still has room

    deadline = time.monotonic() + 30                                   # actors push samples once a second
    while (gauge(text := scrape(operator), "exchange_storage_full", "shard:0"),
           gauge(text, "exchange_storage_full", "shard:1")) != (1.0, 0.0):
        assert time.monotonic() < deadline, "exchange_storage_full never read 1 for shard:0 and 0 for shard:1"
        time.sleep(0.5)
    assert gauge(text, "exchange_storage_used_ratio", "shard:0") >= 0.45   # full = used + 1 MiB reserve of 2 MiB

    shard = client.handles.shards[0]
    started = ray.get(shard.stats.remote())["started_ns"]
    ray.kill(shard, no_restart=False)
    wait_for_restart(shard, started)
    assert client.balances(account)["USDT"] == (credited, 0)          # everything acknowledged survived
    assert client.deposit(account, "USDT", 1).reason is Reason.STORAGE_FULL
