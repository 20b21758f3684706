"""The private user-data stream (issue 18): listen keys over HTTP and the account's events
over a WebSocket, as Binance Spot serves them.

| endpoint | security | what |
|---|---|---|
| ``POST /api/v3/userDataStream`` | USER_STREAM | ``{"listenKey": ...}``: new, or the API key's live one extended |
| ``PUT /api/v3/userDataStream?listenKey=`` | USER_STREAM | keep it alive 60 more minutes: ``{}`` |
| ``DELETE /api/v3/userDataStream?listenKey=`` | USER_STREAM | close it: ``{}`` |
| ``/ws/<listenKey>`` | the key | the account's events (``gateway/user_events.py`` shapes them) |

USER_STREAM (Binance's): the ``X-MBX-APIKEY`` header, no signature; the key must be
live, allow the caller's address and have the read permission (-2015 otherwise). A
listen key expires 60 minutes after its last keep-alive (``gateway/listen_keys.py``);
an expired, closed or unknown one is refused -1125 "This listenKey does not exist."
(over HTTP as an error body; over the WebSocket as that body, then a close with 1008).

A connection reads from the moment it opens (its account is subscribed on the shard
before the handshake ends). One reader per account (``Feed``) long-polls the account's
event stream on its shard and offers the shaped events to every connection of that
account; each connection has its own bounded queue, and a reader that lets it fill is
dropped (closed with 1008) without holding up the others, as on the public streams
(``gateway/streams.py``: the same ``QUEUE_MAX``, heartbeat and ``CONNECTIONS_MAX``, and
at most ``CONNECTIONS_PER_KEY_MAX`` per listen key). Every ``SWEEP_S`` the connections
are checked: one whose listen key expired or was closed, or whose API key was revoked
(its listen key closes at once), gets Binance's ``{"e": "listenKeyExpired", "E",
"listenKey"}`` and is closed. When the account's stream cannot be followed (the reader
fell more than the shard's buffer behind, or the shard restarted and its log began
again: the log has no epoch, so this is seen as its cursor going back) every connection
of the account is closed with 1011, so that no reader misses events silently: it
reconnects. ``/stream?streams=<listenKey>`` is not served: a listen key is read at
``/ws/<listenKey>`` only. Listen keys live beside the API keys (``gateway/keys.py``), in
the store every gateway process on the host shares.
"""
from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import WSCloseCode, web

from gateway.auth import AuthError, Permission
from gateway.http import Refused, json_response, required
from gateway.listen_keys import ListenKeys, ListenKeysFull
from gateway.streams import CONNECTIONS_MAX, HEARTBEAT_S, Subscriber, hold
from gateway.user_events import UserEvents

POLL_S = 1.0                        # the long poll on the account's stream
SWEEP_S = 0.25
CONNECTIONS_PER_KEY_MAX = 10
PATH = "/api/v3/userDataStream"
LISTEN_KEY = ("listenKey", {"type": "string", "minLength": 60, "maxLength": 60}, True)
ENDPOINTS = [
    ("post", PATH, "USER_STREAM", 2, "Start a user data stream: a listen key, live for 60 minutes", []),
    ("put", PATH, "USER_STREAM", 2, "Keep a listen key alive for 60 more minutes", [LISTEN_KEY]),
    ("delete", PATH, "USER_STREAM", 2, "Close a user data stream", [LISTEN_KEY]),
]
WEIGHTS = {"userDataStream": 2, "userDataStream.keepAlive": 2, "userDataStream.close": 2}
UNKNOWN = {"code": -1125, "msg": "This listenKey does not exist."}


def routes(gateway) -> list:
    """The listen-key routes; hands ``/ws/<listenKey>`` to this stream (``Streams.user``)."""
    user = gateway.user_streams = UserStreams(gateway)
    gateway.streams.user = user.handle
    return [web.post(PATH, user.create, name="userDataStream"),
            web.put(PATH, user.keep_alive, name="userDataStream.keepAlive"),
            web.delete(PATH, user.close, name="userDataStream.close")]


class Connection:
    """One WebSocket on a listen key."""

    def __init__(self, ws: web.WebSocketResponse, listen_key: str, api_key: str):
        self.ws, self.listen_key, self.api_key = ws, listen_key, api_key
        self.subscriber = Subscriber({listen_key}, False)

    def end(self, now_ms: int) -> None:
        """Tell the reader its listen key expired, then close (after what is queued before it)."""
        self.subscriber.offer("", {"e": "listenKeyExpired", "E": now_ms, "listenKey": self.listen_key})
        self.close(WSCloseCode.OK, "listen key expired")

    def close(self, code: int, why: str) -> None:
        """Close after what is queued (a full queue drops the reader: closed all the same)."""
        try:
            self.subscriber.queue.put_nowait((code, why.encode()))
        except asyncio.QueueFull:
            self.subscriber.dropped = True


