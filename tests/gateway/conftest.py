"""A real exchange on Ray and a gateway serving it on loopback, from a thread of its own
(its event loop awaits the actors as any driver's would); tests speak HTTP to it."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import ray
import requests

from actors.client.exchange_client import ExchangeClient
from gateway.auth import hmac_query
from gateway.keys import KeyStore
from gateway.server import Gateway, serve


class Served:
    """The gateway on a port of its own, in a background thread."""

    def __init__(self, gateway: Gateway, **options):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.runner, self.port = self.loop.run_until_complete(serve(gateway, **options))
            ready.set()
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(30)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Trader:
    """A bot's side of it: an API key and its secret, signing every request as Binance's do."""

    def __init__(self, url: str, key: str, secret: str):
        self.url, self.key, self.secret = url, key, secret

    def query(self, **params) -> str:
        """``params`` with a timestamp (now, unless given), signed."""
        params.setdefault("timestamp", int(time.time() * 1000))
        return hmac_query(self.secret, params)

    def signed(self, method: str, path: str, **params) -> requests.Response:
        return requests.request(method, f"{self.url}{path}?{self.query(**params)}",
                                headers={"X-MBX-APIKEY": self.key}, timeout=30)


def eventually(probe, timeout_s: float = 30.0):
    """``probe()`` once it is truthy (polled every 0.2 s), or its last answer after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


@pytest.fixture(scope="package")
def venue():
    """The exchange with its feeds on, as ``exchange up`` runs it: index prices (so margin
    levels, perpetual marks, OTC quotes and the rulebook's price bands work) and the pools'
    clock."""
    client = ExchangeClient.start(num_cpus=2)
    client.start_feeds()
    deadline = time.monotonic() + 30
    while not ray.get(client.handles.index.index_prices.remote()).get("BTC"):
        assert time.monotonic() < deadline, "the index published no BTC price"
        time.sleep(0.2)
    keys = KeyStore()
    served = Served(Gateway(client, keys))
    yield client, keys, served
    served.stop()
    client.shutdown()


@pytest.fixture(scope="package")
def traders(venue):
    """Two funded accounts, each with a read+trade HMAC key."""
    client, keys, served = venue
    out = []
    for account in (31_001, 31_002):
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "1000000"), ("BTC", "100"), ("ETH", "1000")):
            assert client.deposit(account, asset, amount).ok
        key, secret = keys.create(account, ["read", "trade"])
        out.append(Trader(served.url, key, secret))
    return out
