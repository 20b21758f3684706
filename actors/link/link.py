"""Link: an actor's at-least-once, one-in-flight send queue to one peer.

Every message one of our actors sends another (a shard's requests to a
market or the pool, a market's or the pool's pushes to a shard) goes through
a ``Link``. An entry is ``(number, tag, payload)``; the link numbers its
entries 1, 2, 3... (the shard's ``rseq``, the market's push entry number) and
the receiver keeps the last number it applied, so it drops a re-send and
refuses a gap: delivery at least once, effect exactly once.

An entry moves through these places:

- ``staged``: applied here, its journal record not committed yet: it must not
  leave (a crash would forget it while the peer acted on it);
- ``queued``: durable here, waiting for the next call;
- ``sending``: in the call in flight;
- ``handed``: given to the peer in the answer to a call it made
  (``hand_over``: a market answers a shard's ``submit`` with the shard's
  entries, which saves the push on the critical path), kept until the peer
  acknowledges them; the next call, if one is needed for later entries,
  carries them again (the peer skips what it has).

The owner stages entries while it applies a message, takes ``marks()`` (the
last number staged per link) before it awaits its group commit, and then
``release(marks)``: the entries up to each mark are durable and may go. One
call per link is in flight at a time, re-sent until the peer answers
(``Peers.call`` retries through restarts); what is released meanwhile goes
together in the next call (adaptive batching: one entry alone when the link
is idle, thousands under load). One in flight keeps every link in order,
which Ray does not promise for async actors otherwise.

The peer answers a call with the last number it has applied, and may say it
in its own calls (``acknowledge``); entries at or below it are dropped (a
stale, lower number changes nothing). ``learn`` (optional) asks the peer that
number once before the first call after a start, so a restarted sender does
not re-send what the peer already has.

Snapshots keep ``pending()`` (everything not acknowledged, in order) and the
last number given; ``restore`` puts them back as queued, durable entries.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Hashable, Iterable

Send = Callable[[list], Awaitable[int]]          # entries -> the last number the peer has applied
Learn = Callable[[], Awaitable[int]]             # -> the same, asked before the first send


class Link:
    __slots__ = ("send", "learn", "number", "staged", "queued", "sending", "handed", "inflight", "acked", "calls")

    def __init__(self, send: Send, learn: Learn | None = None):
        self.send = send
        self.learn = learn
        self.number = 0                  # the last number given
        self.staged: list = []
        self.queued: list = []
        self.sending: list = []
        self.handed: list = []
        self.inflight = False
        self.acked: int | None = None    # the last number the peer confirmed (None: not heard yet)
        self.calls = 0

    def stage(self, tag, payload) -> int:
        """Number ``payload`` and hold it until its journal record is durable; return its number."""
        self.number += 1
        self.staged.append((self.number, tag, payload))
        return self.number

    def release(self, upto: int) -> None:
        """The staged entries numbered up to ``upto`` are durable: queue them to go."""
        staged = self.staged
        count = 0
        for entry in staged:
            if entry[0] > upto:
                break
            count += 1
        self.queued.extend(staged[:count])
        del staged[:count]

    def kick(self) -> None:
        """Start a call if entries are queued and none is in flight."""
        if not self.inflight and self.queued:
            self.inflight = True
            asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            if self.acked is None and self.learn is not None:
                self.acknowledge(await self.learn())
            while self.queued:
                self.sending, self.queued, self.handed = self.handed + self.queued, [], []
                self.acknowledge(await self.send(self.sending))
                self.calls += 1
                self.sending = []
        except BaseException:                    # the call never finished (cancelled, or a bug here):
            self.queued[:0] = self.sending       # keep its entries, first in line for the next call
            self.sending = []
            raise
        finally:
            self.inflight = False

    def acknowledge(self, upto: int) -> None:
        """The peer has applied every entry up to ``upto`` (said in its answer, or in a call of its own)."""
        if self.acked is not None and upto < self.acked:         # a stale answer: it knows less than we do
            return
        self.acked = upto
        queued = self.queued
        if queued and queued[0][0] <= upto:
            self.queued = [entry for entry in queued if entry[0] > upto]
        handed = self.handed
        if handed and handed[0][0] <= upto:
            self.handed = [entry for entry in handed if entry[0] > upto]

    def hand_over(self) -> list:
        """Every durable entry the peer has not acknowledged, in order, for the answer to
        its call; what was queued waits for no call of its own now (``handed``)."""
        entries = self.sending + self.handed + self.queued
        self.handed.extend(self.queued)
        self.queued = []
        return entries

    def take(self) -> list:
        """Everything queued or handed over, removed (an offline drain: ``exchange verify``
        delivers it by hand)."""
        entries, self.handed, self.queued = self.handed + self.queued, [], []
        return entries

    def pending(self) -> list:
        """Every entry not acknowledged yet, in number order (for a snapshot)."""
        return self.sending + self.handed + self.queued + self.staged

    def restore(self, number: int, entries: Iterable) -> None:
        """Back from a snapshot: the last number given, and the pending entries (durable)."""
        self.number = number
        self.queued = list(entries)

    def __len__(self) -> int:
        return len(self.staged) + len(self.queued) + len(self.sending) + len(self.handed)


class Links:
    """An actor's links, one per peer key (a market's name, a shard's index).

    ``send(key, entries)`` and ``learn(key)`` are the actor's calls to one peer."""

    def __init__(self, keys: Iterable[Hashable], send: Callable[[Hashable, list], Awaitable[int]],
                 learn: Callable[[Hashable], Awaitable[int]] | None = None):
        self.by_key: dict = {key: Link(_bound(send, key), None if learn is None else _bound(learn, key))
                             for key in keys}

    def __getitem__(self, key) -> Link:
        return self.by_key[key]

    def __contains__(self, key) -> bool:
        return key in self.by_key

    def items(self):
        return self.by_key.items()

    def marks(self) -> dict:
        """Per link with staged entries, the last number staged (what the next commit makes durable)."""
        return {key: link.number for key, link in self.by_key.items() if link.staged}

    def release(self, marks: dict) -> None:
        """After a commit: release each link up to its mark and start the calls."""
        for key, upto in marks.items():
            link = self.by_key[key]
            link.release(upto)
            link.kick()

    def release_all(self) -> None:
        """Everything staged is durable (after recovery): queue it, without starting calls."""
        for link in self.by_key.values():
            link.release(link.number)

    def kick(self) -> None:
        """Start a call on every link with queued entries (after a restart, on any new message)."""
        for link in self.by_key.values():
            if link.queued:
                link.kick()

    def backlog(self) -> int:
        """The most entries pending on any one link."""
        return max((len(link) for link in self.by_key.values()), default=0)

    def unsent(self) -> int:
        """Entries durable but not acknowledged (queued, in flight or handed over), over all links."""
        return sum(len(link.queued) + len(link.sending) + len(link.handed) for link in self.by_key.values())

    def staged(self) -> int:
        """Entries waiting for their journal commit, over all links."""
        return sum(len(link.staged) for link in self.by_key.values())

    def idle(self) -> bool:
        """Nothing pending on any link."""
        return not any(len(link) for link in self.by_key.values())


def _bound(call, key):
    async def bound(*args):
        return await call(key, *args)
    return bound
