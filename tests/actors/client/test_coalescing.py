"""Client-side coalescing (``actors/client/coalescing.py``) against a fake shard: an
asyncio function that answers a packed batch of commands after a delay, the way
``AccountShardActor.execute`` answers one event list per command.

The fake is the peer, not our code: ``ShardCalls`` itself runs as it does in the
client, and each test says what a caller sees and which calls reached the peer.
"""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import ray
from hypothesis import given, settings, strategies as st

from actors.client.coalescing import ShardCalls


class FakeShard:
    """Answers ``[["ok", command], ...]`` for each packed batch after ``delay_s``;
    fails the first ``failures`` calls as a restarting actor would."""

    def __init__(self, delay_s: float = 0.01, failures: int = 0, error: type = ray.exceptions.RayActorError):
        self.delay_s = delay_s
        self.failures = failures
        self.error = error
        self.calls: list[list] = []

    async def send(self, shard, packed: bytes):
        commands = orjson.loads(packed)
        self.calls.append(commands)
        await asyncio.sleep(self.delay_s)
        if self.failures:
            self.failures -= 1
            raise self.error()
        return orjson.dumps([["ok", c] for c in commands])


def calls_for(fake: FakeShard, in_flight: int = 1, commands_max: int = 10_000) -> ShardCalls:
    return ShardCalls(fake.send, orjson.loads, in_flight, commands_max)


def packed(*commands) -> bytes:
    return orjson.dumps(list(commands))


def test_coalescing_with_an_idle_shard_sends_a_request_at_once_alone():
    fake = FakeShard()
    calls = calls_for(fake)

    async def run():
        return await calls.call(0, "shard", packed(1, 2), 2, time.monotonic() + 5)
    assert asyncio.run(run()) == [["ok", 1], ["ok", 2]]
    assert fake.calls == [[1, 2]]


def test_coalescing_with_a_call_in_flight_sends_what_queued_meanwhile_in_one_call_in_order():
    fake = FakeShard(delay_s=0.05)
    calls = calls_for(fake)

    async def run():
        deadline = time.monotonic() + 5
        first = asyncio.ensure_future(calls.call(0, "shard", packed(1), 1, deadline))
        await asyncio.sleep(0.01)                      # the first call is in flight now
        rest = [asyncio.ensure_future(calls.call(0, "shard", packed(*c), len(c), deadline))
                for c in ([2, 3], [4], [5, 6, 7])]
        return await first, await asyncio.gather(*rest)
    first, rest = asyncio.run(run())
    assert first == [["ok", 1]]
    assert rest == [[["ok", 2], ["ok", 3]], [["ok", 4]], [["ok", 5], ["ok", 6], ["ok", 7]]]
    assert fake.calls == [[1], [2, 3, 4, 5, 6, 7]]


def test_coalescing_keeps_each_shard_apart_and_bounds_a_call_by_commands_max_without_splitting_a_chunk():
    fake = FakeShard(delay_s=0.03)
    calls = calls_for(fake, commands_max=3)

    async def run():
        deadline = time.monotonic() + 5
        busy = [asyncio.ensure_future(calls.call(s, f"shard{s}", packed(s * 100), 1, deadline)) for s in (0, 1)]
        await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(calls.call(0, "shard0", packed(*c), len(c), deadline))
                  for c in ([1, 2], [3], [4, 5, 6, 7])]
        return await asyncio.gather(*busy, *queued)
    answers = asyncio.run(run())
    assert answers[3] == [["ok", 3]] and answers[4] == [["ok", c] for c in (4, 5, 6, 7)]
    assert fake.calls == [[0], [100], [1, 2, 3], [4, 5, 6, 7]]       # a chunk over the bound still goes, alone


def test_coalescing_sends_a_failed_call_again_until_answered():
    fake = FakeShard(failures=2)
    calls = calls_for(fake)

    async def run():
        return await calls.call(0, "shard", packed(9), 1, time.monotonic() + 5)
    assert asyncio.run(run()) == [["ok", 9]]
    assert fake.calls == [[9], [9], [9]]


