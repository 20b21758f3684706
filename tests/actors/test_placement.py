"""Where each actor runs (``actors/placement.py``), from the config alone: round the node
slots for shards and markets, the rest on the first slot, pins override, bad tables
refused naming the key; no ``[placement]``: anywhere."""
from __future__ import annotations

import pytest

from actors import placement
from exchange.config import ConfigError
from tests.exchange.support import custom_config


def config_with(**table):
    return custom_config(lambda raw: raw.update(placement=table))


def test_without_a_placement_table_every_actor_goes_anywhere():
    plan = placement.plan(custom_config(lambda raw: None))
    assert set(plan.values()) == {None} and "shard:0" in plan and "otc" in plan
    assert placement.options(custom_config(lambda raw: None), "shard:0") == {}


def test_shards_and_markets_go_round_the_slots_and_the_rest_on_the_first():
    config = config_with(nodes=["a", "b", "c"])
    plan = placement.plan(config)
    assert [plan[f"shard:{i}"] for i in range(config.shards)] == ["a", "b"]
    assert [plan[n] for n in ("market:BTC-USDT", "market:ETH-USDT", "market:BTC-USDT-PERP")] == ["c", "a", "b"]
    assert {plan[n] for n in ("lending", "liquidator", "index", "otc", "admin")} == {"a"}
    assert placement.options(config, "shard:1") == {"resources": {"exchange-node-b": placement.SLIVER}}


def test_a_pin_puts_an_actor_on_its_slot():
    plan = placement.plan(config_with(nodes=["a", "b"], pin={"otc": "b", "market:BTC-USDT": "a"}))
    assert (plan["otc"], plan["market:BTC-USDT"]) == ("b", "a")


@pytest.mark.parametrize("table, key", [(dict(nodes="a"), "placement.nodes"), (dict(nodes=["a", "a"]), "placement.nodes"),
                                        (dict(nodes=["a b"]), "placement.nodes"),
                                        (dict(nodes=["a"], pin={"otc": "z"}), "placement.pin.otc")])
def test_a_bad_placement_is_refused_naming_its_key(table, key):
    with pytest.raises(ConfigError, match=key):
        placement.plan(config_with(**table))
