"""The user-data stream and the mark price stream over a real WebSocket client (aiohttp's)
against the running gateway: a listen key made over HTTP, orders placed, filled and
cancelled over HTTP, and the stream's executionReport / outboundAccountPosition /
balanceUpdate events checked against the REST answers and the final balances; another
account's events never on the stream; keep-alive, close, an unknown, expired or revoked
key refused -1125 / -2015; a reader that lets its queue fill is dropped; a perpetual's
mark price arrives every second with the mark the client handle reports. The shapes of
margin calls and liquidation notices are checked on the domain's own records.

Accounts 34_001..34_009 are this module's."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import requests

from exchange.core.money import format_decimal
from exchange.perp.rules import perp_markets
from exchange.messages.records import (LiquidationStage, LiquidationUpdate, MarginLevelChanged, PerpLiquidationStage,
                                       PerpLiquidationUpdate, PerpMarginZoneChanged)
from gateway.server import Gateway
from gateway.user_events import UserEvents
from tests.gateway.conftest import Served, Trader

ALICE, BOB, CAROL, DAVE = 34_001, 34_002, 34_003, 34_004
SYMBOL, MARKET, PERP, PERP_SYMBOL = "BTCUSDT", "BTC-USDT", "BTC-USDT-PERP", "BTCUSDTPERP"
PATH = "/api/v3/userDataStream"


@pytest.fixture(scope="module")
def accounts(venue):
    """Funded accounts of this module, each with a read+trade key: ``{account: Trader}``."""
    client, keys, served = venue
    out = {}
    for account in (ALICE, BOB, CAROL, DAVE):
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "10000000"), ("BTC", "100")):
            assert client.deposit(account, asset, amount).ok
        out[account] = Trader(served.url, *keys.create(account, ["read", "trade"]))
    return out


def listen_key(trader: Trader, url: str | None = None) -> str:
    answer = requests.post(f"{url or trader.url}{PATH}", headers={"X-MBX-APIKEY": trader.key}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["listenKey"]


def listen_key_call(method: str, trader: Trader, key: str, url: str | None = None) -> requests.Response:
    return requests.request(method, f"{url or trader.url}{PATH}", params={"listenKey": key},
                            headers={"X-MBX-APIKEY": trader.key}, timeout=10)


class Reader:
    """A WebSocket's messages, read in the background until it closes."""

    def __init__(self, ws):
        self.ws, self.messages, self.closed = ws, [], asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(message.json())
        self.closed.set()

    async def until(self, probe, timeout_s: float = 15.0):
        """Wait until ``probe(messages)`` is truthy; return it."""
        deadline = time.monotonic() + timeout_s
        while not (found := probe(self.messages)):
            assert time.monotonic() < deadline, f"not seen in {timeout_s} s: {self.messages[-5:]}"
            await asyncio.sleep(0.05)
        return found


def ws_url(url: str, path: str) -> str:
    return url.replace("http", "ws") + path


def reports(messages: list, order_id: int) -> list[dict]:
    return [m for m in messages if m["e"] == "executionReport" and m["i"] == order_id]


def last_position(messages: list) -> dict[str, tuple[str, str]]:
    """Each asset's (free, locked) as the stream last said it."""
    out = {}
    for message in messages:
        if message["e"] == "outboundAccountPosition":
            out.update((b["a"], (b["f"], b["l"])) for b in message["B"])
    return out


def rest_balances(trader: Trader) -> dict[str, tuple[str, str]]:
    answer = trader.signed("GET", "/api/v3/account").json()
    return {b["asset"]: (b["free"], b["locked"]) for b in answer["balances"]}


