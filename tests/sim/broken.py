"""Deliberately broken actor variants, for showing that the simulator catches bugs.

``ForgetfulMarket`` is the real ``MarketActor`` whose ``submit`` applies a re-sent
batch again instead of dropping the request numbers (``rseq``) it has applied:
the de-duplication on the shard -> market link is gone.
"""
from __future__ import annotations

from actors.capability import Role
from actors.link.wire import unpack_batch
from actors.market_actor import MarketActor, _batch_record


class ForgetfulMarket(MarketActor):
    async def submit(self, capability, origin: int, batch: bytes) -> int:
        """``MarketActor.submit`` without the ``entry[0] > applied_rseq[origin]`` filter."""
        self.keyring.check(capability, Role.SHARD)
        batch = unpack_batch(batch)              # the bug: a re-send is applied again
        if batch:
            record = _batch_record(origin, batch)
            self._apply(origin, batch)
            marks = self.links.marks()
            await self.journal.commit([record])
            self.links.release(marks)
        self.links.kick()
        return self.applied_rseq[origin]
