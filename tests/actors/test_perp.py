"""Perpetual futures on real Ray with real LMDB: a perpetual market actor priced by index
updates, orders between accounts on different shards, marks and funding pushed to every
shard in seq order, conservation over the cluster, and a perpetual market and a shard
killed and recovered to the same state."""
from __future__ import annotations

import time

import pytest
import ray

from actors import bootstrap
from actors.capability import Role
from exchange.config import DEFAULT_CONFIG_PATH
from tests.actors.conftest import accounts_on_shards, funded, settle
from tests.actors.test_durability import hashes_once_settled, shard_of, start_exchange, wait_for_restart

PERP = "BTC-USDT-PERP"
HOUR_NS = 3600 * 10**9
SECTION = f'''
[perp.{PERP}]
base = "BTC"
quote = "USDT"
tick_size = "0.1"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "1000"
step_notional = "1000000"
funding_interval_s = 3600
'''


@pytest.fixture(scope="module")
def cluster():
    bootstrap.init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def exchange(cluster, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text() + SECTION)
    client = start_exchange(str(path), tmp_path / "data")
    yield client
    bootstrap.destroy_actors(client.handles)


def price(exchange, ts_ns: int, usdt: int = 40_000) -> int:
    """What the index actor sends a perpetual market, with the index capability; returns the
    mark once every shard has it (marks reach the shards as pushes, in seq order)."""
    market = exchange.handles.markets[PERP]
    capability = exchange.operator.keyring.capability(Role.INDEX)
    mark = ray.get(market.set_index_prices.remote(capability, {"BTC": usdt * 10**6}, ts_ns))
    wait_until(lambda: all(ray.get(s.perp_marks.remote()).get(PERP, (0, 0))[1] == mark
                           for s in exchange.handles.shards))
    return mark


def wait_until(check, timeout_s: float = 20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_perpetual_orders_marks_and_funding_across_shards(exchange):
    long_, short, _ = accounts_on_shards(exchange, 500)
    funded(exchange, long_, short)
    for account in (long_, short):
        assert exchange.transfer_perp(account, "USDT", "50000").ok
    refused = exchange.perp_order(long_, PERP, "buy", "1", price="40000")
    assert not refused.ok and refused.reason.name == "NO_MARK_PRICE"
    start = 1_000 * HOUR_NS
    assert price(exchange, start + 1) == 400_000
    assert exchange.perp_position(long_, PERP) is None
    assert exchange.perp_wallet(long_)["USDT"]["cash"] == 50_000 * 10**6
    assert exchange.set_perp_leverage(long_, PERP, 10).ok
    assert exchange.perp_order(short, PERP, "sell", "1", price="40000").ok
    buy = exchange.perp_order(long_, PERP, "buy", "1", price="40000")
    assert buy.ok and buy.status == "filled", buy
    settle(exchange)
    long_view = wait_until(lambda: exchange.perp_position(long_, PERP))
    short_view = wait_until(lambda: (v := exchange.perp_position(short, PERP)) and v["lots"] and v)
    assert long_view["lots"] == 1_000 and short_view["lots"] == -1_000
    assert long_view["entry_notional"] == -short_view["entry_notional"] == 1_000 * 400_000 * 100
    # an hour later the market settles funding (no premium: the interest, 0.01%) on both shards
    price(exchange, start + HOUR_NS + 5)
    funded_long = wait_until(lambda: (v := exchange.perp_position(long_, PERP))["funding"] and v)
    funded_short = wait_until(lambda: (v := exchange.perp_position(short, PERP))["funding"] and v)
    assert funded_long["funding"] == -funded_short["funding"] == 1_000 * 4_000     # 40,000 x 100 x 0.01% a lot
    assert exchange.perp_prices(PERP)["funding_rate"] == 10_000
    audit = settle(exchange)
    assert audit["ok"], audit


def test_a_perpetual_market_and_a_shard_killed_recover_the_same_state(exchange):
    long_, short, _ = accounts_on_shards(exchange, 700)
    funded(exchange, long_, short)
    for account in (long_, short):
        assert exchange.transfer_perp(account, "USDT", "50000").ok
    price(exchange, 2_000 * HOUR_NS)
    assert exchange.perp_order(short, PERP, "sell", "0.5", price="40000").ok
    assert exchange.perp_order(long_, PERP, "buy", "0.2", price="40000").ok
    assert exchange.perp_order(short, PERP, "sell", "0.1", price="41000").ok      # rests
    settle(exchange)
    market, shard = exchange.handles.markets[PERP], shard_of(exchange, long_)
    expected = ray.get([market.state_hash.remote(), shard.state_hash.remote()])
    started = [ray.get(a.stats.remote())["started_ns"] for a in (market, shard)]
    for actor in (market, shard):
        ray.kill(actor, no_restart=False)
    for actor, at in zip((market, shard), started):
        wait_for_restart(actor, at)
    assert hashes_once_settled([market, shard], expected) == expected
    assert price(exchange, 2_000 * HOUR_NS + 10) == ray.get(market.price_view.remote())["mark"]
    assert exchange.perp_order(long_, PERP, "buy", "0.1", price="41000").status == "filled"
    assert settle(exchange)["ok"]
