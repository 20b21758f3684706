"""A venue of its own for the transparency page's tests, in a process of its own (its own
Ray cluster): the package's shared venue holds no operator keyring, so nothing there can
set an index price, and an auto-deleveraging needs one. This one holds the keyring and,
as ``tests/actors/test_perp.py`` and ``test_margin.py`` do, provokes:

- a perpetual ADL: an isolated 10x long of 1 BTC at 40,000 (bankruptcy 36,000) against a
  short on the other shard; the mark falls to 35,000 with no bid, so the liquidator takes
  the position over and deleverages the short at 36,000 (``ADL_START``/``ADL_END``);
- an operator's top-up of the perpetual fund (a ``TOP_UP`` entry) and the fee share swept
  (``FEE_SHARE``);
- a spot-margin liquidation: a 10x long of 0.2 BTC at 50,000 sold at a 49,000 bid once
  the index falls to 49,400;
- a few spot trades and a resting bid and ask on BTC-USDT.

Then it serves a gateway on loopback and prints one JSON line (``url``, the accounts),
and stops when its stdin closes. Run: ``python -m tests.gateway.adl_venue``.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import ray

from actors import bootstrap
from actors.capability import Keyring, Role
from actors.client.operator import OperatorClient
from exchange.core.routing import shard_for
from gateway.keys import KeyStore
from gateway.server import Gateway
from tests.gateway.conftest import Served

PERP = "BTC-USDT-PERP"
USDT = 10**6
CONFIG = ('extends = "default"\n\n[fee_tiers.zero]\nmaker_ppm = 0\ntaker_ppm = 0\n\n'
          '[fee_tiers.market_maker]\nmaker_ppm = 0\n')       # no rebate above the zero tier's taker fee


def wait_until(probe, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def on_two_shards(first: int, shards: int) -> tuple[int, int]:
    a = first
    b = next(n for n in range(first + 1, first + 100) if shard_for(n, shards) != shard_for(a, shards))
    return a, b


def perp_adl(client, operator, keyring) -> dict:
    alice, bob = on_two_shards(33_101, client.config.shards)
    for account in (alice, bob):
        assert client.open_account(account).ok and client.deposit(account, "USDT", "100000").ok
        assert client.transfer_perp(account, "USDT", "50000").ok
    market = client.handles.markets[PERP]
    as_index = keyring.capability(Role.INDEX)

    def price(usdt: int, ts_ns: int) -> int:
        mark = ray.get(market.set_index_prices.remote(as_index, {"BTC": usdt * USDT}, ts_ns))
        wait_until(lambda: all(ray.get(s.perp_marks.remote()).get(PERP, (0, 0))[1] == mark
                               for s in client.handles.shards))
        return mark

    start = time.time_ns()
    price(40_000, start)
    assert client.set_margin_mode(alice, PERP, True).ok and client.set_perp_leverage(alice, PERP, 10).ok
    assert client.perp_order(bob, PERP, "sell", "1", price="40000").ok
    assert client.perp_order(alice, PERP, "buy", "1", price="40000").status == "filled"
    wait_until(lambda: (v := client.perp_position(alice, PERP)) and v["lots"])
    price(35_000, start + 10**9)
    wait_until(lambda: (v := client.perp_liquidations())["records"] and not v["open"])
    operator.top_up_perp_fund(PERP, 25_000 * USDT)
    operator.sweep_perp_fees()                  # the fee share of the trade (FEE_SHARE entries), now
    return {"alice": alice, "bob": bob}


def margin_liquidation(client, operator) -> dict:
    supplier, maker, trader = 33_201, 33_202, 33_203
    now = time.time_ns()
    operator.accrue_interest(now)
    operator.set_index_component("BTC", "sim-alpha", 50_000 * USDT, 1, now)
    for account, balances in ((supplier, {"USDT": "100000"}), (maker, {"BTC": "10", "USDT": "100000"}),
                              (trader, {"USDT": "1000"})):
        assert client.open_account(account, "zero").ok
        for asset, amount in balances.items():
            assert client.deposit(account, asset, amount).ok
    assert client.supply(supplier, "USDT", "50000").ok
    assert client.enable_margin(trader, "pro", "10x").ok and client.transfer_margin(trader, "USDT", "1000").ok
    assert client.place_order(maker, "BTC-USDT", "sell", "0.2", price="50000").ok
    assert client.margin_order(trader, "BTC-USDT", "buy", "0.2", price="50000", tif="ioc").status == "filled"
    assert client.place_order(maker, "BTC-USDT", "buy", "0.2", price="49000").ok
    operator.set_index_component("BTC", "sim-alpha", 49_400 * USDT, 1, time.time_ns())
    wait_until(lambda: any(r.get("outcome") == "finished" for r in client.liquidations()))
    # a resting bid and ask and a few more trades for the live book
    assert client.place_order(maker, "BTC-USDT", "sell", "0.5", price="49500").ok
    assert client.place_order(supplier, "BTC-USDT", "buy", "0.1", price="49500", tif="ioc").ok
    assert client.place_order(supplier, "BTC-USDT", "buy", "0.25", price="49500", tif="ioc").ok
    assert client.place_order(supplier, "BTC-USDT", "buy", "0.3", price="48800").ok
    return {"trader": trader}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="adl-venue-"))
    config = folder / "config.toml"
    config.write_text(CONFIG)
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    operator = OperatorClient(bootstrap.create_actors(config, keyring=keyring), keyring)
    client = operator.client
    accounts = perp_adl(client, operator, keyring) | margin_liquidation(client, operator)
    served = Served(Gateway(client, KeyStore()))
    print(json.dumps({"url": served.url, "accounts": accounts}), flush=True)
    sys.stdin.read()
    served.stop()
    bootstrap.destroy_actors(client.handles)
    ray.shutdown()


if __name__ == "__main__":
    main()
