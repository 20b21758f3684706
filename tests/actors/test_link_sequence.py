"""The link sequence of market pushes, on actors built in-process (no Ray):
markets number push entries per shard in a way replay regenerates, shards skip
re-sends and refuse gaps, and nothing runs without the right capability."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from actors.capability import Keyring, Role
from actors.market_actor import MarketActor
from actors.shard_actor import AccountShardActor, LinkSequenceError
from actors.link.wire import pack
from exchange.messages.codec import encode_shallow
from exchange.messages.records import SubmitOrder
from exchange.core.routing import shard_for

MARKET = "BTC-USDT"


def numbered(market: MarketActor) -> dict[int, list[int]]:
    return {shard: [entry[0] for entry in link.pending()] for shard, link in market.links.items()}


def last_numbers(market: MarketActor) -> dict[int, int]:
    return {shard: link.number for shard, link in market.links.items()}


def orders(accounts: list[int], start: int) -> list:
    """Alternate asks and crossing bids: every other request fills, against makers on other shards."""
    out = []
    for i, account in enumerate(accounts):
        side = 2 if i % 2 == 0 else 1
        out.append((start + i, (account, f"r{start + i}"),
                    SubmitOrder(start + i, account, side, 5_000_000, 1, 1, False, 0, 0, 0, 0)))
    return out


def test_market_entry_numbers_are_consecutive_per_shard_and_replay_regenerates_them(tmp_path):
    keyring = Keyring.mint()
    shard_capability = keyring.capability(Role.SHARD)
    market = MarketActor(None, MARKET, str(tmp_path), keyring=keyring)
    market.links.kick = lambda: None           # no shards to push to here
    shards = market.num_shards
    accounts = [a for a in range(1, 400) if shard_for(a, shards) != 0][:40]
    for start in (1, 41):
        asyncio.run(market.submit(shard_capability, 0, pack(orders(accounts, start))))
    first = numbered(market)
    assert len(first[0]) == 80                                        # one entry per request for the origin
    assert any(first[s] for s in range(1, shards))                    # makers' shards get their fills
    for numbers in first.values():
        assert numbers == list(range(1, len(numbers) + 1))
    assert last_numbers(market) == {s: len(n) for s, n in first.items()}
    market.journal.store.close()

    replayed = MarketActor(None, MARKET, str(tmp_path), keyring=keyring)   # replays the journal
    assert numbered(replayed) == first and last_numbers(replayed) == last_numbers(market)
    restored = MarketActor(None, MARKET, None, keyring=keyring)            # from the snapshot state
    restored._restore(orjson.loads(orjson.dumps(replayed._state(), default=encode_shallow)))
    assert numbered(restored) == first and last_numbers(restored) == last_numbers(market)
    replayed.journal.store.close()

    with pytest.raises(PermissionError):
        asyncio.run(replayed.submit(keyring.capability(Role.MARKET), 0, pack([])))


def test_shard_skips_resent_entries_and_refuses_a_gap_whole():
    keyring = Keyring.mint()
    shard = AccountShardActor(None, 0, keyring=keyring)
    market = keyring.capability(Role.MARKET)

    def push(entries: list) -> int:
        return asyncio.run(shard.on_market_events(market, MARKET, pack(entries), (None, None)))

    assert push([(1, None, []), (2, None, [])]) == 2
    assert push([(1, None, []), (2, None, []), (3, None, [])]) == 3          # 1 and 2 re-sent: skipped
    assert push([(2, None, [])]) == 3                                         # only a re-send: acknowledged
    for gap in ([(5, None, [])], [(4, None, []), (6, None, [])], [(3, None, []), (5, None, [])]):
        with pytest.raises(LinkSequenceError):
            push(gap)
        assert shard.applied_seq(MARKET) == 3
    assert push([(4, None, [])]) == 4
    with pytest.raises(PermissionError):
        asyncio.run(shard.on_market_events(keyring.capability(Role.SHARD), MARKET, pack([(5, None, [])]),
                                           (None, None)))
    with pytest.raises(ValueError):
        asyncio.run(shard.on_market_events(market, "NOPE-USDT", pack([(1, None, [])]), (None, None)))
    assert shard._state()["link_applied"][MARKET] == 4
