"""Public WebSocket streams in Binance's shapes (issue 18): trades, depth diffs, the
book ticker and the perpetuals' mark price and funding.

Connect to ``/ws/<stream>[/<stream>...]`` (each message is the stream's payload) or
``/stream?streams=<stream>/<stream>`` (each is ``{"stream": name, "data": payload}``).
Streams, per symbol (lower case, as Binance's):

- ``<symbol>@trade``: every trade, from the market actor's event stream:
  ``{"e": "trade", "E", "s", "t" (the market's sequence), "p", "q", "T", "m" (the buyer
  was the maker)}``;
- ``<symbol>@depth`` (or ``@depth@100ms``): the levels that changed, with absolute
  quantities ("0" when a level is gone): ``{"e": "depthUpdate", "E", "s", "U", "u", "b",
  "a"}``. ``U``..``u`` are the market sequence numbers the update covers; each update's
  ``U`` is the previous one's ``u`` + 1. A client keeps a local book as with Binance:
  buffer the stream, take ``GET /api/v3/depth`` (its ``lastUpdateId``), drop updates with
  ``u`` <= it, apply the rest in order; an update whose ``U`` is not the last ``u`` + 1
  (the market restarted) means: start again from a snapshot. Every ``DEPTH_EVERY_S``
  the gateway asks the market which levels were touched since its last read
  (``exchange/matching/depth_changes.py``) and sends each with its quantity now, at
  any depth: a level made and taken between two reads is sent as gone, so a snapshot
  that caught it is corrected. An update is sent whenever the sequence moved, with
  empty ``b``/``a`` if no level did, so ``u`` always reaches the snapshot's
  ``lastUpdateId``;
- ``<symbol>@bookTicker``: the best bid and ask when they change;
- ``<perpetual>@markPrice`` (every 3 s) or ``@markPrice@1s`` (every second), for a
  perpetual market (its name without dashes: ``btcusdtperp@markPrice``), Binance USD-M's
  shape from the market's price view and the underlying's index: ``{"e":
  "markPriceUpdate", "E", "s", "p" (the mark), "i" (the index), "P" (the estimated
  settle price: funding settles at the mark), "r" (the funding rate: the last settled
  one, as the market exposes no estimate of the next), "T" (the next funding time)}``;
  nothing before the market's first mark.

When an actor a producer reads breaks off (a market killed and started again by Ray),
the producer starts again after ``RETRY_S``: the trade stream sends each trade once
(nothing at or below the last ``t`` sent), the depth stream goes on from the market's
state, with a gap in ``U``/``u`` if the gateway can no longer know what changed.

A path ``/ws/<name>`` without an ``@`` names no public stream: it is handed to the
user-data stream (``user``: ``gateway/user_stream.py``) as a listen key.

Limits: at most ``CONNECTIONS_MAX`` connections and ``STREAMS_MAX`` streams per
connection. Each connection has its own queue of ``QUEUE_MAX`` messages: a reader that
lets it fill is **dropped** (closed with 1008), so a slow client never holds up the
others. The server pings every ``HEARTBEAT_S``; a client that does not answer is
closed. A connection lives at most ``LIFETIME_S`` (24 hours, Binance's): then it is
closed with 1001 and the client reconnects.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from aiohttp import WSCloseCode, web

from exchange.core.money import format_decimal
from exchange.matching.orders import Side
from exchange.messages.records import Fill
from exchange.perp.funding import FUNDING_ONE
from gateway import binance

log = logging.getLogger("exchange.gateway")

DEPTH_EVERY_S = 0.1
RETRY_S = 0.5                       # a producer whose actor broke off (restarting) starts again after this
CONNECTIONS_MAX = 1_000
STREAMS_MAX = 200
QUEUE_MAX = 2_000
HEARTBEAT_S = 30.0
LIFETIME_S = 24 * 3600.0            # a connection's longest life (Binance's): then 1001, and the client reconnects
MARK_EVERY_S = 1.0
KINDS = ("trade", "depth", "depth@100ms", "bookTicker")
MARK_KINDS = ("markPrice", "markPrice@1s")
FUNDING_DECIMALS = len(str(FUNDING_ONE)) - 1


def _ms() -> int:
    return time.time_ns() // 1_000_000


class Subscriber:
    """One connection: the streams it reads and its queue."""

    def __init__(self, streams: set[str], combined: bool):
        self.streams, self.combined = streams, combined
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX)
        self.dropped = False

    def offer(self, stream: str, payload: dict) -> None:
        """Queue ``payload`` of ``stream``; a full queue marks this reader to be dropped."""
        if self.dropped:
            return
        message = {"stream": stream, "data": payload} if self.combined else payload
        try:
            self.queue.put_nowait(orjson.dumps(message).decode())
        except asyncio.QueueFull:
            self.dropped = True                         # its sender closes it after the message in hand

    async def pump(self, ws: web.WebSocketResponse) -> bool:
        """Send the queued messages to ``ws`` until this reader is dropped (close 1008; True) or
        a ``(code, reason)`` in the queue closes it (False)."""
        while True:
            message = await self.queue.get()
            if self.dropped:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow: the queue filled up")
                return True
            if type(message) is tuple:
                await ws.close(code=message[0], message=message[1])
                return False
            await ws.send_str(message)


async def hold(ws: web.WebSocketResponse) -> None:
    """Read (and ignore: clients only answer pings here) what the client sends until it
    closes, or close it with 1001 once it has been open ``LIFETIME_S``."""
    async def drain() -> None:
        async for _ in ws:
            pass
    try:
        await asyncio.wait_for(drain(), LIFETIME_S)
    except asyncio.TimeoutError:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"connection lifetime reached: reconnect")


class Streams:
    """The public streams of every spot and perpetual market, fanned out to the subscribers;
    ``user`` serves ``/ws/<listenKey>`` (set by the user-data stream's section)."""

    def __init__(self, client, symbols: dict):
        self.client, self.symbols = client, symbols          # BTCUSDT -> MarketSpec
        config = getattr(client, "config", None)
        self.perps = binance.perp_symbols(config) if config else {}
        self.user = None
        self.subscribers: set[Subscriber] = set()
        self.tasks: list[asyncio.Task] = []
        self.dropped = 0                                # readers dropped for being too slow
        self.trade_seq: dict[str, int] = {}             # symbol -> the last trade sent (``t``)

    def start(self) -> None:
        for symbol, spec in self.symbols.items():
            self.tasks.append(asyncio.create_task(self._supervised(self._trades, symbol, spec)))
            self.tasks.append(asyncio.create_task(self._supervised(self._depth, symbol, spec)))
        if self.perps:
            self.tasks.append(asyncio.create_task(self._supervised(self._marks)))

    async def _supervised(self, producer, *args) -> None:
        """Run ``producer`` for ever: when the actor it reads breaks off (killed, restarting)
        it starts again from nothing, which each producer makes safe for its readers."""
        while True:
            try:
                await producer(*args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream producer %s%s broke off (%s: %s); starting again", producer.__name__,
                            args[:1], type(exc).__name__, exc)
                await asyncio.sleep(RETRY_S)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _publish(self, stream: str, payload: dict) -> None:
        for subscriber in self.subscribers:
            if stream in subscriber.streams:
                subscriber.offer(stream, payload)

    def _wanted(self, stream: str) -> bool:
        return any(stream in s.streams for s in self.subscribers)

    # ---- producers --------------------------------------------------------------------------
    async def _trades(self, symbol: str, spec) -> None:
        """Every trade once, in order: a trade is sent only if its sequence is past the last one
        sent, so a restarted market's log, read again from its start (its replay publishes
        what it had sent before), repeats nothing."""
        market, name = self.client.handles.markets[spec.name], f"{symbol.lower()}@trade"
        cursor = 0                          # what came before anyone subscribed is read and passed over
        while True:
            batch = await market.events_after.remote(cursor, 1.0)
            if batch["last"] < cursor:      # a restarted market's log begins again
                cursor = 0
                continue
            for cursor, event in batch["events"]:
                if type(event) is Fill and event.seq > self.trade_seq.get(symbol, 0):
                    self.trade_seq[symbol] = event.seq
                    if not self._wanted(name):
                        continue
                    self._publish(name, {
                        "e": "trade", "E": _ms(), "s": symbol, "t": event.seq,
                        "p": format_decimal(event.price, spec.quote.scale),
                        "q": format_decimal(event.quantity, spec.base.scale), "T": event.ts_ns // 1_000_000,
                        "m": event.taker_side == int(Side.SELL), "M": True})

    async def _depth(self, symbol: str, spec) -> None:
        market, low = self.client.handles.markets[spec.name], symbol.lower()
        names = (f"{low}@depth", f"{low}@depth@100ms")
        ticker = f"{low}@bookTicker"
        last_seq, top = None, None
        while True:
            change = None if last_seq is None else await market.depth_changes.remote(last_seq)
            if change is None:      # the first read, or the market restarted: go on from now, and the
                last_seq = (await market.depth.remote(1))["seq"]    # next U leaves a gap (clients resync)
            else:
                if change["seq"] != last_seq and any(self._wanted(n) for n in names):
                    update = {"e": "depthUpdate", "E": _ms(), "s": symbol, "U": last_seq + 1, "u": change["seq"],
                              "b": _levels(change["bids"], spec), "a": _levels(change["asks"], spec)}
                    for name in names:
                        self._publish(name, update)
                best = change["best"]
                if best != top and self._wanted(ticker):
                    (bid,), (ask,) = best[0] or [(0, 0)], best[1] or [(0, 0)]
                    self._publish(ticker, {"u": change["seq"], "s": symbol,
                                           "b": format_decimal(bid[0], spec.quote.scale),
                                           "B": format_decimal(bid[1], spec.base.scale),
                                           "a": format_decimal(ask[0], spec.quote.scale),
                                           "A": format_decimal(ask[1], spec.base.scale)})
                last_seq, top = change["seq"], best
            await asyncio.sleep(DEPTH_EVERY_S)

    async def _marks(self) -> None:
        """Every ``MARK_EVERY_S``, the marks of the perpetuals someone reads (``@markPrice``
        every third time)."""
        handles, tick = self.client.handles, 0
        while True:
            await asyncio.sleep(MARK_EVERY_S)
            tick += 1
            chosen = []
            for symbol, perp in self.perps.items():
                names = [f"{symbol.lower()}@{kind}" for kind in MARK_KINDS if kind.endswith("@1s") or tick % 3 == 0]
                names = [name for name in names if self._wanted(name)]
                if names:
                    chosen.append((symbol, perp, names))
            if not chosen:
                continue
            views = [handles.markets[perp.name].price_view.remote() for _, perp, _ in chosen]
            index, *views = await asyncio.gather(handles.index.index_prices.remote(), *views)
            for (symbol, perp, names), view in zip(chosen, views):
                if view["mark"] is not None:
                    update = _mark_update(symbol, perp, view, index.get(perp.spec.base.name))
                    for name in names:
                        self._publish(name, update)

    # ---- the connections ----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        combined = request.path.startswith("/stream")
        names = request.query.get("streams", "") if combined else request.match_info.get("streams", "")
        if self.user is not None and not combined and "@" not in names and "/" not in names:
            return await self.user(request, names)              # a listen key: the account's own stream
        streams = {n for n in names.split("/") if n}
        unknown = sorted(n for n in streams if not self._known(n))
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4_096)
        await ws.prepare(request)
        if unknown or not streams or len(streams) > STREAMS_MAX or len(self.subscribers) >= CONNECTIONS_MAX:
            why = (f"unknown streams: {', '.join(unknown)}" if unknown else "no streams" if not streams else
                   f"at most {STREAMS_MAX} streams" if len(streams) > STREAMS_MAX else "too many connections")
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=why.encode()[:120])
            return ws
        subscriber = Subscriber(streams, combined)
        self.subscribers.add(subscriber)
        sender = asyncio.create_task(self._send(ws, subscriber))
        try:
            await hold(ws)
        finally:
            self.subscribers.discard(subscriber)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send(self, ws: web.WebSocketResponse, subscriber: Subscriber) -> None:
        self.dropped += await subscriber.pump(ws)

    def _known(self, stream: str) -> bool:
        symbol, _, kind = stream.partition("@")
        if kind in MARK_KINDS:
            return symbol.upper() in self.perps
        return symbol.upper() in self.symbols and kind in KINDS


def _mark_update(symbol: str, perp, view: dict, index: int | None) -> dict:
    """A ``markPriceUpdate`` from a perpetual market's price view (ticks) and its underlying's
    index (quote minor units)."""
    spec, next_ns = perp.spec, view["next_funding_ns"]
    mark = format_decimal(view["mark"] * spec.tick_minor, spec.quote.scale)
    return {"e": "markPriceUpdate", "E": _ms(), "s": symbol, "p": mark,
            "i": None if index is None else format_decimal(index, spec.quote.scale), "P": mark,
            "r": format_decimal(view["funding_rate"], FUNDING_DECIMALS),
            "T": 0 if next_ns is None else next_ns // 1_000_000}


def _levels(levels: list[tuple[int, int]], spec) -> list[list[str]]:
    """Levels as Binance writes them: ``[price, quantity]`` strings, "0" for a level gone."""
    price, qty = spec.quote.scale, spec.base.scale
    return [[format_decimal(p, price), format_decimal(q, qty)] for p, q in levels]