def test_orders_fills_cancels_and_deposits_on_the_stream_agree_with_rest(venue, accounts):
    client, _, served = venue
    alice, bob = accounts[ALICE], accounts[BOB]

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            mine = Reader(await session.ws_connect(ws_url(served.url, f"/ws/{listen_key(alice)}")))
            theirs = Reader(await session.ws_connect(ws_url(served.url, f"/ws/{listen_key(bob)}")))
            # a resting bid under the book, then its cancel
            placed = alice.signed("POST", "/api/v3/order", symbol=SYMBOL, side="BUY", type="LIMIT",
                                  timeInForce="GTC", quantity="0.5", price="30000.00", newClientOrderId="rest-1").json()
            assert placed["status"] == "NEW", placed
            new = (await mine.until(lambda m: reports(m, placed["orderId"])))[0]
            assert (new["x"], new["X"], new["s"], new["S"], new["c"]) == ("NEW", "NEW", SYMBOL, "BUY", "rest-1")
            assert (new["o"], new["f"]) == ("LIMIT", "GTC")
            assert (new["p"], new["q"], new["z"]) == ("30000.000000", "0.50000000", "0.00000000")
            locked = await mine.until(lambda m: last_position(m).get("USDT"))
            assert locked == rest_balances(alice)["USDT"] and float(locked[1]) >= 500
            cancelled = alice.signed("DELETE", "/api/v3/order", symbol=SYMBOL, orderId=placed["orderId"]).json()
            assert cancelled["status"] == "CANCELED", cancelled
            gone = (await mine.until(lambda m: [r for r in reports(m, placed["orderId"]) if r["x"] == "CANCELED"]))[0]
            assert (gone["X"], gone["C"], gone["w"]) == ("CANCELED", "rest-1", False)
            # Bob joins the best ask (or makes one); Alice takes the whole level with an IOC buy
            asks = requests.get(f"{served.url}/api/v3/depth", params={"symbol": SYMBOL, "limit": 5}, timeout=10).json()
            price, level = (asks["asks"][0][0], float(asks["asks"][0][1])) if asks["asks"] else ("50000.000000", 0.0)
            sell = bob.signed("POST", "/api/v3/order", symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
                              quantity="0.3", price=price).json()
            assert sell["status"] == "NEW", sell
            quantity = f"{level + 0.3:.4f}"
            buy = alice.signed("POST", "/api/v3/order", symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="IOC",
                               quantity=quantity, price=price).json()
            assert buy["status"] == "FILLED" and buy["executedQty"] == f"{level + 0.3:.8f}", buy
            trades = await mine.until(lambda m: (r := [x for x in reports(m, buy["orderId"]) if x["x"] == "TRADE"])
                                      and r[-1]["X"] == "FILLED" and r)
            fills = [(f["tradeId"], f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in buy["fills"]]
            assert [(t["t"], t["L"], t["l"], t["n"], t["N"]) for t in trades] == fills
            assert not any(t["m"] for t in trades) and {(t["o"], t["f"]) for t in trades} == {("LIMIT", "IOC")}
            assert trades[-1]["z"] == buy["executedQty"] and trades[-1]["Z"] == buy["cummulativeQuoteQty"]
            maker = (await theirs.until(lambda m: [r for r in reports(m, sell["orderId"]) if r["x"] == "TRADE"]))[0]
            assert (maker["X"], maker["m"], maker["S"], maker["l"], maker["L"]) == \
                ("FILLED", True, "SELL", "0.30000000", price)
            assert maker["t"] in {f["tradeId"] for f in buy["fills"]}
            # a post-only order that would take: REST answers REJECTED with its id, and so does the stream
            ask = bob.signed("POST", "/api/v3/order", symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
                             quantity="0.1", price="60000.000000").json()
            maker_only = alice.signed("POST", "/api/v3/order", symbol=SYMBOL, side="BUY", type="LIMIT_MAKER",
                                      quantity="0.1", price="60000.000000").json()
            assert maker_only["status"] == "REJECTED" and maker_only["orderId"], maker_only
            rejected = (await mine.until(lambda m: reports(m, maker_only["orderId"])))[0]
            assert (rejected["x"], rejected["X"], rejected["r"]) == ("REJECTED", "REJECTED", "POST_ONLY_WOULD_TAKE")
            assert (rejected["s"], rejected["S"], rejected["p"], rejected["q"], rejected["o"], rejected["f"]) == \
                (SYMBOL, "BUY", "60000.000000", "0.10000000", "LIMIT_MAKER", "GTC")           # the order as placed
            assert bob.signed("DELETE", "/api/v3/order", symbol=SYMBOL, orderId=ask["orderId"]).json()["status"] \
                == "CANCELED"
            await theirs.until(lambda m: [r for r in reports(m, ask["orderId"]) if r["x"] == "CANCELED"])
            # a deposit: a balanceUpdate, then the new balance
            assert client.deposit(ALICE, "USDT", "5").ok
            update = await mine.until(lambda m: [x for x in m if x["e"] == "balanceUpdate"])
            assert (update[0]["a"], update[0]["d"]) == ("USDT", "5.000000")
            # the last balances the stream gave are the account's
            final = rest_balances(alice)
            await mine.until(lambda m: all(last_position(m).get(a) == final[a] for a in ("USDT", "BTC")))
            bobs = rest_balances(bob)
            await theirs.until(lambda m: all(last_position(m).get(a) == bobs[a] for a in ("USDT", "BTC")))
            # nobody sees another's orders
            alices = {placed["orderId"], buy["orderId"], maker_only["orderId"]}
            assert {m["i"] for m in mine.messages if m["e"] == "executionReport"} == alices
            assert {m["i"] for m in theirs.messages if m["e"] == "executionReport"} == {sell["orderId"], ask["orderId"]}
            assert not [m for m in theirs.messages if m["e"] == "balanceUpdate"]
            await mine.ws.close()
            await theirs.ws.close()

    asyncio.run(main())


def test_keep_alive_and_close_and_an_unknown_key_is_refused(venue, accounts):
    _, _, served = venue
    carol = accounts[CAROL]
    key = listen_key(carol)
    assert len(key) == 60 and listen_key(carol) == key                # Binance's: the live one again
    assert listen_key_call("PUT", carol, key).json() == {}
    other = accounts[DAVE]
    for method in ("PUT", "DELETE"):                                  # another API key's listen key
        answer = listen_key_call(method, other, key)
        assert (answer.status_code, answer.json()["code"]) == (400, -1125)
    missing = requests.put(f"{served.url}{PATH}", headers={"X-MBX-APIKEY": carol.key}, timeout=10)
    assert missing.json()["code"] == -1102
    for headers in ({}, {"X-MBX-APIKEY": "nope"}):
        answer = requests.post(f"{served.url}{PATH}", headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["code"]) == (401, -2015)

    async def main() -> tuple:
        async with aiohttp.ClientSession() as session:
            reader = Reader(await session.ws_connect(ws_url(served.url, f"/ws/{key}")))
            assert listen_key_call("DELETE", carol, key).json() == {}
            await asyncio.wait_for(reader.closed.wait(), 5)
            ended = (reader.messages, reader.ws.close_code)
            refused = Reader(await session.ws_connect(ws_url(served.url, f"/ws/{key}")))
            await asyncio.wait_for(refused.closed.wait(), 5)
            unknown = Reader(await session.ws_connect(ws_url(served.url, "/ws/" + "0" * 60)))
            await asyncio.wait_for(unknown.closed.wait(), 5)
            return ended, (refused.messages, refused.ws.close_code), (unknown.messages, unknown.ws.close_code)

    ended, refused, unknown = asyncio.run(main())
    assert ended == ([{"e": "listenKeyExpired", "E": ended[0][0]["E"], "listenKey": key}], 1000)
    assert refused == unknown == ([{"code": -1125, "msg": "This listenKey does not exist."}], 1008)
    for method in ("PUT", "DELETE"):
        answer = listen_key_call(method, carol, key)
        assert (answer.status_code, answer.json()) == (400, {"code": -1125, "msg": "This listenKey does not exist."})


def test_a_revoked_api_keys_stream_stops_at_once(venue, accounts):
    client, keys, served = venue
    revoked = Trader(served.url, *keys.create(DAVE, ["read", "trade"]))
    key = listen_key(revoked)

    async def main() -> tuple:
        async with aiohttp.ClientSession() as session:
            reader = Reader(await session.ws_connect(ws_url(served.url, f"/ws/{key}")))
            assert keys.revoke(revoked.key)
            started = time.monotonic()
            await asyncio.wait_for(reader.closed.wait(), 5)
            return time.monotonic() - started, reader.messages

    took_s, messages = asyncio.run(main())
    assert took_s < 1.5 and [m["e"] for m in messages] == ["listenKeyExpired"]
    assert listen_key_call("PUT", revoked, key).json()["code"] == -2015
    assert requests.post(f"{served.url}{PATH}", headers={"X-MBX-APIKEY": revoked.key}, timeout=10).json()["code"] \
        == -2015


@pytest.fixture(scope="module")
def skewed(venue):
    """A second gateway on the same exchange whose clock the test moves: ``(url, offset)``."""
    client, keys, _ = venue
    offset = [0]
    served = Served(Gateway(client, keys, clock_ms=lambda: time.time_ns() // 1_000_000 + offset[0]))
    yield served.url, offset
    served.stop()


def test_a_listen_key_not_kept_alive_for_an_hour_expires(skewed, accounts):
    url, offset = skewed
    trader = accounts[CAROL]
    key = listen_key(trader, url)

    async def main() -> list:
        async with aiohttp.ClientSession() as session:
            reader = Reader(await session.ws_connect(ws_url(url, f"/ws/{key}")))
            offset[0] += 59 * 60_000                            # a minute short: still live
            await asyncio.sleep(0.5)
            assert not reader.closed.is_set()
            assert listen_key_call("PUT", trader, key, url).json() == {}       # an hour from now again
            offset[0] += 60 * 60_000
            await asyncio.wait_for(reader.closed.wait(), 5)
            return reader.messages

    assert [m["e"] for m in asyncio.run(main())] == ["listenKeyExpired"]
    assert listen_key_call("PUT", trader, key, url).json()["code"] == -1125
    assert listen_key(trader, url) != key


def test_a_reader_that_lets_its_queue_fill_is_dropped_and_the_others_go_on():
    from gateway.streams import QUEUE_MAX
    from gateway.user_stream import Connection

    async def main() -> tuple:
        slow, fast = Connection(None, "a" * 60, "k"), Connection(None, "a" * 60, "k")
        for n in range(QUEUE_MAX + 5):
            for connection in (slow, fast):
                connection.subscriber.offer("", {"n": n})
            fast.subscriber.queue.get_nowait()
        return slow.subscriber.dropped, fast.subscriber.dropped

    assert asyncio.run(main()) == (True, False)


def test_margin_calls_and_liquidation_notices_in_their_shapes(venue):
    config = venue[0].config
    events = UserEvents(config, 7)
    shaped = events.shape([MarginLevelChanged(7, "", 2, 1_100_000), MarginLevelChanged(7, "BTC-USDT", 0, 2_000_000),
                           PerpMarginZoneChanged(PERP, 9, 0, 7, PERP, 2, 10 * 10**6, 12 * 10**6, 15 * 10**6),
                           LiquidationUpdate(5, 3 * 10**6, 7, "", int(LiquidationStage.COVERED), 900_000,
                                             ("USDT", 1_500_000)),
                           PerpLiquidationUpdate(6, 4 * 10**6, 7, PERP, 3, int(PerpLiquidationStage.TAKEN_OVER),
                                                 1_000, 400_000, -2 * 10**6)], 99)
    assert shaped == [
        {"e": "MARGIN_CALL", "E": 99, "k": "MARGIN", "s": "", "mt": "CROSSED", "z": "MARGIN_CALL", "l": "1.100000"},
        {"e": "MARGIN_CALL", "E": 99, "k": "PERP", "s": PERP_SYMBOL, "mt": "ISOLATED", "z": "LIQUIDATION",
         "eq": "10.000000", "mm": "12.000000", "w": "15.000000"},
        {"e": "liquidation", "E": 99, "T": 3, "k": "MARGIN", "s": "", "x": "COVERED", "l": "0.900000",
         "a": "USDT", "d": "1.500000"},
        {"e": "liquidation", "E": 99, "T": 4, "k": "PERP", "s": PERP_SYMBOL, "x": "TAKEN_OVER", "i": 3,
         "q": "1.00000000", "p": "40000.000000", "d": "-2.000000"}]


def test_the_mark_price_stream_carries_the_mark_the_client_reports(venue):
    client, _, served = venue
    low = PERP_SYMBOL.lower()

    async def main() -> tuple[list, set]:
        marks, stop = set(), asyncio.Event()

        async def poll() -> None:                # the client handle's view, every 50 ms (marks move every 500)
            while not stop.is_set():
                prices = await asyncio.to_thread(client.perp_prices, PERP)
                marks.add((prices["mark"], prices["funding_rate"], prices["next_funding_ns"]))
                await asyncio.sleep(0.05)
        poller = asyncio.create_task(poll())
        async with aiohttp.ClientSession() as session:
            url = ws_url(served.url, f"/stream?streams={low}@markPrice@1s/{low}@markPrice")
            reader = Reader(await session.ws_connect(url))
            await reader.until(lambda m: sum(x["stream"].endswith("@1s") for x in m) >= 4
                               and any(x["stream"] == f"{low}@markPrice" for x in m), 20)
            await reader.ws.close()
        stop.set()
        await poller
        return reader.messages, marks

    messages, marks = asyncio.run(main())
    spec = perp_markets(client.config)[PERP].spec
    tick, scale = spec.tick_minor, spec.quote.scale
    seen = {(format_decimal(mark * tick, scale), format_decimal(rate, 8), next_ns // 1_000_000)
            for mark, rate, next_ns in marks if mark is not None}
    every_second = [m["data"] for m in messages if m["stream"].endswith("@1s")]
    for update in every_second:
        assert update["e"] == "markPriceUpdate" and update["s"] == PERP_SYMBOL and update["P"] == update["p"]
        assert (update["p"], update["r"], update["T"]) in seen, (update, sorted(seen)[:5])
        assert float(update["i"]) > 0
    gaps = [b["E"] - a["E"] for a, b in zip(every_second, every_second[1:])]
    assert all(500 <= gap <= 2_500 for gap in gaps), gaps
