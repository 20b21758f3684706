"""The one send queue (``actors/link/link.py``) on its own, with a scripted peer:
nothing staged leaves before its commit, one call in flight, what queues
meanwhile goes together in order, acknowledgements drop what the peer has,
and an interrupted call loses nothing. A hypothesis run interleaves staging,
commits and answers at random and checks the peer receives every durable
entry, in order, with no gap, and never an undurable one."""
from __future__ import annotations

import asyncio

from hypothesis import given, settings, strategies as st

from actors.link.link import Link, Links


class Peer:
    """A receiver that applies entries in number order, skipping re-sends, and answers
    each call only when the test lets it (``answer``)."""

    def __init__(self):
        self.calls: list[list[int]] = []
        self.applied = 0
        self.gate: asyncio.Event | None = None

    async def receive(self, entries: list) -> int:
        self.calls.append([e[0] for e in entries])
        if self.gate is not None:
            await self.gate.wait()
        for number, _, _ in entries:
            if number == self.applied + 1:
                self.applied = number
        return self.applied


async def settle():
    for _ in range(10):
        await asyncio.sleep(0)


def test_staged_entries_leave_only_once_released_up_to_the_mark():
    async def run():
        peer = Peer()
        link = Link(peer.receive)
        link.stage("a", 1), link.stage("b", 2)
        mark = link.number
        link.stage("c", 3)                         # staged after the mark: its commit is a later one
        link.kick()
        await settle()
        assert peer.calls == []                    # nothing durable yet
        link.release(mark)
        link.kick()
        await settle()
        assert peer.calls == [[1, 2]] and [e[0] for e in link.staged] == [3]
        link.release(link.number)
        link.kick()
        await settle()
        assert peer.calls == [[1, 2], [3]] and len(link) == 0 and link.acked == 3
    asyncio.run(run())


def test_one_call_in_flight_and_what_queues_meanwhile_goes_together():
    async def run():
        peer = Peer()
        peer.gate = asyncio.Event()
        link = Link(peer.receive)
        link.stage(None, "x")
        link.release(link.number)
        link.kick()
        await settle()
        for _ in range(5):
            link.stage(None, "y")
            link.release(link.number)
            link.kick()                            # in flight already: no second call
        await settle()
        assert peer.calls == [[1]] and len(link.sending) == 1 and len(link.queued) == 5
        peer.gate.set()
        await settle()
        assert peer.calls == [[1], [2, 3, 4, 5, 6]] and peer.applied == 6 and not link.inflight
    asyncio.run(run())


def test_learn_asks_the_peer_once_and_skips_what_it_already_has():
    async def run():
        peer = Peer()
        peer.applied = 2                           # it applied 1 and 2 before this sender restarted
        asked = []

        async def learn():
            asked.append(1)
            return peer.applied
        link = Link(peer.receive, learn)
        link.restore(3, [(1, None, "a"), (2, None, "b"), (3, None, "c")])
        link.kick()
        await settle()
        link.stage(None, "d")
        link.release(link.number)
        link.kick()
        await settle()
        assert asked == [1] and peer.calls == [[3], [4]] and peer.applied == 4
    asyncio.run(run())


def test_an_interrupted_call_puts_its_entries_back_first_in_line():
    async def run():
        peer = Peer()
        peer.gate = asyncio.Event()
        link = Link(peer.receive)
        for payload in "ab":
            link.stage(None, payload)
        link.release(link.number)
        link.kick()
        await settle()
        link.stage(None, "c")
        link.release(link.number)
        task = next(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
        task.cancel()                              # the actor's loop shuts the call down mid-flight
        await settle()
        assert [e[0] for e in link.pending()] == [1, 2, 3] and not link.inflight
        peer.gate.set()
        link.kick()
        await settle()
        assert peer.applied == 3
    asyncio.run(run())


def test_links_release_only_the_marked_links_and_report_their_backlog():
    async def run():
        peers = {"m1": Peer(), "m2": Peer()}
        links = Links(peers, lambda key, entries: peers[key].receive(entries))
        links["m1"].stage(None, 1)
        marks = links.marks()
        links["m2"].stage(None, 2)                 # after the marks were taken
        assert marks == {"m1": 1} and links.staged() == 2 and links.backlog() == 1
        links.release(marks)
        await settle()
        assert peers["m1"].applied == 1 and peers["m2"].calls == [] and links.staged() == 1
        links.release_all()
        assert links.unsent() == 1 and not links.idle()
        links.kick()
        await settle()
        assert peers["m2"].applied == 1 and links.idle()
    asyncio.run(run())


STEPS = st.lists(st.sampled_from(["stage", "mark", "commit", "answer", "kick"]), max_size=80)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_any_interleaving_delivers_every_durable_entry_in_order_and_nothing_undurable(steps):
    async def run():
        peer = Peer()
        peer.gate = asyncio.Event()
        link = Link(peer.receive)
        marks: list[int] = []                      # taken, not committed yet (commits come in order)
        durable = 0
        for step in steps:
            if step == "stage":
                link.stage(None, None)
            elif step == "mark":
                marks.append(link.number)
            elif step == "commit" and marks:
                durable = marks.pop(0)
                link.release(durable)
                link.kick()
            elif step == "answer":
                peer.gate.set()
                await settle()
                peer.gate.clear()
            else:
                link.kick()
            await asyncio.sleep(0)
            assert all(n <= durable for call in peer.calls for n in call)     # never an undurable entry
        peer.gate.set()
        link.release(link.number)
        link.kick()
        await settle()
        sent = [n for call in peer.calls for n in call]
        assert peer.applied == link.number and sent == sorted(sent)
        assert len(link) == 0
    asyncio.run(run())


def test_entries_handed_over_in_an_answer_leave_no_push_until_later_entries_need_one():
    async def run():
        peer = Peer()
        link = Link(peer.receive)
        for payload in "ab":
            link.stage(None, payload)
        link.release(link.number)
        assert [e[0] for e in link.hand_over()] == [1, 2]        # the answer to the peer's call carries them
        peer.applied = 2                                          # ... and the peer applies them from it
        link.kick()
        await settle()
        assert peer.calls == [] and len(link) == 2               # kept until acknowledged, no push for them
        assert [e[0] for e in link.hand_over()] == [1, 2]        # a re-sent call is answered with them again
        link.acknowledge(1)                                       # the peer says, in its next call, it has 1
        assert [e[0] for e in link.pending()] == [2]
        link.stage(None, "c")
        link.release(link.number)
        link.kick()
        await settle()
        assert peer.calls == [[2, 3]] and len(link) == 0         # a push for 3 carries the unacknowledged 2
        link.acknowledge(1)                                       # a stale acknowledgement changes nothing
        assert link.acked == 3
    asyncio.run(run())