def test_coalescing_past_the_deadline_fails_every_caller_of_the_batch_and_serves_the_next():
    fake = FakeShard(delay_s=0.02, failures=100)
    calls = calls_for(fake)

    async def run():
        first = asyncio.ensure_future(calls.call(0, "shard", packed(1), 1, time.monotonic()))
        await asyncio.sleep(0.005)
        second = asyncio.ensure_future(calls.call(0, "shard", packed(2), 1, time.monotonic()))
        results = await asyncio.gather(first, second, return_exceptions=True)
        fake.failures = 0
        return results, await calls.call(0, "shard", packed(3), 1, time.monotonic() + 5)
    (first, second), later = asyncio.run(run())
    assert isinstance(first, ray.exceptions.RayActorError) and isinstance(second, ray.exceptions.RayActorError)
    assert later == [["ok", 3]]


def test_coalescing_with_a_bug_in_the_peer_raises_it_to_the_callers_at_once():
    fake = FakeShard(failures=1, error=ValueError)
    calls = calls_for(fake)

    async def run():
        return await calls.call(0, "shard", packed(1), 1, time.monotonic() + 5)
    with pytest.raises(ValueError):
        asyncio.run(run())
    assert fake.calls == [[1]]


def test_coalescing_in_a_new_event_loop_starts_afresh():
    fake = FakeShard()
    calls = calls_for(fake)
    for value in (1, 2):
        async def run(v=value):
            return await calls.call(0, "shard", packed(v), 1, time.monotonic() + 5)
        assert asyncio.run(run()) == [["ok", value]]
    assert fake.calls == [[1], [2]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 7), st.integers(0, 3)), min_size=1, max_size=40),
       st.integers(1, 3), st.integers(3, 12))
def test_coalescing_with_any_interleaving_answers_each_caller_its_own_commands_in_order(chunks, in_flight, most):
    """Callers arrive at random moments for three shards; every caller gets exactly the
    answers to its own commands, each shard sees every command once and in arrival order,
    no more than ``in_flight`` calls at once per shard, and no call over ``most`` commands
    unless it is a single caller's chunk."""
    fake = FakeShard(delay_s=0.002)
    calls = calls_for(fake, in_flight=in_flight, commands_max=most)
    flying: dict = {}
    most_flying: dict = {}
    send = fake.send

    async def counting_send(shard, packed):
        flying[shard] = flying.get(shard, 0) + 1
        most_flying[shard] = max(most_flying.get(shard, 0), flying[shard])
        try:
            return await send(shard, packed)
        finally:
            flying[shard] -= 1
    calls.send = counting_send
    counter = iter(range(10**6))
    plan = [(shard, [(shard, next(counter)) for _ in range(size)], pause) for shard, size, pause in chunks]

    arrivals: list = []

    async def caller(shard, commands, pause):
        await asyncio.sleep(pause * 0.001)
        arrivals.append(commands)              # queued at once, in this order (``call`` runs to its first wait)
        return await calls.call(shard, f"shard{shard}", orjson.dumps(commands), len(commands), time.monotonic() + 5)

    async def run():
        return await asyncio.gather(*(caller(*p) for p in plan))
    answers = asyncio.run(run())
    for (shard, commands, _), answer in zip(plan, answers):
        assert answer == [["ok", list(c)] for c in commands]
    sent = [tuple(c) for call in fake.calls for c in call]
    assert sorted(sent) == sorted(c for _, commands, _ in plan for c in commands)     # each once
    for shard in {p[0] for p in plan}:
        in_order = [tuple(c) for commands in arrivals if commands[0][0] == shard for c in commands]
        assert [c for c in sent if c[0] == shard] == in_order                          # arrival order kept
        assert most_flying[f"shard{shard}"] <= in_flight
    chunk_sizes = {len(commands) for _, commands, _ in plan}
    assert all(len(call) <= most or len(call) in chunk_sizes for call in fake.calls)
