"""Listing a spot market on a running exchange (issue 17, ``actors/listing.py``): the
operator adds ETH-BTC to the config file and lists it; it trades at once, the markets
already listed keep their books, conservation holds, and a change the running state
cannot take (a new asset, a changed grid, a market listed twice) is refused with its
reason and moves nothing."""
from __future__ import annotations

import pytest

from actors import health
from tests.actors.conftest import accounts_on_shards, exchange_from_a_file, funded, settle

ETH_BTC = '''
[markets.ETH-BTC]
base = "ETH"
quote = "BTC"
tick_size = "0.00001"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "5000"
max_slippage_bps = 500
'''


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with exchange_from_a_file(tmp_path_factory.mktemp("listing")) as running:
        yield running


def test_a_change_the_running_state_cannot_take_is_refused_and_moves_nothing(running):
    operator, config_path, data = running
    original = config_path.read_text()
    for extra, says in (("", "not a spot market of the config file"),
                        ('[assets.ZEC]\nscale = 8\n' + ETH_BTC, "new asset"),
                        ('[markets.BTC-USDT]\ntick_size = "0.1"\n' + ETH_BTC, "changes markets already listed: BTC-USDT"),
                        ("[exchange]\nshards = 3\n" + ETH_BTC, "shard count")):
        config_path.write_text(original + extra)
        with pytest.raises(ValueError, match=says):
            operator.list_market(str(config_path), "ETH-BTC", str(data))
    config_path.write_text(original)
    assert "ETH-BTC" not in operator.handles.markets and health.status(operator.config)["ok"]
    with pytest.raises(ValueError, match="listed already"):
        operator.list_market(str(config_path), "BTC-USDT", str(data))


def test_a_market_listed_on_the_running_exchange_trades_and_the_others_keep_their_books(running):
    operator, config_path, data = running
    client = operator.client
    a, b, _ = accounts_on_shards(client, 9_400)
    funded(client, a, b)
    resting = client.place_order(a, "BTC-USDT", "buy", "1", price="40000")
    assert resting.status == "open"
    config_path.write_text(config_path.read_text() + ETH_BTC)
    operator.list_market(str(config_path), "ETH-BTC", str(data))
    assert "ETH-BTC" in client.handles.markets and health.status(operator.config)["ok"]
    assert client.place_order(a, "ETH-BTC", "sell", "2", price="0.06").status == "open"     # every shard knows it
    taken = client.place_order(b, "ETH-BTC", "buy", "2", price="0.06")
    assert sum(f.quantity for f in taken.fills) == 2 * 10**8
    assert client.get_order(a, resting.order_id)["status"] == "open"                       # the old book is there
    audit = settle(client)
    assert audit["consistent"] and audit["ok"], audit


def test_a_listing_that_would_move_a_running_actor_off_its_node_slot_is_refused(tmp_path):
    from actors.listing import check
    from exchange.config import load_config
    running = tmp_path / "running.toml"
    running.write_text('extends = "default"\n[placement]\nnodes = ["a", "b"]\n')
    updated = tmp_path / "updated.toml"
    updated.write_text(running.read_text() + ETH_BTC)               # ETH-BTC sorts before ETH-USDT
    with pytest.raises(ValueError, match="would move market:BTC-USDT-PERP, market:ETH-USDT to another node slot"):
        check(load_config(running), load_config(updated), "ETH-BTC")
    updated.write_text(running.read_text() + '[placement.pin]\n"market:ETH-USDT" = "b"\n'
                       '"market:BTC-USDT-PERP" = "a"\n' + ETH_BTC)
    check(load_config(running), load_config(updated), "ETH-BTC")     # pinned where they are: accepted
