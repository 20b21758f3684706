"""The liquidator's snapshot never holds a perpetual fact its journal does not have yet: a
liquidation produces facts between two reads and journals them only before its next command,
so a snapshot taken meanwhile (another task's commit made one due) would carry them, and the
commit after it would carry them again: on recovery the fund's chain refuses the repeated
entry. In-process (no Ray), on an in-memory store that snapshots after every commit."""
from __future__ import annotations

import asyncio

from actors.durability.journal import drop_memory_volume, memory_volume
from actors.liquidator_actor import LiquidatorActor

PERP = "BTC-USDT-PERP"


def test_a_snapshot_waits_until_the_perpetual_facts_are_journaled():
    data = memory_volume("liquidator-snapshot-test", snapshot_every=10**6)
    try:
        async def run():
            actor = LiquidatorActor(None, data)
            await actor._journal()
            actor.perp.top_up(PERP, 5, 1)             # a fact still in hand, as between two reads
            actor.journal.snapshot_every = 1
            actor._after_commit()                      # another task's commit: a snapshot is due
            actor.journal.snapshot_every = 10**6
            await actor._journal()                     # the fact is journaled
            recovered = LiquidatorActor(None, data, seed_fund=False)
            assert [e.to_plain() for e in recovered.perp_fund.entries] == \
                [e.to_plain() for e in actor.perp_fund.entries]
            assert recovered.perp_fund.balances[PERP] == actor.perp_fund.balances[PERP]
        asyncio.run(run())
    finally:
        drop_memory_volume(data)
