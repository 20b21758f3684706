"""A limit on everything that grows with input (Core v2 §5): each ``[limits]``
maximum, reached, refuses new work with OVERLOADED (or OverloadedError for a
call that is not a command) and changes nothing. The shard, market and client
code is the real one; the shard and market run without Ray (their peers are
unreachable, so requests stay in flight, which is what fills the queues)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring, Role
from actors.client import OperatorClient
from actors.errors import OverloadedError
from actors.event_log import EventLog
from actors.link.wire import pack, unpack_submit_answer
from actors.market_actor import MarketActor
from actors.shard_actor import AccountShardActor
from exchange.core.routing import shard_for
from exchange.messages.records import (Borrow, Deposit, EnableMargin, OpenAccount, OrderAccepted, PlaceOrder,
                                       SubmitOrder, TransferMargin)
from exchange.core.reasons import Reason

ROOT = Path(__file__).resolve().parents[2]
BUY, LIMIT, GTC = 1, 1, 1


def config_with(tmp_path, **limits) -> str:
    text = (ROOT / "config" / "default.toml").read_text()
    for key, value in limits.items():
        assert f"\n{key} = " in text, key
        head, tail = text.split(f"\n{key} = ", 1)
        text = f"{head}\n{key} = {value}\n" + tail.split("\n", 1)[1]
    path = tmp_path / "limits.toml"
    path.write_text(text)
    return str(path)


def mine(actor, count: int) -> list[int]:
    return [a for a in range(1, 5_000) if shard_for(a, actor.config.shards) == actor.index][:count]


def order(rid: str, account: int, price: int = 40_000 * 10**6) -> PlaceOrder:
    return PlaceOrder(rid, 0, account, "BTC-USDT", BUY, LIMIT, price, 10_000, GTC, "", 0)


async def started(actor, commands: list) -> asyncio.Task:
    """Run ``commands`` as a task and let it reach the point where it waits for a market."""
    task = asyncio.ensure_future(actor._execute(commands))
    for _ in range(5):
        await asyncio.sleep(0)
    return task


async def stop_all() -> None:
    """Cancel what is still waiting for an unreachable peer (flushers, pushes, batches)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def funded(actor, account: int) -> None:
    await actor._execute([OpenAccount(f"o{account}", 0, account),
                          Deposit(f"d{account}", 0, account, "USDT", 10**15)])


def shard(tmp_path, **limits) -> AccountShardActor:
    return AccountShardActor(config_with(tmp_path, **limits), 0)


def test_a_batch_beyond_batch_commands_max_is_refused_beyond_the_limit(tmp_path):
    actor = shard(tmp_path, batch_commands_max=3)
    (alice,) = mine(actor, 1)
    results = asyncio.run(actor._execute([OpenAccount("o", 0, alice)] +
                                         [Deposit(f"d{i}", 0, alice, "USDT", 1) for i in range(4)]))
    assert [type(r[0]).__name__ for r in results[:3]] == ["AccountOpened", "BalanceChanged", "BalanceChanged"]
    assert [r[0].reason for r in results[3:]] == [Reason.OVERLOADED] * 2
    assert actor.balances(alice)["USDT"] == (2, 0)


def test_commands_waiting_for_answers_beyond_pending_commands_max_are_refused(tmp_path):
    actor = shard(tmp_path, pending_commands_max=2)
    (alice,) = mine(actor, 1)

    async def run():
        await funded(actor, alice)
        for i in range(2):                                   # two orders wait for an unreachable market
            await started(actor, [order(f"p{i}", alice)])
        refused = await actor._execute([order("p2", alice)])
        deposit = await actor._execute([Deposit("d-more", 0, alice, "USDT", 1)])     # peer-free: still fine
        held = actor.balances(alice)["USDT"][1]
        await stop_all()
        return refused, deposit, held
    refused, deposit, held = asyncio.run(run())
    assert refused[0][0].reason == Reason.OVERLOADED and type(deposit[0][0]).__name__ == "BalanceChanged"
    assert len(actor.pending) == 2 and held == 2 * actor.shard.orders[next(iter(actor.shard.orders))].held


def test_requests_queued_on_a_link_beyond_link_requests_max_are_refused(tmp_path):
    actor = shard(tmp_path, link_requests_max=2)
    (alice,) = mine(actor, 1)

    async def run():
        await funded(actor, alice)
        for i in range(2):
            await started(actor, [order(f"l{i}", alice)])
        refused = await actor._execute([order("l2", alice)])
        await started(actor, [PlaceOrder("e", 0, alice, "ETH-USDT", BUY, LIMIT, 3_000 * 10**6, 1_000_000,
                                         GTC, "", 0)])                          # another link has room
        await stop_all()
        return refused
    refused = asyncio.run(run())
    assert refused[0][0].reason == Reason.OVERLOADED
    assert len(actor.pending) == 3


