"""LiquidatorActor: takes over margin books at the liquidation line, owns the
insurance fund, and publishes every liquidation.

Shards re-value their margin books on every index tick and hand a book at or
under the liquidation line to ``candidate``. The liquidator then drives it
with ordinary commands on the owning shard (``exchange/margin/liquidation.py``):
start (re-checked at its own index prices), cancel the book's open orders,
IOC steps whose limits widen step by step until the debt is repaid or nothing
is left to sell, then cover what is still owed from the insurance fund (bad
debt) and hand the book back with whatever is left (the user's). What to
send next is the pure rule ``exchange.margin.liquidation.next_action``.

Every command it sends has a request id derived from the liquidation's number
(``liq:<n>:...``), so a re-send after a crash is de-duplicated by the shard.
The fund is money: a cover is journaled (fund debited) before it is sent, sent
until the shard answers, and ids of covers never repeat (a per-liquidation
counter that is part of the state). Journal records: ``["fund", asset,
amount]`` (a deposit into the fund), ``["begin", n, shard, account, market,
level]``, ``["cover", rid, n, shard, account, market, asset, amount]``,
``["covered", rid]``, ``["end", n, record]``.

Liquidation records are public with the account id hashed (seed 002:
transparency): level before and after, index prices, orders and fills,
repaid amounts, shortfall covered by the fund, what was returned.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections import deque

import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.durability.journal import DurableActor, Journal
from actors.metrics.roles import actor_metrics
from actors.link.batching import Batcher
from actors.link.peers import Peers
from actors.link.wire import unpack_plain, unpack_results
from exchange.config import load_config
from exchange.margin.liquidation import next_action
from exchange.margin.desk import index_price_vector, update_index_prices
from exchange.messages.records import (CancelOrder, CoverShortfall, Fill, FinishLiquidation, LiquidationStep,
                               LiquidationUpdate, OrderRejected, Repaid, StartLiquidation, WriteOffDebt)
from exchange.core.money import parse_decimal
from exchange.core.reasons import Reason

PUBLIC_HISTORY = 10_000
RETRY_S = 0.2
log = logging.getLogger("exchange.liquidator")


def account_hash(account_id: int) -> str:
    """The public name of an account in liquidation records."""
    return hashlib.sha256(f"account:{account_id}".encode()).hexdigest()[:16]


class LiquidatorActor(DurableActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, from_oldest_snapshot: bool = False,
                 seed_fund: bool = True, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()        # a private one: nobody can call its role methods
        self.rules = self.config.margin
        self.assets = self.config.asset_list
        self.prices = index_price_vector(self.config)
        self.shards = Peers("shard:{}")
        # its commands go through the shards' liquidator door, its reads as packed lists
        self.batcher = Batcher(self.shards, leading_args={"execute_as": (self.keyring.capability(Role.LIQUIDATOR),)},
                               decoders={"execute_as": unpack_results, "margin_book_many": unpack_plain})
        names = [a.name for a in self.assets]
        self.fund = dict.fromkeys(names, 0)
        self.fund_deposited = dict.fromkeys(names, 0)
        self.bad_debt = dict.fromkeys(names, 0)
        self.active: dict[tuple, dict] = {}          # (account, market) -> {"n", "shard", "level", "covers"}
        self.covers_in_flight: dict[str, list] = {}  # rid -> [n, shard, account, market, asset, amount]
        self.next_n = 1
        self.records: deque = deque(maxlen=PUBLIC_HISTORY)
        self.liquidations = 0
        self.tasks: dict[tuple, asyncio.Task] = {}
        self.lots = {m.name: (m.base.name, m.quote.name, m.min_lots * m.lot_minor) for m in self.config.market_list}
        self.journal = Journal.open(data_dir, "liquidator", self.config.sections.get("durability", {}))
        self.recovery = self.journal.recover(self._restore, self._apply_record, from_oldest_snapshot)
        if seed_fund and not any(self.fund_deposited.values()):
            self._seed_fund()
        self.journal.after_commit = self._after_commit
        self.started_ns = clock.now_ns()
        self.metrics = actor_metrics(self, "liquidator")
        self._report()
        if (self.active or self.covers_in_flight) and ray.is_initialized():
            try:
                ray.get_runtime_context().current_actor.resume.remote()
            except Exception as exc:  # the next candidate call resumes instead
                log.warning("could not schedule resume: %s", exc)

    def _seed_fund(self) -> None:
        """The fund's starting capital from ``[insurance.initial]``: recorded deposits."""
        records = []
        for asset, text in self.config.sections.get("insurance", {}).get("initial", {}).items():
            amount = parse_decimal(text, self.config.assets[asset].scale)
            if amount > 0:
                records.append(["fund", asset, amount])
        for record in records:
            self._apply_record(record)
        self.journal.write(records)

    # ---- journal records ----------------------------------------------------------
    def _apply_record(self, record: list) -> None:
        kind = record[0]
        if kind == "fund":
            self.fund[record[1]] += record[2]
            self.fund_deposited[record[1]] += record[2]
        elif kind == "begin":
            n, shard, account, market, level = record[1:]
            self.active[(account, market)] = {"n": n, "shard": shard, "level": level, "covers": 0}
            self.next_n = max(self.next_n, n + 1)
            self.liquidations += 1
        elif kind == "cover":
            rid, n, shard, account, market, asset, amount = record[1:]
            self.fund[asset] -= amount
            self.bad_debt[asset] += amount
            self.covers_in_flight[rid] = [n, shard, account, market, asset, amount]
            if (account, market) in self.active:
                self.active[(account, market)]["covers"] += 1
        elif kind == "covered":
            self.covers_in_flight.pop(record[1], None)
        elif kind == "end":
            public = record[2]
            self.active.pop((public["account"], public["market"]), None)
            public = {k: v for k, v in public.items() if k != "account"}
            self.records.append(public)
        else:
            raise ValueError(f"unknown liquidator record {kind!r}")

    async def _record(self, record: list) -> None:
        self._apply_record(record)
        self._report(record)
        await self.journal.commit([record])

    def _report(self, record: list | None = None) -> None:
        """Liquidations, bad debt, fund balances and the backlog for Prometheus."""
        metrics = self.metrics.liquidation
        if record is not None and record[0] == "begin":
            market = record[4]
            metrics.liquidated(market or "all", "isolated" if market else "cross")
        elif record is not None and record[0] == "cover":
            metrics.bad_debt(record[6], record[7])
        for asset, balance in self.fund.items():
            metrics.insurance_fund(asset, balance)
        for mode in ("cross", "isolated"):
            metrics.pending(mode, sum(1 for _, market in self.active if bool(market) == (mode == "isolated")))

    def _state(self) -> dict:
        return {"fund": self.fund, "fund_deposited": self.fund_deposited, "bad_debt": self.bad_debt,
                "active": [[a, m, v] for (a, m), v in self.active.items()],
                "covers_in_flight": self.covers_in_flight, "next_n": self.next_n,
                "records": list(self.records), "liquidations": self.liquidations}

    def _restore(self, state: dict) -> None:
        self.fund, self.fund_deposited, self.bad_debt = state["fund"], state["fund_deposited"], state["bad_debt"]
        self.active = {(a, m): v for a, m, v in state["active"]}
        self.covers_in_flight = state["covers_in_flight"]
        self.next_n, self.liquidations = state["next_n"], state["liquidations"]
        self.records.extend(state["records"])

    def _after_commit(self) -> None:
        if self.journal.snapshot_due():
            self.journal.snapshot(self._state())

    # ---- inputs -------------------------------------------------------------------------
    def set_index_prices(self, capability, asset_prices: dict[str, int]) -> None:
        """Index prices per asset (from the IndexActor: the index capability)."""
        self.keyring.check(capability, Role.INDEX)
        update_index_prices(self.config, self.prices, asset_prices)

    async def candidate(self, capability, shard: int, account_id: int, market: str, level_ppm: int) -> bool:
        """A shard found this book at or under the liquidation line: take it over (once).
        Raises ``PermissionError`` without the shard capability."""
        self.keyring.check(capability, Role.SHARD)
        if type(shard) is not int or not 0 <= shard < self.config.shards or type(account_id) is not int \
                or type(market) is not str or type(level_ppm) is not int:
            raise ValueError("candidate(shard index, account id, market name, level ppm)")
        key = (account_id, market)
        if key in self.active:
            return False
        n = self.next_n
        await self._record(["begin", n, shard, account_id, market, level_ppm])
        self._spawn(key)
        return True

    async def resume(self) -> bool:
        """After a restart: finish covers in flight, then every liquidation in progress."""
        for rid, (n, shard, account, market, asset, amount) in list(self.covers_in_flight.items()):
            await self._send(shard, CoverShortfall(rid, clock.now_ns(), account, market, asset, amount))
            await self._record(["covered", rid])
        for key in list(self.active):
            if key not in self.tasks:
                self._spawn(key)
        return True

    def _spawn(self, key: tuple) -> None:
        task = asyncio.get_running_loop().create_task(self._liquidate(key))
        self.tasks[key] = task
        task.add_done_callback(lambda t, k=key: self._done(k, t))

    def _done(self, key: tuple, task: asyncio.Task) -> None:
        self.tasks.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("liquidation of %s failed: %r", key, task.exception())

    async def _refresh_prices(self) -> None:
        """Ask the index for its prices (after a restart the next publication may be a while away)."""
        try:
            update_index_prices(self.config, self.prices, await ray.get_actor("index").index_prices.remote())
        except Exception as exc:           # no index actor: wait for its publications
            log.warning("index prices unavailable: %s", exc)

    async def _send(self, shard: int, command) -> list:
        """Run one command on a shard until it answers; return its events (concurrent
        liquidations' commands to one shard travel together in one ``execute``)."""
        return await self.batcher.call(shard, "execute_as", command)

    async def _view(self, shard: int, account: int, market: str) -> dict:
        return await self.batcher.call(shard, "margin_book_many", (account, market))

    # ---- one liquidation ------------------------------------------------------------------
    async def _liquidate(self, key: tuple) -> None:
        account, market = key
        state = self.active[key]
        n, shard = state["n"], state["shard"]
        if not all(self.prices):
            await self._refresh_prices()
        prices = tuple(self.prices)
        record = {"n": n, "account": account, "account_hash": account_hash(account), "market": market,
                  "mode": "isolated" if market else "cross", "started_ns": clock.now_ns(),
                  "index_prices": {a.name: prices[a.index] for a in self.assets}, "orders": [], "fills": [],
                  "repaid": {}, "interest_paid": {}, "shortfall": {}, "written_off": {}}
        events = await self._send(shard, StartLiquidation(f"liq:{n}:start", clock.now_ns(), account, market, prices))
        started = _first(events, LiquidationUpdate)
        if started is None:
            reason = _first(events, OrderRejected)
            record.update(outcome="not_needed", reason=Reason(reason.reason).name if reason else "unknown")
            await self._record(["end", n, record])
            return
        record["level_before_ppm"] = started.level_ppm
        for order_id, order_market in started.detail:
            await self._send(shard, CancelOrder(f"liq:{n}:cancel:{order_id}", clock.now_ns(), account, order_market,
                                                order_id))
        steps: dict[str, int] = {}
        exhausted: set = set()
        markets = [market] if market else sorted(self.rules.markets)
        for i in range(1, 100_000):
            view = await self._view(shard, account, market)
            action = next_action(view, [m for m in markets if m not in exhausted], self.lots)
            if action[0] == "finish":
                break
            if action[0] == "trade":
                trade = action[1]
                steps[trade] = steps.get(trade, 0) + 1
                step = min(steps[trade], self.rules.liquidation_max_steps)
                events = await self._send(shard, LiquidationStep(f"liq:{n}:step:{i}", clock.now_ns(), account,
                                                                 market, trade, step, tuple(self.prices)))
                self._collect(record, events, account)
                update = _first(events, LiquidationUpdate)
                if update is None:                # refused (no index price yet): ask again shortly
                    await asyncio.sleep(RETRY_S)
                    await self._refresh_prices()
                elif update.stage == "idle":      # nothing this book can trade there
                    exhausted.add(trade)
                elif steps[trade] >= self.rules.liquidation_max_steps and \
                        not any(type(e) is Fill or type(e) is Repaid for e in events):
                    await asyncio.sleep(RETRY_S)      # widest limit and no bid: wait for the book to refill
                continue
            asset, owed = action[1], action[2]
            amount = min(owed, self.fund[asset])
            if amount <= 0:                   # the fund is empty: the pool writes the rest off
                await self._send(shard, WriteOffDebt(f"liq:{n}:write_off:{i}", clock.now_ns(), account, market, asset))
                record["written_off"][asset] = record["written_off"].get(asset, 0) + owed
                continue
            rid = f"liq:{n}:cover:{state['covers']}"
            await self._record(["cover", rid, n, shard, account, market, asset, amount])
            events = await self._send(shard, CoverShortfall(rid, clock.now_ns(), account, market, asset, amount))
            await self._record(["covered", rid])
            self._collect(record, events, account)
            record["shortfall"][asset] = record["shortfall"].get(asset, 0) + amount
        await self._send(shard, FinishLiquidation(f"liq:{n}:finish", clock.now_ns(), account, market))
        after = await self._view(shard, account, market)
        record.update(outcome="finished", finished_ns=clock.now_ns(), level_after_ppm=after["level_ppm"] or 0,
                      returned={a: v for a, v in after["available"].items() if v},
                      remaining_debt={a: v for a, v in after["debt"].items() if v})
        await self._record(["end", n, record])

    @staticmethod
    def _collect(record: dict, events: list, account: int) -> None:
        for event in events:
            kind = type(event)
            if kind is Fill and account in (event.taker_account, event.maker_account):
                record["fills"].append({"market": event.market, "price": event.price, "quantity": event.quantity,
                                        "side": event.taker_side if event.taker_account == account else
                                        3 - event.taker_side})
            elif kind is Repaid and event.account_id == account:
                record["repaid"][event.asset] = record["repaid"].get(event.asset, 0) + event.taken
                record["interest_paid"][event.asset] = record["interest_paid"].get(event.asset, 0) + event.interest
            elif kind is LiquidationUpdate and event.stage == "order":
                record["orders"].append(list(event.detail))

    # ---- views ----------------------------------------------------------------------------
    def liquidation_records(self, limit: int = 100) -> list[dict]:
        """The latest public liquidation records (account ids hashed)."""
        return list(self.records)[-limit:]

    def in_progress(self) -> list[tuple]:
        return sorted(self.active)

    def insurance_fund(self) -> dict:
        return {"balance": dict(self.fund), "deposited": dict(self.fund_deposited), "bad_debt": dict(self.bad_debt)}

    def audit(self) -> dict:
        """Fund balances and deposits, and covers still on their way (audit when none)."""
        return {"fund": dict(self.fund), "deposited": dict(self.fund_deposited),
                "covers_in_flight": len(self.covers_in_flight)}

    async def deposit_fund(self, capability, asset: str, amount: int) -> dict:
        """An operator adds capital to the insurance fund (a recorded deposit).
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        if asset not in self.fund or type(amount) is not int or amount <= 0:
            raise ValueError("unknown asset or non-positive amount")
        await self._record(["fund", asset, amount])
        return self.insurance_fund()

    def stats(self) -> dict:
        return {"liquidations": self.liquidations, "active": len(self.active), "recovery": self.recovery,
                "started_ns": self.started_ns, "pid": os.getpid(), "fund": dict(self.fund)}


def _first(events: list, kind):
    return next((e for e in events if type(e) is kind), None)


RemoteLiquidator = ray.remote(LiquidatorActor)
