"""Client-side coalescing: a bounded number of calls in flight to each shard;
what callers hand in meanwhile goes together in the next call.

Without it every ``execute_async`` is a Ray call of its own. Under an open
load of small requests (a bot's one to four orders, a load generator's 5 ms
tick) the calls themselves are the cost: this 2-core machine moves about a
thousand small actor calls a second, so at a tenth of the exchange's batched
capacity the calls queued and an order waited 90-160 ms (issue 13). With a
call in flight per shard, an idle shard gets a request at once and a busy one
gets, in one call, everything that arrived while it answered the previous
call: the call rate follows the round trip, and a request waits for at most
the calls ahead of it. The same pattern as the shards' links
(``actors.link.link``) and the liquidator's ``Batcher``; here each caller
hands in a packed chunk of commands and gets its chunk's answers back.

Calls are sent again until answered or until the earliest deadline in the
batch (the commands carry request ids, so a re-sent command is answered from
the shard's replay memory, never applied twice).
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Awaitable, Callable

import ray

RETRYABLE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
RETRY_DELAY_S = 0.2


class _Chunk:
    __slots__ = ("packed", "count", "deadline", "future")

    def __init__(self, packed: bytes, count: int, deadline: float, future: asyncio.Future):
        self.packed = packed            # an orjson array of ``count`` commands
        self.count = count
        self.deadline = deadline        # time.monotonic() after which a failed call is not sent again
        self.future = future


class ShardCalls:
    """``call(shard, packed, count, deadline) -> answers``: ``send(shard, packed) -> ObjectRef``
    makes the Ray call, ``decode(bytes) -> list`` reads its answer (one element per command).
    At most ``in_flight`` calls per shard, each of at most ``commands_max`` commands (a
    chunk is never split)."""

    def __init__(self, send: Callable[[object, bytes], Awaitable], decode: Callable[[bytes], list],
                 in_flight: int, commands_max: int):
        self.send = send
        self.decode = decode
        self.in_flight = in_flight
        self.commands_max = commands_max
        self.loop = None
        self.queues: dict = {}          # shard handle's index -> deque of _Chunk
        self.flying: dict = {}          # shard index -> calls in flight

    async def call(self, shard_index: int, shard, packed: bytes, count: int, deadline: float) -> list:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:       # a new event loop (asyncio.run again): nothing of the old one is left
            self.loop, self.queues, self.flying = loop, {}, {}
        future = loop.create_future()
        self.queues.setdefault(shard_index, deque()).append(_Chunk(packed, count, deadline, future))
        if self.flying.get(shard_index, 0) < self.in_flight:
            self.flying[shard_index] = self.flying.get(shard_index, 0) + 1
            loop.create_task(self._flush(shard_index, shard))
        return await future

    def _take(self, queue: deque) -> list[_Chunk]:
        batch = [queue.popleft()]
        count = batch[0].count
        while queue and count + queue[0].count <= self.commands_max:
            chunk = queue.popleft()
            batch.append(chunk)
            count += chunk.count
        return batch

    async def _flush(self, shard_index: int, shard) -> None:
        queue = self.queues[shard_index]
        try:
            while queue:
                batch = self._take(queue)
                packed = batch[0].packed if len(batch) == 1 else \
                    b"[" + b",".join(chunk.packed[1:-1] for chunk in batch) + b"]"
                try:
                    answers = self.decode(await self._send(shard, packed, min(c.deadline for c in batch)))
                except Exception as exc:       # a shard gone past the deadline, or a bug: fail these callers
                    for chunk in batch:
                        if not chunk.future.done():
                            chunk.future.set_exception(exc)
                    continue
                start = 0
                for chunk in batch:
                    if not chunk.future.done():
                        chunk.future.set_result(answers[start:start + chunk.count])
                    start += chunk.count
        finally:
            self.flying[shard_index] = self.flying.get(shard_index, 1) - 1

    async def _send(self, shard, packed: bytes, deadline: float):
        while True:
            try:
                return await self.send(shard, packed)
            except RETRYABLE:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RETRY_DELAY_S)
