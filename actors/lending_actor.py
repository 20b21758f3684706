"""LendingPoolActor: every lendable asset's pool on Ray, durable in LMDB.

It is a ``MarketActor`` serving a ``LendingEngine`` instead of an order book:
shards send ``PoolRequest`` batches with ``submit`` (numbered per shard and
de-duplicated the same way), the engine answers with events carrying
``market="lending"`` and a sequence number, and the answers are pushed back
to the origin shard one push at a time, re-sent until acknowledged. The
pools' ``InterestAccrued`` events (a new hourly index) have no account and go
to every shard. So the whole delivery and recovery machinery is the one the
markets already prove.

The pool's clock: only an accrual turns the pools' hour (a request's
``ts_ns``, the shard's stamp, is recorded on its events but never moves it;
``exchange.margin.lending``). The pool's own background loop
(``start_clock``) accrues every ``lending.accrue_interval_s`` by the wall
clock; ``accrue(capability, ts_ns)`` turns it at a chosen time (operators and
tests with simulated time: the operator capability). Journal records: the
market's ``[SHARD_BATCH, origin, batch]`` plus ``[ACCRUAL, ts_ns]`` for an accrual.
"""
from __future__ import annotations

import asyncio
import os

import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.market_actor import MarketActor
from exchange.margin.lending import LendingEngine
from exchange.matching.ticker import RollingTicker
from exchange.messages.records import LENDING, POOL_ACCRUE, PoolRequest
from exchange.messages.tags import RecordTag, tag_of
from exchange.snapshot import lending_state, restore_lending

ACCRUE_INTERVAL_S = 60.0


class LendingPoolActor(MarketActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, from_oldest_snapshot: bool = False,
                 keyring: Keyring | None = None):
        self._clock_task = None
        super().__init__(config_path, LENDING, data_dir, from_oldest_snapshot, keyring)

    def _make_engine(self, market: str):
        return LendingEngine(self.config.lending, self.config.reserve_account)

    def _make_ticker(self) -> RollingTicker:
        return RollingTicker(0)                 # (a pool makes no trades)

    @staticmethod
    def _actor_name(market: str) -> str:
        return LENDING

    def _top(self) -> tuple:
        return (None, None)

    def _engine_state(self) -> dict:
        return lending_state(self.engine)

    def _restore_engine(self, state: dict):
        return restore_lending(self.config, state)

    def _replay(self, record: list) -> None:
        if tag_of(record) is RecordTag.ACCRUAL:
            self._apply(None, [(0, None, _accrual(record[1]))])
        else:
            super()._replay(record)

    # ---- the pool's clock -------------------------------------------------------------
    async def accrue(self, capability, ts_ns: int | None = None) -> dict:
        """Turn every pool's hour to ``ts_ns`` (default: now); return the pools' view.
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        if ts_ns is not None and type(ts_ns) is not int:
            raise TypeError("ts_ns is an int (nanoseconds) or None")
        return await self._accrue(ts_ns)

    async def _accrue(self, ts_ns: int | None = None) -> dict:
        ts_ns = clock.now_ns() if ts_ns is None else ts_ns
        self._apply(None, [(0, None, _accrual(ts_ns))])
        marks = self.links.marks()
        await self.journal.commit([[RecordTag.ACCRUAL, ts_ns]])
        self.links.release(marks)
        return self.engine.view()

    async def start_clock(self, interval_s: float = ACCRUE_INTERVAL_S) -> bool:
        """Accrue from the wall clock every ``interval_s`` (idempotent)."""
        if self._clock_task is None:
            self._clock_task = asyncio.get_running_loop().create_task(self._clock(interval_s))
        return True

    async def _clock(self, interval_s: float) -> None:
        while True:
            await self._accrue()
            await asyncio.sleep(interval_s)

    # ---- views ------------------------------------------------------------------------
    def pools(self) -> dict:
        """Per asset: cash, borrowed, utilization, rates (ppm per year), index, reserve."""
        return self.engine.view()

    def loan(self, account_id: int, book: str, asset: str) -> dict:
        pool = self.engine.pools[asset]
        scaled, principal = pool.loan((account_id, book))
        return {"scaled": scaled, "principal": principal, "owed": pool.owed((account_id, book)),
                "index": pool.index}

    def supplier_balance(self, account_id: int, asset: str) -> int:
        return self.engine.supplier_balance(account_id, asset)

    def audit(self) -> dict:
        """Cash per asset with the push marks they reflect (for a consistent audit)."""
        return {"cash": self.engine.cash(), "pushed": dict(self.pushed)}

    def check_invariants(self) -> bool:
        self.engine.check_invariants()
        return True

    def stats(self) -> dict:
        j = self.journal
        return {"market": LENDING, "seq": self.engine.seq, "requests": self.requests, "calls": self.calls,
                "recovery": self.recovery, "started_ns": self.started_ns, "pid": os.getpid(),
                "journal_commits": j.commits,
                "queued_pushes": self.links.unsent(),
                "pools": self.engine.view()}


def _accrual(ts_ns: int) -> PoolRequest:
    return PoolRequest(POOL_ACCRUE, 0, "", "", 0, 0, ts_ns)


RemoteLending = ray.remote(LendingPoolActor)
