"""Account and market event streams on real Ray actors."""
from __future__ import annotations

import asyncio

from exchange.messages.records import Fill
from tests.actors.conftest import accounts_on_shards, funded


def test_account_stream_with_many_fills_delivers_each_in_order_without_gaps(client):
    watched, counterparty, _ = accounts_on_shards(client, 700)
    funded(client, watched, counterparty)
    client.subscribe(watched)
    expected = []
    for i in range(40):
        ask = client.place_order(counterparty, "ETH-USDT", "sell", "0.010", price=f"{2500 + i}.00")
        bid = client.place_order(watched, "ETH-USDT", "buy", "0.010", price=f"{2500 + i}.00")
        assert ask.status == "open" and bid.status == "filled"
        expected.extend(f.seq for f in bid.fills)

    async def consume() -> tuple[list[int], list[int]]:
        cursors, fills = [], []
        async for cursor, event in client.stream(account=watched, from_start=True, poll_s=0.2):
            cursors.append(cursor)
            if type(event) is Fill:
                fills.append(event.seq)
            if len(fills) == len(expected):
                break
        return cursors, fills

    cursors, fills = asyncio.run(asyncio.wait_for(consume(), 30))
    assert cursors == list(range(1, len(cursors) + 1))      # no gaps
    assert fills == expected == sorted(expected)             # every fill, in market order


def test_market_stream_with_trades_yields_them_with_increasing_seq(client):
    seller, buyer, _ = accounts_on_shards(client, 800)
    funded(client, seller, buyer)
    client.place_order(seller, "BTC-USDT", "sell", "0.0010", price="41000.00")
    result = client.place_order(buyer, "BTC-USDT", "buy", "0.0010", price="41000.00")
    assert result.status == "filled"

    async def consume() -> list:
        seen = []
        async for _, event in client.stream(market="BTC-USDT", poll_s=0.2):
            seen.append(event)
            if type(event) is Fill and event.seq == result.fills[0].seq:
                return seen
    seen = asyncio.run(asyncio.wait_for(consume(), 30))
    seqs = [e.seq for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(t.seq == result.fills[0].seq for t in client.recent_trades("BTC-USDT"))
