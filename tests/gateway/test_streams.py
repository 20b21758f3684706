"""The public WebSocket streams over a real WebSocket client (aiohttp's): a client keeps a
local book from the REST snapshot and the depth diffs, as Binance's clients do, while
orders arrive from another thread, and ends with the server's book; trades arrive as they
happen; an unknown stream is refused; a reader that never reads is dropped without
holding up the others."""
from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time

import aiohttp

from exchange.matching.orders import Side, TimeInForce
from exchange.messages.records import CancelOrder
from gateway import streams
from gateway.server import Gateway
from tests.gateway.conftest import Served

SYMBOL, MARKET = "BTCUSDT", "BTC-USDT"


def load(client, accounts, seconds: float, seed: int) -> int:
    """Place and cancel orders around 50,000 for ``seconds`` (a maker's requotes and a taker's
    crosses), 20 every 10 ms, through the Python client; how many were sent."""
    rng, resting, sent = random.Random(seed), [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = []
        for _ in range(20):
            account = rng.choice(accounts)
            if resting and rng.random() < 0.3:
                who, order_id = resting.pop(rng.randrange(len(resting)))
                batch.append(CancelOrder(client.next_request_id(), 0, who, MARKET, order_id))
                continue
            side = rng.choice((Side.BUY, Side.SELL))
            price = 50_000 + rng.randint(-30, 30) * (1 if side == Side.BUY else -1) - (10 if side == Side.BUY else -10)
            tif = TimeInForce.IOC if rng.random() < 0.2 else TimeInForce.GTC
            batch.append(client.order(account, MARKET, side, f"0.{rng.randint(1, 9)}", f"{price}.00", tif=tif))
        for cmd, events in zip(batch, client.execute(batch)):
            for event in events:
                if type(event).__name__ == "OrderBooked":
                    resting.append((cmd.account_id, event.order_id))
        sent += len(batch)
        time.sleep(0.01)
    return sent


def test_a_local_book_kept_from_the_snapshot_and_the_diffs_ends_as_the_servers(venue):
    client, _, served = venue
    accounts = [31_101, 31_102]                 # market makers: the rulebook's order rates do not stop them
    for account in accounts:
        assert client.open_account(account, "market_maker").ok
        assert client.deposit(account, "USDT", "10000000").ok and client.deposit(account, "BTC", "1000").ok
    result = {}

    async def follow() -> None:
        async with aiohttp.ClientSession() as session:
            async def depth() -> dict:          # the REST snapshot, read without blocking the stream's reader
                async with session.get(f"{served.url}/api/v3/depth", params={"symbol": SYMBOL, "limit": 1000}) as r:
                    return await r.json()
            url = served.url.replace("http", "ws") + f"/stream?streams={SYMBOL.lower()}@depth/{SYMBOL.lower()}@trade"
            async with session.ws_connect(url) as ws:
                loader = threading.Thread(target=lambda: result.update(sent=load(client, accounts, 4.0, 11)))
                loader.start()
                await asyncio.sleep(0.5)                                # some diffs before the snapshot
                snapshot = await depth()
                book = {"bids": {p: q for p, q in snapshot["bids"]}, "asks": {p: q for p, q in snapshot["asks"]}}
                seen = {"u": snapshot["lastUpdateId"], "applied": 0, "trades": 0}

                async def follow_one(timeout_s: float = 10) -> None:  # the next message, applied as Binance says
                    message = await asyncio.wait_for(ws.receive_json(), timeout_s)
                    stream, update = message["stream"], message["data"]
                    if stream.endswith("@trade"):
                        seen["trades"] += 1
                    elif update["u"] > seen["u"]:               # else covered by the snapshot
                        if seen["applied"]:
                            assert update["U"] == seen["u"] + 1, "a gap in the depth stream"
                        else:
                            assert update["U"] <= seen["u"] + 1, "the snapshot is older than the stream"
                        for side, key in (("bids", "b"), ("asks", "a")):
                            for price, qty in update[key]:
                                if float(qty) == 0:
                                    book[side].pop(price, None)
                                else:
                                    book[side][price] = qty
                        seen.update(u=update["u"], applied=seen["applied"] + 1)

                while loader.is_alive():
                    with contextlib.suppress(asyncio.TimeoutError):     # the loader may stop between two waits
                        await follow_one(0.5)
                loader.join()
                for _ in range(20):             # the last snapshot the stream lands on exactly (others may trade)
                    final = await depth()
                    while seen["u"] < final["lastUpdateId"]:
                        await follow_one()      # every move of the sequence is sent: a timeout here fails
                    if seen["u"] == final["lastUpdateId"]:
                        break
                else:
                    raise AssertionError("the stream never landed on a snapshot's lastUpdateId")
                applied, trades = seen["applied"], seen["trades"]
                result.update(book=book, final=final, applied=applied, trades=trades)

    asyncio.run(follow())
    final = result["final"]
    assert result["sent"] > 200 and result["applied"] > 5 and result["trades"] > 0
    assert len(final["bids"]) + len(final["asks"]) > 5                        # a book worth comparing
    for side in ("bids", "asks"):
        assert sorted(result["book"][side].items()) == sorted((p, q) for p, q in final[side]), side


def test_an_unknown_stream_or_none_is_refused_with_its_reason(venue):
    client, _, served = venue

    async def main() -> list:
        closes = []
        async with aiohttp.ClientSession() as session:
            ws_url = served.url.replace("http", "ws")
            for path in ("/ws/dogeusdt@trade", "/ws/btcusdt@kline_1m", "/stream?streams="):
                async with session.ws_connect(ws_url + path) as ws:
                    message = await ws.receive()
                    closes.append((message.type, message.data, message.extra))
        return closes

    closes = asyncio.run(main())
    assert [c[:2] for c in closes] == [(aiohttp.WSMsgType.CLOSE, 1008)] * 3
    assert "unknown streams: dogeusdt@trade" in closes[0][2] and "no streams" in closes[2][2]


def test_a_connection_is_closed_when_its_life_is_over_and_an_idle_http_one_when_idle(venue, monkeypatch):
    """WebSockets live ``LIFETIME_S`` (24 hours; 1.5 s here), then 1001; a kept-alive HTTP
    connection that sends nothing for ``idle_s`` is closed by the server."""
    client, keys, served = venue
    monkeypatch.setattr(streams, "LIFETIME_S", 1.5)

    async def main() -> tuple:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(served.url.replace("http", "ws") + "/ws/btcusdt@bookTicker") as ws:
                opened = time.monotonic()
                while (message := await ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT:
                    pass
                return message.type, message.data, time.monotonic() - opened

    kind, code, lived = asyncio.run(main())
    assert (kind, code) == (aiohttp.WSMsgType.CLOSE, 1001) and 1.4 < lived < 8
    brief = Served(Gateway(client, keys), idle_s=1.0)
    try:
        with socket.create_connection(("127.0.0.1", brief.port), timeout=10) as conn:
            conn.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert conn.recv(4096) == b""                       # closed by the server, not by us
            assert 0.5 < time.monotonic() - started < 8
    finally:
        brief.stop()


def test_a_reader_that_lets_its_queue_fill_is_dropped_and_the_others_go_on():
    from gateway.streams import QUEUE_MAX, Streams, Subscriber

    async def main() -> tuple:
        hub = Streams(None, {})
        slow, fast = Subscriber({"btcusdt@trade"}, False), Subscriber({"btcusdt@trade"}, True)
        hub.subscribers |= {slow, fast}
        for n in range(QUEUE_MAX + 5):
            hub._publish("btcusdt@trade", {"n": n})
            fast.queue.get_nowait()                              # the fast one reads each at once
        return slow.dropped, slow.queue.qsize(), fast.dropped

    assert asyncio.run(main()) == (True, QUEUE_MAX, False)
