"""Crash recovery on real Ray with real LMDB files: nothing acknowledged is lost.

Each test starts its own actors on a module-wide local Ray cluster, over a
fresh data directory, and kills them at a chosen point.
"""
from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring
from actors.client.exchange_client import ExchangeClient
from actors.client.operator import OperatorClient
from actors.durability.storage import LmdbStore
from exchange.config import DEFAULT_CONFIG_PATH
from exchange.core.routing import shard_for
from gateway import binance
from gateway.streams import Streams, Subscriber
from tests.actors.conftest import accounts_on_shards, funded, settle


@pytest.fixture(scope="module")
def cluster():
    bootstrap.init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def config_path(tmp_path):
    """The default config with snapshots every 40 records, so tests reach them."""
    text = DEFAULT_CONFIG_PATH.read_text()
    assert "snapshot_every = 200000" in text
    text = text.replace("snapshot_every = 200000", "snapshot_every = 40")
    assert "fee_sweep_s = 5 " in text       # no periodic fee sweep: its first one landing between two hashes
    text = text.replace("fee_sweep_s = 5 ", "fee_sweep_s = 3600 ")      # moved a shard's (a perpetual's entry)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def start_exchange(config_path: str, data) -> ExchangeClient:
    """A client over new actors, with ``.operator`` (the keyring's holder) for crash hooks,
    snapshots and index prices."""
    keyring = Keyring.mint()
    operator = OperatorClient(bootstrap.create_actors(config_path, data_dir=data, keyring=keyring), keyring)
    client = operator.client
    client.operator = operator
    return client


@pytest.fixture
def exchange(cluster, tmp_path, config_path):
    data = tmp_path / "data"
    client = start_exchange(config_path, data)
    client.data_dir = data
    yield client
    bootstrap.destroy_actors(client.handles)


