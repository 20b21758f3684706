"""Adding shards to a running exchange (issue 17, ``actors/growth.py``): the operator raises
the shard count and records the old one below an account bound; the new shard starts,
every other actor restarts in turn, the accounts already open stay where they are (their
resting orders too), a new account lands on the new shard and trades with the old ones,
and conservation holds. A change that would move an account, or changes more than the
shards, is refused with its reason and moves nothing."""
from __future__ import annotations

import pytest
import ray

from actors import health
from exchange.core.routing import shard_for
from tests.actors.conftest import accounts_on_shards, exchange_from_a_file, funded, settle

GROWN = '[exchange]\nshards = 3\nearlier_shards = [{ shards = 2, below_account = 1000000 }]\n'


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with exchange_from_a_file(tmp_path_factory.mktemp("growth")) as running:
        yield running


def test_a_change_that_would_move_an_account_or_more_than_the_shards_is_refused(running):
    operator, config_path, data = running
    client = operator.client
    funded(client, 2_000_000)                                           # open: above the bound below
    for text, says in (('[exchange]\nshards = 2\n', "more than the 2 running"),
                       ('[exchange]\nshards = 3\n', "earlier_shards must keep the running ones"),
                       (GROWN + 'dedup_window = 5000\n', "changes more than the shards"),
                       (GROWN, "account 2000000 is open and not below below_account = 1000000")):
        config_path.write_text('extends = "default"\n' + text)
        with pytest.raises(ValueError, match=says):
            operator.add_shards(str(config_path), str(data))
    assert len(operator.handles.shards) == 2 and health.status(operator.config)["ok"]
    config_path.write_text('extends = "default"\n')


def test_a_shard_added_takes_new_accounts_and_the_old_ones_stay_with_their_orders(running):
    operator, config_path, data = running
    client = operator.client
    config_path.write_text('extends = "default"\n' + GROWN.replace("1000000", "3000000"))
    a, b, _ = accounts_on_shards(client, 9_500)
    funded(client, a, b)
    resting = client.place_order(a, "BTC-USDT", "sell", "1", price="50000")
    assert resting.status == "open"
    done = operator.add_shards(str(config_path), str(data))
    assert done["added"] == ["shard:2"] and done["strays"] == {} and len(client.handles.shards) == 3
    assert {"shard:0", "shard:1", "market:BTC-USDT", "liquidator", "index", "otc"} <= set(done["restarted"])
    assert health.status(operator.config)["ok"]
    routing = operator.config.routing
    assert [shard_for(x, routing) for x in (a, b, 2_000_000)] == [shard_for(x, 2) for x in (a, b, 2_000_000)]
    c = next(x for x in range(3_000_000, 3_001_000) if shard_for(x, routing) == 2)
    funded(client, c)
    assert ray.get(client.handles.shards[2].stats.remote())["accounts"] == 1        # the new shard holds it
    taken = client.place_order(c, "BTC-USDT", "buy", "1", price="50000")            # from a's order, made before
    assert sum(f.quantity for f in taken.fills) == 10**8
    assert client.place_order(b, "ETH-USDT", "sell", "2", price="3000").status == "open"
    assert sum(f.quantity for f in client.place_order(c, "ETH-USDT", "buy", "2", price="3000").fills) > 0
    assert client.deposit(2_000_000, "USDT", "5").ok                                # the one above the old bound
    audit = settle(client)
    assert audit["consistent"] and audit["ok"], audit


def test_a_new_shard_may_be_pinned_to_a_new_slot_but_no_running_actor_may_move(tmp_path):
    from actors.growth import check
    from exchange.config import load_config
    running = tmp_path / "running.toml"
    running.write_text('extends = "default"\n[placement]\nnodes = ["a", "b"]\n')
    grown = tmp_path / "grown.toml"
    grown.write_text('extends = "default"\n' + GROWN + '[placement]\nnodes = ["a", "b", "c"]\n'
                     '[placement.pin]\n"shard:2" = "c"\n')
    with pytest.raises(ValueError, match="would move market:BTC-USDT, market:BTC-USDT-PERP, market:ETH-USDT"):
        check(load_config(running), load_config(grown), 10)               # a third slot moves the markets
    grown.write_text('extends = "default"\n' + GROWN + '[placement]\nnodes = ["a", "b", "c"]\n'
                     '[placement.pin]\n"shard:2" = "c"\n"market:BTC-USDT" = "a"\n"market:ETH-USDT" = "b"\n'
                     '"market:BTC-USDT-PERP" = "a"\n')
    check(load_config(running), load_config(grown), 10)                   # pinned where they are: accepted
    same_slots = tmp_path / "same.toml"
    same_slots.write_text('extends = "default"\n' + GROWN + '[placement]\nnodes = ["a", "b"]\n')
    check(load_config(running), load_config(same_slots), 10)              # shard:2 takes slot a; nothing moves
