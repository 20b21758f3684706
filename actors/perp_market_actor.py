"""PerpMarketActor: a perpetual market on Ray (issue 14).

The spot ``MarketActor``'s matching, journal and links, on the perpetual's
grid, plus the market's price state (``exchange/perp/pricer.py:
PerpPricer``). The index actor calls ``set_index_prices`` (index capability)
with every publication; the actor journals ``[INDEX_UPDATE, ts_ns, index
ticks]`` and prices the market: the mark from the index, its book and its
last trade, a ``MarkUpdated`` event for every shard, and a ``FundingDue`` for
every funding time that has come. Both are market events: numbered in the
market's seq with the fills and pushed on the same links, so every shard
applies them in the same order and values every position at the same mark
(``exchange/perp/desk.py``). Replay re-runs the records in order and so gives
the same marks and fundings; the pricer is part of the snapshot, and so are the
last settlements (``exchange/perp/funding_history.py``, ``[limits]
history_fundings_max``), which ``funding_history`` shows.
"""
from __future__ import annotations

import orjson
import ray

from actors.capability import Role
from actors.market_actor import MarketActor
from exchange.venue import new_market
from exchange.messages.records import FundingDue, MarkUpdated
from exchange.messages.tags import RecordTag, tag_of
from exchange.perp.funding_history import FundingHistory
from exchange.perp.pricer import PerpPricer
from exchange.perp.rules import perp_markets
from exchange.snapshot import pricer_state, restore_pricer


class PerpMarketActor(MarketActor):
    def _make_engine(self, market: str):
        self.perp = perp_markets(self.config)[market]
        self.pricer = PerpPricer(self.perp.basis_window_ns, self.perp.funding)
        self.fundings = FundingHistory(self.config.limits.history_fundings_max)
        self.priced_ns = 0
        self.last_index = 0
        return new_market(self.config, self.perp.spec)

    async def set_index_prices(self, capability, prices: dict, ts_ns: int) -> int | None:
        """Price the market at the underlying's index (``prices``: asset -> quote minor units per
        unit) at ``ts_ns``; return the mark (ticks), or None without a price for the underlying.
        Raises ``PermissionError`` without the index capability."""
        self.keyring.check(capability, Role.INDEX)
        price = prices.get(self.perp.spec.base.name)
        if type(price) is not int or price <= 0 or type(ts_ns) is not int:
            return None
        ts_ns = max(ts_ns, self.priced_ns + 1)              # the market's time never goes back
        index = max(1, price // self.perp.spec.tick_minor)
        mark = self._price(ts_ns, index)
        marks = self.links.marks()
        await self.journal.commit([orjson.dumps([RecordTag.INDEX_UPDATE, ts_ns, index])])
        self.links.release(marks)
        self.links.kick()
        return mark

    def _price(self, ts_ns: int, index: int) -> int:
        self.priced_ns, self.last_index = ts_ns, index
        engine, pricer = self.engine, self.pricer
        mark = pricer.update(ts_ns, index, engine.book.best_bid(), engine.book.best_ask(),
                             engine.last_price or None)
        if engine.guard is not None:                         # the circuit breaker watches the index too
            engine.guard.observe(ts_ns, index, "index")
        events = [MarkUpdated(self.name, engine.next_seq(), ts_ns, index, mark)]
        while pricer.due(ts_ns):
            at, rate = pricer.settle_funding()
            events.append(FundingDue(self.name, engine.next_seq(), at, rate, mark))
            self.fundings.record(at, rate, mark)
        for shard in range(self.num_shards):                 # every shard holds positions in the market
            self.links[shard].stage(None, events)
            self.pushed[shard] = events[-1].seq
        self.stream.extend(events)
        return mark

    def _replay(self, record: list) -> None:
        if tag_of(record) is RecordTag.INDEX_UPDATE:
            self._price(record[1], record[2])
            return
        super()._replay(record)

    def _state(self) -> dict:
        return {**super()._state(), "pricer": pricer_state(self.pricer), "priced_ns": self.priced_ns,
                "last_index": self.last_index, "fundings": self.fundings.state()}

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        restore_pricer(self.pricer, state["pricer"])
        self.priced_ns, self.last_index = state["priced_ns"], state["last_index"]
        self.fundings.restore(state.get("fundings", []))      # (snapshots from before issue 18 have none)

    def price_view(self) -> dict:
        """The market's index, mark, last funding rate and next funding time."""
        pricer = self.pricer
        return {"market": self.name, "mark": pricer.mark, "funding_rate": pricer.funding_rate,
                "next_funding_ns": pricer.next_funding_ns, "basis_average": pricer.basis.average(self.priced_ns),
                "priced_ns": self.priced_ns}

    def funding_history(self, start_ns: int | None = None, end_ns: int | None = None, limit: int = 100) -> list:
        """The market's funding settlements kept, oldest first, as ``(ts_ns, rate, mark ticks)``:
        from ``start_ns`` to ``end_ns`` inclusive, the first ``limit`` from ``start_ns``, else the newest."""
        return [tuple(s) for s in self.fundings.window(start_ns, end_ns, limit)]


RemotePerpMarket = ray.remote(PerpMarketActor)