def test_pool_requests_beyond_pool_requests_max_are_refused(tmp_path):
    actor = shard(tmp_path, pool_requests_max=1)
    (alice,) = mine(actor, 1)

    async def run():
        await funded(actor, alice)
        await actor._execute([EnableMargin("m", 0, alice, "L2", "3x"),
                              TransferMargin("t", 0, alice, "USDT", 10_000 * 10**6, True, "")])
        await started(actor, [Borrow("b1", 0, alice, "USDT", 10**6, "")])
        refused = await actor._execute([Borrow("b2", 0, alice, "USDT", 10**6, "")])
        await stop_all()
        return refused
    refused = asyncio.run(run())
    assert refused[0][0].reason == Reason.OVERLOADED and len(actor.shard.margin.awaiting) == 1


def test_account_streams_beyond_streams_max_are_refused_and_each_keeps_stream_events_max(tmp_path):
    actor = shard(tmp_path, streams_max=2, stream_events_max=5)
    a, b, c = mine(actor, 3)
    actor.subscribe(a), actor.subscribe(b)
    with pytest.raises(OverloadedError):
        actor.subscribe(c)
    assert actor.subscribe(a) == 0                        # an existing stream is fine
    asyncio.run(actor._execute([OpenAccount("o", 0, a)] + [Deposit(f"d{i}", 0, a, "USDT", 1) for i in range(9)]))
    log = actor.streams[a]
    assert len(log.entries) == 5 and log.last == 10


def test_the_order_history_kept_for_get_order_is_bounded_by_history_orders_max(tmp_path):
    actor = shard(tmp_path, history_orders_max=10)
    actor._publish([OrderAccepted(i, 0, i, 1, "BTC-USDT", 1, 10**9, 10**8, "") for i in range(1, 100)])
    assert len(actor.history.orders) == 10 and actor.get_order(1, 99)["status"] == "NEW"
    assert actor.get_order(1, 89) is None


def test_a_market_with_a_shard_backlog_at_push_entries_max_refuses_new_batches(tmp_path):
    keyring = Keyring.mint()
    market = MarketActor(config_with(tmp_path, push_entries_max=3), "BTC-USDT", keyring=keyring)
    market.links[1].queued = [(n, None, []) for n in range(3)]   # shard 1 is not taking its pushes
    batch = pack([(1, (7, "r1"), SubmitOrder(1 << 10, 7, BUY, 4_000_000, 1, GTC, False, 1, 0, 0, 0))])
    async def submit():
        try:
            return await market.submit(keyring.capability(Role.SHARD), 0, batch)
        finally:
            await stop_all()
    with pytest.raises(OverloadedError):
        asyncio.run(submit())
    assert market.engine.seq == 0 and market.applied_rseq[0] == 0      # nothing applied: the shard re-sends
    market.links[1].queued = []
    applied, _, entries = unpack_submit_answer(asyncio.run(submit()))
    assert applied == 1 and [number for number, _, _ in entries] == [1]      # the answer carries the order's push


def test_the_event_log_keeps_at_most_its_capacity():
    log = EventLog(3)
    log.extend(list(range(10)))
    assert [e for _, e in log.entries] == [7, 8, 9] and log.after(0, 10)[1] is True      # lost is reported


@pytest.fixture(scope="module")
def small_client(tmp_path_factory):
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    root = tmp_path_factory.mktemp("limits")
    operator = OperatorClient(bootstrap.create_actors(config_with(root, client_in_flight_max=3), keyring=keyring),
                              keyring)
    yield operator.client
    bootstrap.destroy_actors(operator.handles)
    ray.shutdown()


def test_a_client_beyond_client_in_flight_max_refuses_the_rest_without_sending(small_client):
    account = 77
    commands = [OpenAccount("open-77", 0, account)] + [Deposit(f"d-77-{i}", 0, account, "USDT", 1) for i in range(4)]
    results = small_client.execute(commands)
    assert [type(r[0]).__name__ for r in results[:3]] == ["AccountOpened", "BalanceChanged", "BalanceChanged"]
    assert [r[0].reason for r in results[3:]] == [Reason.OVERLOADED] * 2
    assert small_client.balances(account)["USDT"] == (2, 0)

    async def two_at_once():
        return await asyncio.gather(small_client.execute_async(commands[3:5]),
                                    small_client.execute_async([Deposit("d-77-x", 0, account, "USDT", 1)] * 2))
    first, second = asyncio.run(two_at_once())
    assert sum(type(r[0]).__name__ == "BalanceChanged" for r in first + second) <= 3
    assert small_client._in_flight == 0                       # every answered command left the count
