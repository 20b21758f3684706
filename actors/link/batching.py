"""Adaptive batching of calls to a peer: one call in flight per (peer, method);
what callers queue meanwhile goes together in the next call.

A caller awaits its own answer; the batcher sends ``method(list of items)``
and hands each caller its element of the returned list. One item goes alone
when the link is idle, hundreds together under load (the same pattern as the
shards' outboxes). Calls are retried until answered (``Peers.call``), so the
items must be safe to send again: commands with request ids the receiver
de-duplicates, or reads.
"""
from __future__ import annotations

import asyncio

from typing import Callable

from actors.link.peers import Peers
from actors.link.wire import pack


class Batcher:
    """``leading_args`` per method go before the packed list (a capability);
    ``decoders`` per method read the packed answer (``actors.link.wire``)."""

    def __init__(self, peers: Peers, leading_args: dict[str, tuple] | None = None,
                 decoders: dict[str, Callable] | None = None):
        self.peers = peers
        self.leading_args = leading_args or {}
        self.decoders = decoders or {}
        self.queues: dict[tuple, list] = {}
        self.inflight: set = set()
        self.calls = 0

    async def call(self, key, method: str, item):
        """Queue ``item`` for ``method`` on peer ``key``; return its answer."""
        future = asyncio.get_running_loop().create_future()
        self.queues.setdefault((key, method), []).append((item, future))
        if (key, method) not in self.inflight:
            self.inflight.add((key, method))
            asyncio.get_running_loop().create_task(self._flush(key, method))
        return await future

    async def _flush(self, key, method: str) -> None:
        link = (key, method)
        try:
            while self.queues.get(link):
                batch, self.queues[link] = self.queues[link], []
                packed = await self.peers.call(key, method, *self.leading_args.get(method, ()),
                                               pack([item for item, _ in batch]))
                answers = self.decoders[method](packed)
                self.calls += 1
                for (_, future), answer in zip(batch, answers):
                    if not future.done():
                        future.set_result(answer)
        except Exception as exc:          # a bug, not a peer restart (Peers.call retries those): fail the callers
            for _, future in self.queues.pop(link, []):
                if not future.done():
                    future.set_exception(exc)
            raise
        finally:
            self.inflight.discard(link)
