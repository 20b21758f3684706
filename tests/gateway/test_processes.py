"""``exchange gateway --processes 2`` against the running exchange: two gateway processes
share one port and one durable key store; a key made with ``exchange keys create`` trades
through both, a listen key made on one streams from either, and ``exchange keys revoke``
refuses the key at once in both. Real processes, real
HTTP, the real Ray cluster of the package's venue."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest
import ray
import requests

from tests.gateway.conftest import Trader

ACCOUNT = 31_301


def exchange(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ops.cli", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def streams_open(url: str, listen_key: str, count: int) -> int:
    """How many of ``count`` new WebSocket connections to ``/ws/<listen_key>`` stay open."""
    opened = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.ws_connect(f"{url.replace('http', 'ws')}/ws/{listen_key}") as ws:
                try:
                    message = await ws.receive(timeout=0.5)
                except asyncio.TimeoutError:            # nothing to say: open and waiting, as it should be
                    opened += 1
                    continue
                opened += message.type is aiohttp.WSMsgType.TEXT and "listenKey" not in message.data
    return opened


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gateways(venue, tmp_path_factory):
    keys = str(tmp_path_factory.mktemp("keys"))
    port = free_port()
    gcs_port = ray.get_runtime_context().gcs_address.rpartition(":")[2]      # (the cluster binds loopback only)
    parent = subprocess.Popen([sys.executable, "-m", "ops.cli", "gateway", "--address",
                               f"127.0.0.1:{gcs_port}", "--listen", f"127.0.0.1:{port}",
                               "--processes", "2", "--keys", keys], stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/v3/ping", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.5)
    else:
        parent.kill()
        pytest.fail("the gateway processes did not start")
    time.sleep(3)                                       # (the second process may still be connecting)
    yield url, keys, parent
    if parent.poll() is None:
        parent.send_signal(signal.SIGINT)
        parent.wait(30)


def test_two_processes_share_the_port_and_the_keys_and_a_revocation_holds_in_both(venue, gateways):
    client, _, _ = venue
    url, keys, parent = gateways
    assert client.open_account(ACCOUNT).ok and client.deposit(ACCOUNT, "USDT", "100000").ok
    made = json.loads(exchange("keys", "create", "--keys", keys, "--account", str(ACCOUNT), "--json"))
    trader = Trader(url, made["apiKey"], made["secretKey"])
    used = []
    for _ in range(30):                                  # new connections: the kernel spreads them
        answer = trader.signed("GET", "/api/v3/account")
        assert answer.status_code == 200, answer.text
        used.append(int(answer.headers["X-MBX-USED-WEIGHT-1M"]))
    assert max(used) < 20 * 30                           # each process counts only its own share
    placed = trader.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                           quantity="0.1", price="30000.00")
    assert placed.status_code == 200 and client.get_order(ACCOUNT, placed.json()["orderId"])["status"] == "open"
    listen = requests.post(f"{url}/api/v3/userDataStream", headers={"X-MBX-APIKEY": trader.key}, timeout=10)
    assert asyncio.run(streams_open(url, listen.json()["listenKey"], 8)) == 8      # whichever process takes it
    listed = json.loads(exchange("keys", "list", "--keys", keys, "--json"))["keys"]
    assert [(k["apiKey"], k["revoked"]) for k in listed] == [(made["apiKey"], False)] and "secretKey" not in listed[0]

    exchange("keys", "revoke", "--keys", keys, made["apiKey"])
    for _ in range(10):
        refused = trader.signed("GET", "/api/v3/account")
        assert refused.status_code == 401 and refused.json()["code"] == -2015
    parent.send_signal(signal.SIGINT)
    assert parent.wait(30) == 0