class Feed:
    """One account's events, read once from its shard and offered to each of its connections.
    ``ready`` is done once the account is subscribed (an exception if it could not be)."""

    def __init__(self, client, account_id: int, clock_ms):
        self.client, self.account_id, self.clock_ms = client, account_id, clock_ms
        self.connections: set[Connection] = set()
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        account, shard = self.account_id, self.client.account_shard(self.account_id)
        try:
            cursor = await shard.subscribe.remote(account)
            views, balances = await asyncio.gather(shard.open_orders.remote(account), shard.balances.remote(account))
        except Exception as exc:                    # the shard's stream limit, or the shard unreachable
            self.ready.set_exception(exc)
            return
        events = UserEvents(self.client.config, account, balances or {})
        events.seed(views, self.clock_ms())
        self.ready.set_result(True)
        try:
            why = await self._follow(shard, events, cursor)
        except Exception as exc:                    # the shard is gone
            why = f"the account's stream broke off: {type(exc).__name__}"
        for connection in self.connections:         # no reader may miss events silently: it reconnects
            connection.close(WSCloseCode.INTERNAL_ERROR, why)

    async def _follow(self, shard, events: UserEvents, cursor: int) -> str:
        """Offer the account's events, shaped, to its connections until its stream loses some;
        say why it stopped."""
        account = self.account_id
        while True:
            batch = await shard.events_after.remote(account, cursor, POLL_S)
            if batch["lost"]:
                return "the account's stream moved past this reader"
            if not batch["events"]:
                if await shard.subscribe.remote(account) < cursor:       # a restarted shard's log begins again
                    return "the account's shard restarted"
                continue
            cursor = batch["events"][-1][0]
            now = self.clock_ms()
            payloads = events.shape([event for _, event in batch["events"]], now)
            position = events.positions(await shard.balances.remote(account) or {}, now)
            if position is not None:
                payloads.append(position)
            for payload in payloads:
                for connection in self.connections:
                    connection.subscriber.offer("", payload)


class UserStreams:
    """The listen keys, the connections on them and one ``Feed`` per account read."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.listen_keys = ListenKeys.in_store(gateway.keys)      # shared by the host's gateway processes
        self.feeds: dict[int, Feed] = {}
        self.connections: set[Connection] = set()
        self.dropped = 0                                # readers dropped for being too slow
        self._sweeper: asyncio.Task | None = None

    # ---- HTTP: the listen keys ---------------------------------------------------------------
    def _api_key(self, request: web.Request):
        """The request's API key if it may read a user stream (USER_STREAM), else ``AuthError``."""
        key = self.gateway.keys.get(request.headers.get("X-MBX-APIKEY", ""))
        if key is not None and key.revoked:
            self.listen_keys.close_api_key(key.key)
        if key is None or key.revoked or (key.ips and (request.remote or "") not in key.ips) \
                or Permission.READ not in key.permissions:
            raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
        return key

    async def create(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        try:
            listen_key = self.listen_keys.create(key.key, key.account_id, self.gateway.clock_ms())
        except ListenKeysFull:
            raise Refused(503, -1008, "Server is currently overloaded with other requests. "
                                      "Please try again in a few minutes.") from None
        return json_response({"listenKey": listen_key})

    async def keep_alive(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        params, _, _ = await self.gateway.params(request)
        if not self.listen_keys.keep_alive(required(params, "listenKey"), key.key, self.gateway.clock_ms()):
            raise Refused(400, **UNKNOWN)
        return json_response({})

    async def close(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        params, _, _ = await self.gateway.params(request)
        if not self.listen_keys.close(required(params, "listenKey"), key.key, self.gateway.clock_ms()):
            raise Refused(400, **UNKNOWN)
        return json_response({})

    # ---- the WebSocket ---------------------------------------------------------------------------
    async def handle(self, request: web.Request, listen_key: str) -> web.WebSocketResponse:
        """Serve ``/ws/<listenKey>``: the account's events until the key ends or the reader goes."""
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4_096)
        found = self.listen_keys.live(listen_key, self.gateway.clock_ms())
        api_key = self.gateway.keys.get(found.api_key) if found else None
        if api_key is None or api_key.revoked:
            return await _refuse(ws, request, orjson.dumps(UNKNOWN).decode())
        if len(self.connections) >= CONNECTIONS_MAX or \
                sum(c.listen_key == listen_key for c in self.connections) >= CONNECTIONS_PER_KEY_MAX:
            return await _refuse(ws, request, "too many connections")
        feed = self.feeds.get(found.account_id)
        if feed is None or feed.task.done():
            feed = self.feeds[found.account_id] = Feed(self.gateway.client, found.account_id, self.gateway.clock_ms)
        connection = Connection(ws, listen_key, found.api_key)
        feed.connections.add(connection)
        self.connections.add(connection)
        try:
            try:
                await asyncio.shield(feed.ready)       # subscribed before the handshake ends: nothing is missed
            except Exception:
                return await _refuse(ws, request, "the account's stream cannot start now; try again later")
            await ws.prepare(request)
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = asyncio.create_task(self._sweep())
            sender = asyncio.create_task(self._send(connection))
            try:
                await hold(ws)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            return ws
        finally:
            self._leave(feed, connection)

    def _leave(self, feed: Feed, connection: Connection) -> None:
        self.connections.discard(connection)
        feed.connections.discard(connection)
        if not feed.connections and self.feeds.get(feed.account_id) is feed:
            del self.feeds[feed.account_id]
            feed.task.cancel()

    async def _send(self, connection: Connection) -> None:
        self.dropped += await connection.subscriber.pump(connection.ws)

    async def _sweep(self) -> None:
        """End the connections whose listen key is no longer live or whose API key was revoked."""
        while self.connections:
            now = self.gateway.clock_ms()
            for connection in list(self.connections):
                api_key = self.gateway.keys.get(connection.api_key)
                if api_key is None or api_key.revoked:
                    self.listen_keys.close_api_key(connection.api_key)
                if self.listen_keys.live(connection.listen_key, now) is None:
                    self.connections.discard(connection)      # (its handler leaves its feed when it closes)
                    connection.end(now)
            await asyncio.sleep(SWEEP_S)


async def _refuse(ws: web.WebSocketResponse, request: web.Request, message: str) -> web.WebSocketResponse:
    """Open ``ws``, say why it is refused and close it (1008)."""
    await ws.prepare(request)
    await ws.send_str(message)
    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=message.encode()[:120])
    return ws