def wait_for_restart(actor, started_ns: int, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stats = ray.get(actor.stats.remote(), timeout=5)
            if stats["started_ns"] != started_ns:
                return stats
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError("actor did not come back")


def hashes_once_settled(actors: list, expected: list, timeout_s: float = 30) -> list:
    """The actors' state hashes once they equal ``expected``, or the last ones read after
    ``timeout_s``. A shard answers before its record of a market's entries is durable (the
    market keeps them until then), so entries a stop caught between the two are sent again
    after the restart and settle then, a moment after the actors are up."""
    deadline = time.monotonic() + timeout_s
    while True:
        hashes = ray.get([a.state_hash.remote() for a in actors])
        if hashes == expected or time.monotonic() > deadline:
            return hashes
        time.sleep(0.05)


def shard_of(client: ExchangeClient, account: int):
    return client.handles.shards[shard_for(account, client.config.shards)]


def taker_crossing_with_a_crash(exchange, first_account: int, point: str, request_id: str) -> tuple:
    """A maker's 0.3 BTC ask at 42,000 on one shard, then, with the taker's shard armed to
    crash at ``point``, the taker's 0.1 BTC buy at that price: (maker, taker, ask, the
    taker's shard, its start stamp before the crash, the buy's result)."""
    maker, taker, _ = accounts_on_shards(exchange, first_account)
    funded(exchange, maker, taker)
    ask = exchange.place_order(maker, "BTC-USDT", "sell", "0.3", price="42000.00")
    shard = shard_of(exchange, taker)
    started = ray.get(shard.stats.remote())["started_ns"]
    exchange.operator.arm_crash(shard, point)
    result = exchange.place_order(taker, "BTC-USDT", "buy", "0.1", price="42000.00", request_id=request_id)
    return maker, taker, ask, shard, started, result


def test_shard_killed_after_journaling_before_forwarding_fills_the_order_exactly_once(exchange):
    maker, taker, ask, shard, started, result = taker_crossing_with_a_crash(exchange, 100, "shard.after_journal",
                                                                            "crash-1")
    stats = wait_for_restart(shard, started)
    assert stats["recovery"]["replayed"] + (stats["recovery"]["snapshot"] or 0) > 0
    assert result.status == "filled" and result.filled_quantity == 10**7
    again = exchange.place_orders([exchange.order(taker, "BTC-USDT", "buy", "0.1", "42000.00",
                                                  request_id="crash-1")])[0]
    assert again.order_id == result.order_id                       # the retry is the same order
    assert exchange.balances(taker)["BTC"][0] == 100 * 10**8 + 10**7
    assert exchange.get_order(maker, ask.order_id)["remaining"] == 2 * 10**7
    assert settle(exchange)["ok"]


def test_shard_killed_after_answering_before_journaling_the_fill_keeps_the_answered_fill(exchange):
    """The taker's shard answers from the market's answer before its own record of the
    fill is durable (the market keeps the entries until the shard acknowledges them as
    journaled): killed in between, it recovers the order from its journal and the fill
    from the market's re-sent entries, exactly as answered."""
    maker, taker, ask, shard, started, result = taker_crossing_with_a_crash(exchange, 150, "shard.after_answer",
                                                                            "undurable-1")
    assert result.status == "filled" and result.filled_quantity == 10**7      # answered before the crash
    stats = wait_for_restart(shard, started)
    assert stats["recovery"]["replayed"] + (stats["recovery"]["snapshot"] or 0) > 0
    deadline = time.monotonic() + 30                   # the market sends the unacknowledged entries again
    while exchange.balances(taker)["BTC"][0] != 100 * 10**8 + 10**7 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exchange.balances(taker)["BTC"][0] == 100 * 10**8 + 10**7
    again = exchange.place_orders([exchange.order(taker, "BTC-USDT", "buy", "0.1", "42000.00",
                                                  request_id="undurable-1")])[0]
    assert again.order_id == result.order_id and again.filled_quantity == result.filled_quantity
    assert exchange.get_order(maker, ask.order_id)["remaining"] == 2 * 10**7
    assert settle(exchange)["ok"]


def test_market_killed_after_matching_before_pushing_settles_both_sides_once(exchange):
    maker, taker, _ = accounts_on_shards(exchange, 200)
    funded(exchange, maker, taker)
    exchange.place_order(maker, "ETH-USDT", "sell", "2.000", price="2500.00")
    market = exchange.handles.markets["ETH-USDT"]
    started = ray.get(market.stats.remote())["started_ns"]
    exchange.operator.arm_crash(market, "market.after_match")
    result = exchange.place_order(taker, "ETH-USDT", "buy", "1.500", price="2500.00")
    stats = wait_for_restart(market, started)
    assert result.status == "filled" and result.filled_quantity == 150_000_000
    assert stats["traded_quantity"] == 150_000_000
    def applied() -> int:
        return sum(ray.get(s.audit.remote())["fill_quantity_applied"]["ETH-USDT"] for s in exchange.handles.shards)
    deadline = time.monotonic() + 30                               # the maker's shard gets its push re-sent
    while applied() < 2 * stats["traded_quantity"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert applied() == 2 * stats["traded_quantity"]               # each side settled once
    assert settle(exchange)["ok"]
    assert applied() == 2 * stats["traded_quantity"]               # and never again


def test_market_killed_after_matching_the_gateways_public_streams_send_each_trade_once_and_go_on(exchange):
    """The gateway's trade and depth producers (``gateway/streams.py``) over a market that dies
    after matching: its restart replays the fill into a new event log, and the trade stream
    must neither repeat it nor stop; the depth stream goes on, with at most one gap in
    ``U``/``u`` (what changed while it could not read is not known: clients resync)."""
    maker, taker, _ = accounts_on_shards(exchange, 300)
    funded(exchange, maker, taker)
    market = exchange.handles.markets["ETH-USDT"]

    def buy(quantity: str) -> int:
        result = exchange.place_order(taker, "ETH-USDT", "buy", quantity, price="2500.00")
        assert result.status == "filled", result
        return result.fills[-1].seq

    async def main() -> tuple:
        streams = Streams(exchange, binance.symbols(exchange.config))
        reader = Subscriber({"ethusdt@trade", "ethusdt@depth"}, combined=True)
        streams.subscribers.add(reader)
        streams.start()
        trades, depths = [], []

        async def until(done, timeout_s: float = 60) -> None:
            deadline = time.monotonic() + timeout_s
            while not done():
                message = orjson.loads(await asyncio.wait_for(reader.queue.get(), max(0.1, deadline - time.monotonic())))
                data = message["data"]
                if message["stream"].endswith("@trade"):
                    trades.append(data["t"])
                else:
                    depths.append((data["U"], data["u"], [price for price, _ in data["a"]]))
        await asyncio.sleep(0.5)                                     # the producers' first reads
        await asyncio.to_thread(exchange.place_order, maker, "ETH-USDT", "sell", "2.000", price="2500.00")
        first = await asyncio.to_thread(buy, "0.500")
        await until(lambda: first in trades)
        started = ray.get(market.stats.remote())["started_ns"]
        exchange.operator.arm_crash(market, "market.after_match")
        second = await asyncio.to_thread(buy, "1.000")
        await asyncio.to_thread(wait_for_restart, market, started)
        third = await asyncio.to_thread(buy, "0.500")
        await until(lambda: third in trades)
        for step in range(10):              # a new ask, once the depth producer is back: it shows in an update
            price = f"{2600 + step}.00"
            await asyncio.to_thread(exchange.place_order, maker, "ETH-USDT", "sell", "0.100", price=price)
            with contextlib.suppress(asyncio.TimeoutError):
                await until(lambda: any(f"{price}0000" in asks for _, _, asks in depths), 2.0)
                break
        else:
            raise AssertionError(f"no depth update after the restart: {depths}")
        with contextlib.suppress(asyncio.TimeoutError):
            await until(lambda: False, 2.0)                          # a repeated trade would come now
        await streams.stop()
        return trades, depths, (first, second, third)

    trades, depths, fills = asyncio.run(main())
    assert trades == sorted(set(trades)) and set(fills) <= set(trades), (trades, fills)    # once each, in order
    gaps = [(a[:2], b[:2]) for a, b in zip(depths, depths[1:]) if b[0] != a[1] + 1]
    assert len(gaps) <= 1, gaps


def test_shard_killed_at_a_snapshot_recovers_the_same_state(exchange):
    a, b, _ = accounts_on_shards(exchange, 300)
    funded(exchange, a, b)
    for i in range(15):
        exchange.place_order(a, "BTC-USDT", "sell", "0.01", price=f"{43000 + i}.00")
        exchange.place_order(b, "BTC-USDT", "buy", "0.005", price=f"{43000 + i}.00")
    shard = shard_of(exchange, a)
    assert settle(exchange)["ok"]                         # a's last fill comes by push, after b's answer
    before = exchange.balances(a)["USDT"]
    started = ray.get(shard.stats.remote())["started_ns"]
    exchange.operator.arm_crash(shard, "shard.before_snapshot")
    for i in range(60):                                   # enough records to make a snapshot due
        assert exchange.deposit(a, "USDT", 1, request_id=f"tiny-{i}").ok
    stats = wait_for_restart(shard, started)
    assert stats["recovery"]["replayed"] > 0
    assert exchange.balances(a)["USDT"] == (before[0] + 60, before[1])   # each deposit exactly once
    assert settle(exchange)["ok"]


def test_shard_with_corrupt_latest_snapshot_recovers_from_the_previous_one(exchange):
    a, b, _ = accounts_on_shards(exchange, 400)
    funded(exchange, a, b)
    shard = shard_of(exchange, a)
    exchange.place_order(a, "BTC-USDT", "sell", "0.01", price="44000.00")
    first = exchange.operator.snapshot_now(shard)
    exchange.place_order(b, "BTC-USDT", "buy", "0.01", price="44000.00")
    assert settle(exchange)["ok"]      # a's fill comes by push, possibly after b's answer: in the second snapshot
    second = exchange.operator.snapshot_now(shard)
    exchange.place_order(a, "BTC-USDT", "sell", "0.02", price="44001.00")
    expected = ray.get(shard.state_hash.remote())
    started = ray.get(shard.stats.remote())["started_ns"]
    name = f"shard-{shard_for(a, exchange.config.shards)}"
    store = LmdbStore(exchange.data_dir / name)             # LMDB allows a second process
    store.corrupt_snapshot_for_test(second)
    store.close()
    ray.kill(shard, no_restart=False)
    stats = wait_for_restart(shard, started)
    assert stats["recovery"]["snapshot"] == first < second
    assert ray.get(shard.state_hash.remote()) == expected
    assert settle(exchange)["ok"]


def test_whole_cluster_restart_on_the_same_data_brings_back_every_balance_and_order(cluster, tmp_path,
                                                                                     config_path):
    data = tmp_path / "data"
    client = start_exchange(config_path, data)
    a, b, _ = accounts_on_shards(client, 500)
    funded(client, a, b)
    rest = client.place_order(a, "ETH-USDT", "sell", "3.000", price="2600.00")
    client.place_order(b, "ETH-USDT", "buy", "1.000", price="2600.00", request_id="before-restart")
    assert settle(client)["ok"]          # the maker's shard settles from its push, after the taker's answer
    hashes = ray.get([s.state_hash.remote() for s in client.handles.shards]
                     + [m.state_hash.remote() for m in client.handles.markets.values()])
    balances = (client.balances(a), client.balances(b))
    ray.shutdown()                                         # every process of the cluster is gone

    bootstrap.init_ray(num_cpus=2)
    client = start_exchange(config_path, data)
    try:
        assert hashes_once_settled([*client.handles.shards, *client.handles.markets.values()], hashes) == hashes
        assert (client.balances(a), client.balances(b)) == balances
        assert client.get_order(a, rest.order_id)["remaining"] == 2 * 10**8
        retry = client.place_orders([client.order(b, "ETH-USDT", "buy", "1.000", "2600.00",
                                                  request_id="before-restart")])[0]
        assert retry.status == "filled" and client.balances(b) == balances[1]
        assert client.audit()["ok"]
    finally:
        bootstrap.destroy_actors(client.handles)


def test_lending_pool_killed_after_journaling_a_borrow_lends_exactly_once(exchange):
    now = time.time_ns()
    exchange.operator.set_index_component("BTC", "sim-alpha", 50_000_000_000, 1, now)
    supplier, trader = 9_001, 9_002
    funded(exchange, supplier, trader)
    assert exchange.supply(supplier, "USDT", "100000").ok
    assert exchange.enable_margin(trader, "L2", "3x").ok
    assert exchange.transfer_margin(trader, "USDT", "10000").ok
    lending = exchange.handles.lending
    started = ray.get(lending.stats.remote())["started_ns"]
    exchange.operator.arm_crash(lending, "market.after_match")     # dies after journaling, before answering
    borrowed = exchange.borrow(trader, "USDT", "5000")
    assert borrowed.ok
    wait_for_restart(lending, started)
    book = exchange.margin_book(trader)
    assert book["principal"]["USDT"] == 5_000_000_000 and book["available"]["USDT"] == 15_000_000_000
    pool = exchange.lending_pools()["USDT"]
    assert pool["principal"] == 5_000_000_000 and pool["cash"] == 95_000_000_000
    assert ray.get(lending.check_invariants.remote())
    assert exchange.audit()["ok"]


def test_whole_cluster_restart_brings_back_margin_books_pools_and_the_fund(cluster, tmp_path, config_path):
    from ops.verify import verify

    data = tmp_path / "data"
    client = start_exchange(config_path, data)
    now = time.time_ns()
    client.operator.set_index_component("BTC", "sim-alpha", 50_000_000_000, 1, now)
    supplier, maker = 9_101, 9_102
    funded(client, supplier, maker)
    assert client.supply(supplier, "USDT", "500000").ok and client.supply(supplier, "BTC", "10").ok
    traders = list(range(9_110, 9_130))                       # enough records to pass snapshot_every = 40
    for trader in traders:
        funded(client, trader, usdt="10000", btc="1", eth="1")
        assert client.enable_margin(trader, "L2", "3x").ok
        assert client.transfer_margin(trader, "USDT", "5000", market="BTC-USDT" if trader % 2 else "").ok
        assert client.place_order(maker, "BTC-USDT", "sell", "0.1", price="50000").ok
        assert client.margin_order(trader, "BTC-USDT", "buy", "0.1", price="50000", tif="ioc",
                                   isolated=bool(trader % 2)).status == "filled"
        assert client.borrow(trader, "BTC", "0.01", market="BTC-USDT" if trader % 2 else "").ok
    actors = [*client.handles.shards, *client.handles.markets.values(), client.handles.lending]
    [client.operator.snapshot_now(a) for a in actors[:2]]      # some from a snapshot, some from the journal
    hashes = ray.get([a.state_hash.remote() for a in actors])
    books = {t: client.margin_book(t, "BTC-USDT" if t % 2 else "") for t in traders}
    pools, fund = client.lending_pools(), client.insurance_fund()
    bootstrap.destroy_actors(client.handles)
    time.sleep(1)

    client = start_exchange(config_path, data)
    try:
        actors = [*client.handles.shards, *client.handles.markets.values(), client.handles.lending]
        assert hashes_once_settled(actors, hashes) == hashes
        assert client.lending_pools() == pools and client.insurance_fund() == fund
        client.operator.set_index_component("BTC", "sim-alpha", 50_000_000_000, 1, time.time_ns())
        assert {t: client.margin_book(t, "BTC-USDT" if t % 2 else "") for t in traders} == books
        assert client.audit()["ok"]
    finally:
        bootstrap.destroy_actors(client.handles)
    time.sleep(1)
    report = verify(str(data), config_path)
    assert report["ok"], report["problems"]


def test_liquidator_killed_mid_liquidation_resumes_it_and_finishes_once(exchange):
    operator = exchange.operator
    operator.set_index_component("BTC", "sim-alpha", 50_000_000_000, 1, time.time_ns())
    supplier, maker, trader = 9_201, 9_202, 9_203
    funded(exchange, supplier, maker)
    funded(exchange, trader, usdt="1000", btc="1", eth="1")
    assert exchange.supply(supplier, "USDT", "100000").ok
    assert exchange.enable_margin(trader, "L2", "3x").ok
    assert exchange.transfer_margin(trader, "USDT", "1000").ok
    assert exchange.place_order(maker, "BTC-USDT", "sell", "0.05", price="50000").ok
    assert exchange.margin_order(trader, "BTC-USDT", "buy", "0.05", price="50000", tif="ioc").status == "filled"
    liquidator = exchange.handles.liquidator
    started = ray.get(liquidator.stats.remote())["started_ns"]
    operator.set_index_component("BTC", "sim-alpha", 30_000_000_000, 1, time.time_ns())   # no bid yet
    deadline = time.monotonic() + 30
    while not ray.get(liquidator.in_progress.remote()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ray.get(liquidator.in_progress.remote()) == [(trader, "")]
    ray.kill(liquidator, no_restart=False)
    wait_for_restart(liquidator, started)
    assert exchange.place_order(maker, "BTC-USDT", "buy", "0.05", price="29900").ok    # a bid appears
    deadline = time.monotonic() + 60
    while ray.get(liquidator.in_progress.remote()) and time.monotonic() < deadline:
        time.sleep(0.1)
    records = [r for r in ray.get(liquidator.liquidation_records.remote(1000)) if r["n"] == 1]
    assert [r["outcome"] for r in records] == ["finished"]
    book = exchange.margin_book(trader)
    assert book["debt"]["USDT"] == 0 and book["available"]["BTC"] == 0 and not book["liquidating"]
    assert exchange.audit()["ok"]
