"""The exchange spread over several Ray nodes (issue 17): a ``ray.cluster_utils.Cluster``
of two raylets on this machine, each offering one node slot (``actors/placement.py``).
Actors land on their slots; trading across both nodes conserves every asset; when
node b is removed its actors wait (``exchange status`` names them) and nothing else
stops; when a node offering slot b joins again they recover from their data, with
nothing acknowledged lost."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from actors import bootstrap, health, placement
from actors.capability import Keyring
from actors.client.operator import OperatorClient
from exchange.config import load_config
from exchange.core.routing import shard_for
from tests.actors.conftest import eventually, funded, settle

SLOTS = ("a", "b")
EXCHANGE = Path(sys.executable).parent / "exchange"


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    config_path = tmp_path_factory.mktemp("config") / "two-nodes.toml"
    config_path.write_text('extends = "default"\n[placement]\nnodes = ["a", "b"]\n')
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {placement.resource("a"): 1}})
    node_b = cluster.add_node(num_cpus=1, resources={placement.resource("b"): 1})
    ray.init(address=cluster.address, namespace=bootstrap.NAMESPACE, logging_level="WARNING")
    keyring = Keyring.mint()
    exchange = OperatorClient(bootstrap.create_actors(config_path, data_dir=tmp_path_factory.mktemp("data"),
                                                      keyring=keyring), keyring)
    yield exchange, cluster, node_b, load_config(str(config_path)), config_path
    bootstrap.destroy_actors(exchange.handles)
    ray.shutdown()
    cluster.shutdown()


def accounts(config, start: int) -> tuple[int, int]:
    """An account on shard 0 (slot a) and one on shard 1 (slot b)."""
    a = next(x for x in range(start, start + 1000) if shard_for(x, config.shards) == 0)
    b = next(x for x in range(start, start + 1000) if shard_for(x, config.shards) == 1)
    return a, b


def test_each_actor_runs_on_its_node_slot(spread):
    _, _, _, config, _ = spread
    report = eventually(lambda: (r := health.status(config))["ok"] and r, 60)
    assert report, health.describe(health.status(config))
    plan = placement.plan(config)
    assert {plan["shard:0"], plan["shard:1"]} == set(SLOTS) and plan["market:ETH-USDT"] == "b"
    for name, actor in report["actors"].items():
        assert actor["node"] == report["slots"][plan[name]], (name, actor)


def test_trading_across_both_nodes_conserves_every_asset(spread):
    exchange, _, _, config, _ = spread
    client = exchange.client
    a, b = accounts(config, 8_100)
    funded(client, a, b)
    for market, price in (("BTC-USDT", "50000"), ("ETH-USDT", "3000")):     # a market on each node
        assert client.place_order(a, market, "sell", "1", price=price).ok
        assert client.place_order(b, market, "buy", "1", price=price).fills
    audit = settle(client)
    assert audit["consistent"] and audit["ok"], audit


def test_a_lost_node_s_actors_wait_for_their_slot_and_come_back_with_everything_acknowledged(spread):
    exchange, cluster, node_b, config, config_path = spread
    client = exchange.client
    a, b = accounts(config, 8_300)
    funded(client, a, b)
    resting = client.place_order(b, "BTC-USDT", "buy", "2", price="49000")          # acknowledged on shard 1
    assert resting.ok and resting.status == "open"
    before = client.balances(b)
    old_node = health.status(config)["actors"]["shard:1"]["node"]
    cluster.remove_node(node_b)
    report = eventually(lambda: (r := health.status(config))["down"] and r, 60)
    assert {"shard:1", "market:ETH-USDT"} <= set(report["down"])
    assert all(report["actors"][n]["state"] == "waiting" for n in ("shard:1", "market:ETH-USDT"))
    assert all(report["actors"][n]["state"] == "up" for n in ("shard:0", "market:BTC-USDT", "otc"))
    assert "DOWN: " in health.describe(report) and "slot b" in health.describe(report)
    shown = subprocess.run([str(EXCHANGE), "status", "--address", cluster.address, "--config", str(config_path),
                            "--json"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 1, shown.stderr[-2000:]                        # the operator's view says so too
    assert {"shard:1", "market:ETH-USDT"} <= set(json.loads(shown.stdout.strip().splitlines()[-1])["down"])
    assert client.place_order(a, "BTC-USDT", "sell", "1", price="51000").ok        # slot a goes on trading
    cluster.add_node(num_cpus=1, resources={placement.resource("b"): 1})          # the slot's node is back
    assert eventually(lambda: health.status(config)["ok"], 120), health.describe(health.status(config))
    back = health.status(config)["actors"]["shard:1"]
    assert back["node"] != old_node and back["restarts"] >= 1            # a new process on the new node
    assert eventually(lambda: _balances(client, b) == before, 60)                  # its data came back with it
    assert client.get_order(b, resting.order_id)["status"] == "open"
    fill = client.place_order(a, "BTC-USDT", "sell", "2", price="49000")           # the resting bid still trades
    assert fill.ok and sum(f.quantity for f in fill.fills) == 2 * 10**8
    audit = settle(client)
    assert audit["consistent"] and audit["ok"], audit


def _balances(client, account: int):
    try:
        return client.balances(account)
    except ray.exceptions.RayError:       # the shard still restarting
        time.sleep(0.2)
        return None
