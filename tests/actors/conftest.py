"""Real Ray for actor tests: one local cluster per test module (num_cpus=2),
a fresh set of exchange actors per test module, torn down afterwards.
``operator`` holds the actors' keyring (privileged calls); ``client`` is its
plain client."""
from __future__ import annotations

import contextlib
import time

import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring
from actors.client.exchange_client import ExchangeClient
from actors.client.operator import OperatorClient
from exchange.core.routing import shard_for


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    exchange = OperatorClient(bootstrap.create_actors(data_dir=tmp_path_factory.mktemp("data"), keyring=keyring),
                              keyring)
    yield exchange
    bootstrap.destroy_actors(exchange.handles)
    ray.shutdown()


@pytest.fixture(scope="module")
def client(operator) -> ExchangeClient:
    return operator.client


@contextlib.contextmanager
def exchange_from_a_file(folder):
    """An exchange whose actors run from a config file of their own (``extends = "default"``)
    with data under ``folder``, for tests that change the file while it runs (listing a
    market, adding shards): ``(operator, config path, data dir)``."""
    config_path = folder / "exchange.toml"
    config_path.write_text('extends = "default"\n')
    data = folder / "data"
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    operator = OperatorClient(bootstrap.create_actors(config_path, data_dir=data, keyring=keyring), keyring)
    try:
        yield operator, config_path, data
    finally:
        bootstrap.destroy_actors(operator.handles)
        ray.shutdown()


def accounts_on_shards(client: ExchangeClient, start: int) -> tuple[int, int, int]:
    """Two accounts on different shards and a third on the first one's shard."""
    shards = client.config.shards
    a = start
    b = next(x for x in range(a + 1, a + 1000) if shard_for(x, shards) != shard_for(a, shards))
    c = next(x for x in range(b + 1, b + 1000) if shard_for(x, shards) == shard_for(a, shards))
    return a, b, c


def funded(client: ExchangeClient, *accounts: int, usdt: str = "1000000", btc: str = "100", eth: str = "1000"):
    for account in accounts:
        assert client.open_account(account).ok
        assert client.deposit(account, "USDT", usdt).ok
        assert client.deposit(account, "BTC", btc).ok
        assert client.deposit(account, "ETH", eth).ok


def settle(client: ExchangeClient) -> dict:
    """The conservation audit once it reads a consistent cut: every push applied, no cover in
    flight (a maker on another shard settles from its push, which may land after the taker's
    answer). Waits up to 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        audit = client.audit()
        if audit["consistent"]:
            return audit
        time.sleep(0.1)
    return audit


def eventually(probe, timeout_s: float = 15.0):
    """``probe()`` once it is truthy (polled every 0.1 s), or its last answer after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    return probe()


def wait_until(probe, timeout_s: float = 20.0):
    """``eventually``, failing the test when ``probe`` never turns truthy."""
    found = eventually(probe, timeout_s)
    if not found:
        raise AssertionError("condition not reached")
    return found
