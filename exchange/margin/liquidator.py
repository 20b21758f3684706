"""The liquidator's policy: one pure state machine driving every liquidation.

A shard hands over a book at or under the liquidation line (``candidate``);
the machine then decides, command by command, what the owning shard must run
(the shard side is ``exchange/margin/liquidation.py``):

1. ``StartLiquidation`` at the prices the candidate was accepted with (the
   shard re-checks the line; refused: the outcome is ``not_needed``);
2. ``CancelOrder`` for each of the book's open orders, one after another;
3. decisions by ``next_action`` on the book's view after every answer:
   ``LiquidationStep`` IOC orders whose limit widens per market step by step
   (a market whose step comes back ``LiquidationStage.IDLE`` is exhausted
   for this book; at the widest limit with nothing filled the liquidation is
   held until the book refills; refused for want of a price it is held until
   prices refresh), a cover from the insurance fund of ``min(owed, fund)``
   (drawn, i.e. the fund debited and the bad debt recorded, *before* the
   ``CoverShortfall`` is sent), or ``WriteOffDebt`` when the fund is empty;
4. ``FinishLiquidation`` when nothing is owed (or nothing more can be done),
   then the public record (account hashed) is closed.

Drivers: the ``Engine`` calls it synchronously (``Engine.run_liquidations``),
the ``LiquidatorActor`` over messages; neither holds a rule. The driver loop::

    send = liquidator.next_command(n, prices, ts_ns)   # None: done, held or waiting
    journal(liquidator.take_facts())                   # a drawn cover is durable before it is sent
    events = run(send.shard, send.command); view = book view after it
    liquidator.on_answer(send.command.request_id, events, view, ts_ns)
    journal(liquidator.take_facts())

Durable state changes only through *facts* (``apply``), the same function live
and on replay: ``FundDeposited``, ``LiquidationBegun``, ``CoverDrawn``,
``CoverSettled``, ``LiquidationEnded`` (journal records tagged
``RecordTag.FUND_DEPOSITED`` ... ``LIQUIDATION_ENDED``,
``exchange/messages/tags.py``; ``LiquidationBegun`` carries the start prices). The progress inside one liquidation is not durable: after
a restart a liquidation starts over with the same request ids
(``liq:<n>:start``, ``liq:<n>:cancel:<order>``, ``liq:<n>:step:<i>``,
``liq:<n>:write_off:<i>``, ``liq:<n>:finish``), which the shard
de-duplicates; cover ids (``liq:<n>:cover:<k>``) never repeat because ``k`` is
counted by the durable facts. At most ``limits.liquidations_max`` run at once:
a candidate over the limit is refused and changes nothing (the shard hands it
over again on its next scan).
"""
from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from exchange.config import ExchangeConfig
from exchange.core.money import parse_decimal
from exchange.core.reasons import Reason
from exchange.margin.insurance import Cover, InsuranceFund
from exchange.margin.liquidation import next_action
from exchange.messages.tags import RecordTag, tag_of
from exchange.messages.records import (CancelOrder, CoverShortfall, Fill, FinishLiquidation, LiquidationStage,
                                       LiquidationStep, LiquidationUpdate, OrderRejected, Repaid, StartLiquidation,
                                       WriteOffDebt)

FORMAT = 2                     # the snapshot's ``liquidator`` section (1: the actor's dict before Core v2)
RECORDS_MAX = 10_000           # public records kept
DECISIONS_MAX = 100_000        # decisions per liquidation before it is finished regardless


def account_hash(account_id: int) -> str:
    """The public name of an account in liquidation records."""
    return hashlib.sha256(f"account:{account_id}".encode()).hexdigest()[:16]


class Stage(IntEnum):
    STARTING = 1               # StartLiquidation to send or sent
    CANCELLING = 2             # the book's open orders being cancelled
    TRADING = 3                # steps, covers, write-offs until nothing is owed
    FINISHING = 4              # FinishLiquidation sent
    DONE = 5


class Hold(IntEnum):
    """Why a liquidation waits for the outside world before its next command."""
    NONE = 0
    PRICES = 1                 # a step was refused (no index price): refresh prices, try again shortly
    BOOK = 2                   # widest limit and nothing filled: wait for the order book to refill


class Outcome(IntEnum):
    FINISHED = 1
    NOT_NEEDED = 2


# ---- facts: the durable state transitions (journal records) ------------------------------
class FundDeposited(NamedTuple):
    asset: str
    amount: int


class LiquidationBegun(NamedTuple):
    n: int
    shard: int
    account_id: int
    market: str
    level_ppm: int
    prices: tuple              # the start command's prices (so a re-sent start is the same request)


class CoverDrawn(NamedTuple):
    cover: Cover


class CoverSettled(NamedTuple):
    request_id: str


class LiquidationEnded(NamedTuple):
    n: int
    record: dict               # the record with the account id (the public copy drops it)


def fact_to_record(fact) -> list:
    """A fact as its journal record (plain lists)."""
    kind = type(fact)
    if kind is FundDeposited:
        return [RecordTag.FUND_DEPOSITED, fact.asset, fact.amount]
    if kind is LiquidationBegun:
        return [RecordTag.LIQUIDATION_BEGUN, fact.n, fact.shard, fact.account_id, fact.market, fact.level_ppm,
                list(fact.prices)]
    if kind is CoverDrawn:
        return [RecordTag.COVER_DRAWN, *fact.cover.to_plain()]
    if kind is CoverSettled:
        return [RecordTag.COVER_SETTLED, fact.request_id]
    if kind is LiquidationEnded:
        return [RecordTag.LIQUIDATION_ENDED, fact.n, fact.record]
    raise TypeError(f"not a liquidator fact: {kind.__name__}")


def fact_from_record(record: list):
    """A journal record as its fact (raises ValueError for an unknown record)."""
    kind = tag_of(record)
    if kind is RecordTag.FUND_DEPOSITED:
        return FundDeposited(record[1], record[2])
    if kind is RecordTag.LIQUIDATION_BEGUN:
        return LiquidationBegun(*record[1:6], tuple(record[6]))
    if kind is RecordTag.COVER_DRAWN:
        return CoverDrawn(Cover(*record[1:8]))
    if kind is RecordTag.COVER_SETTLED:
        return CoverSettled(record[1])
    if kind is RecordTag.LIQUIDATION_ENDED:
        return LiquidationEnded(record[1], record[2])
    raise ValueError(f"not a liquidator record: {kind.name}")


# ---- one liquidation -------------------------------------------------------------------------
class Send(NamedTuple):
    """A command for the shard owning the book (``n``: the liquidation, 0 for a re-sent cover).
    ``book`` is the margin book's market ("" for a cross book): the book to read after the
    answer, which is not the command's ``market`` for a cancel of a cross book's order."""
    n: int
    shard: int
    command: object
    book: str


@dataclass(slots=True)
class LiquidationRecord:
    """The public record of one liquidation, built as the answers arrive."""
    n: int
    account_id: int
    market: str
    started_ns: int = 0
    index_prices: dict = field(default_factory=dict)
    orders: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    repaid: dict = field(default_factory=dict)
    interest_paid: dict = field(default_factory=dict)
    shortfall: dict = field(default_factory=dict)
    written_off: dict = field(default_factory=dict)
    outcome: Outcome | None = None
    reason: str = ""
    level_before_ppm: int | None = None
    finished_ns: int = 0
    level_after_ppm: int = 0
    returned: dict = field(default_factory=dict)
    remaining_debt: dict = field(default_factory=dict)

    def to_plain(self) -> dict:
        """The journaled form (the public form plus the account id), the keys of the actor's old records."""
        out = {"n": self.n, "account": self.account_id, "account_hash": account_hash(self.account_id),
               "market": self.market, "mode": "isolated" if self.market else "cross",
               "started_ns": self.started_ns, "index_prices": dict(self.index_prices), "orders": list(self.orders),
               "fills": list(self.fills), "repaid": dict(self.repaid), "interest_paid": dict(self.interest_paid),
               "shortfall": dict(self.shortfall), "written_off": dict(self.written_off)}
        if self.outcome is Outcome.NOT_NEEDED:
            out.update(outcome="not_needed", reason=self.reason)
            return out
        out.update(level_before_ppm=self.level_before_ppm, outcome="finished", finished_ns=self.finished_ns,
                   level_after_ppm=self.level_after_ppm, returned=dict(self.returned),
                   remaining_debt=dict(self.remaining_debt))
        return out

    def collect(self, events: list) -> None:
        """Take this book's fills, repayments and orders from a command's answer."""
        account = self.account_id
        for event in events:
            kind = type(event)
            if kind is Fill and account in (event.taker_account, event.maker_account):
                self.fills.append({"market": event.market, "price": event.price, "quantity": event.quantity,
                                   "side": event.taker_side if event.taker_account == account else
                                   3 - event.taker_side})
            elif kind is Repaid and event.account_id == account:
                _add(self.repaid, event.asset, event.taken)
                _add(self.interest_paid, event.asset, event.interest)
            elif kind is LiquidationUpdate and event.stage == LiquidationStage.ORDER:
                self.orders.append(list(event.detail))


@dataclass(slots=True)
class Liquidation:
    """One liquidation: its durable part (number, book, level, start prices, covers
    drawn) and its progress (stage, decisions, steps per market, ...)."""
    n: int
    shard: int
    account_id: int
    market: str
    level_ppm: int
    prices: tuple
    record: LiquidationRecord
    covers: int = 0
    stage: Stage = Stage.STARTING
    decisions: int = 0
    steps: dict = field(default_factory=dict)          # trade market -> steps sent there
    exhausted: list = field(default_factory=list)      # markets where a step came back idle
    cancels: list = field(default_factory=list)        # (order id, market) still to cancel
    waiting: object = None                             # the command sent and not answered
    hold: Hold = Hold.NONE
    view: dict | None = None                           # the book after the last answer

    @property
    def key(self) -> tuple[int, str]:
        return (self.account_id, self.market)


class Liquidator:
    """Every liquidation of a deployment and the insurance fund they draw on."""

    def __init__(self, config: ExchangeConfig, fund: InsuranceFund | None = None):
        self.config = config
        self.rules = config.margin
        self.fund = fund if fund is not None else InsuranceFund([a.name for a in config.asset_list])
        self.limit = config.limits.liquidations_max
        self.lots = {m.name: (m.base.name, m.quote.name, m.min_lots * m.lot_minor) for m in config.market_list}
        self.active: dict[int, Liquidation] = {}           # n -> liquidation in progress
        self.by_book: dict[tuple[int, str], int] = {}      # (account, market) -> n
        self.sent: dict[str, int] = {}                     # request id awaiting its answer -> n
        self.next_n = 1
        self.count = 0                                     # liquidations ever begun
        self.records: deque = deque(maxlen=RECORDS_MAX)    # public records, oldest first
        self.facts: list = []                              # produced since ``take_facts``

    # ---- facts ---------------------------------------------------------------------------
    def apply(self, fact) -> None:
        """The one durable state transition (live, and replaying the journal)."""
        kind = type(fact)
        if kind is FundDeposited:
            self.fund.deposit(fact.asset, fact.amount)
        elif kind is LiquidationBegun:
            record = LiquidationRecord(fact.n, fact.account_id, fact.market)
            self.active[fact.n] = Liquidation(fact.n, fact.shard, fact.account_id, fact.market, fact.level_ppm,
                                              tuple(fact.prices), record)
            self.by_book[(fact.account_id, fact.market)] = fact.n
            self.next_n = max(self.next_n, fact.n + 1)
            self.count += 1
        elif kind is CoverDrawn:
            self.fund.draw(fact.cover)
            liquidation = self.active.get(fact.cover.n)
            if liquidation is not None:
                liquidation.covers += 1
        elif kind is CoverSettled:
            self.fund.settle(fact.request_id)
        elif kind is LiquidationEnded:
            liquidation = self.active.pop(fact.n, None)
            key = (fact.record["account"], fact.record["market"])
            if self.by_book.get(key) == fact.n:
                del self.by_book[key]
            if liquidation is not None and liquidation.waiting is not None:
                self.sent.pop(liquidation.waiting.request_id, None)
            self.records.append({k: v for k, v in fact.record.items() if k != "account"})
        else:
            raise TypeError(f"not a liquidator fact: {kind.__name__}")

    def _emit(self, fact) -> None:
        self.apply(fact)
        self.facts.append(fact)

    def take_facts(self) -> list:
        """The facts produced since the last call (the actor journals them)."""
        facts, self.facts = self.facts, []
        return facts

    # ---- inputs ----------------------------------------------------------------------------
    def deposit(self, asset: str, amount: int) -> None:
        """Add capital to the fund (ValueError: unknown asset or non-positive amount)."""
        if asset not in self.fund.balance or type(amount) is not int or amount <= 0:
            raise ValueError("unknown asset or non-positive amount")
        self._emit(FundDeposited(asset, amount))

    def seed_fund(self) -> None:
        """The fund's starting capital from ``[insurance.initial]`` (recorded deposits),
        unless anything was ever deposited."""
        if any(self.fund.deposited.values()):
            return
        for asset, text in self.config.sections.get("insurance", {}).get("initial", {}).items():
            amount = parse_decimal(text, self.config.assets[asset].scale)
            if amount > 0:
                self.deposit(asset, amount)

    def candidate(self, shard: int, account_id: int, market: str, level_ppm: int, prices) -> bool:
        """Take a book over (once); False if it is already in liquidation or
        ``liquidations_max`` are running (refused: nothing changes)."""
        if (account_id, market) in self.by_book or len(self.active) >= self.limit:
            return False
        self._emit(LiquidationBegun(self.next_n, shard, account_id, market, level_ppm, tuple(prices)))
        return True

    # ---- decisions ---------------------------------------------------------------------------
    def next_commands(self, prices, ts_ns: int) -> list[Send]:
        """The next command of every liquidation that is neither waiting for an answer nor held."""
        sends = [self.next_command(n, prices, ts_ns) for n in sorted(self.active)]
        return [s for s in sends if s is not None]

    def next_command(self, n: int, prices, ts_ns: int) -> Send | None:
        """Liquidation ``n``'s next command; None if it is done, held or waiting for an answer."""
        liq = self.active.get(n)
        if liq is None or liq.waiting is not None or liq.hold is not Hold.NONE:
            return None
        command = self._decide(liq, tuple(prices), ts_ns)
        if command is None:
            return None
        liq.waiting = command
        self.sent[command.request_id] = n
        return Send(n, liq.shard, command, liq.market)

    def _decide(self, liq: Liquidation, prices: tuple, ts_ns: int):
        n, account, market = liq.n, liq.account_id, liq.market
        if liq.stage is Stage.STARTING:
            start_prices = liq.prices or prices
            liq.record.started_ns = ts_ns
            liq.record.index_prices = {a.name: start_prices[a.index] for a in self.config.asset_list}
            return StartLiquidation(f"liq:{n}:start", ts_ns, account, market, start_prices)
        if liq.stage is Stage.CANCELLING:
            order_id, order_market = liq.cancels[0]
            return CancelOrder(f"liq:{n}:cancel:{order_id}", ts_ns, account, order_market, order_id)
        if liq.stage is not Stage.TRADING:
            return None
        liq.decisions += 1
        i = liq.decisions
        markets = [market] if market else sorted(self.rules.markets)
        action = ("finish",) if liq.view is None or i > DECISIONS_MAX else \
            next_action(liq.view, [m for m in markets if m not in liq.exhausted], self.lots, markets[0])
        if action[0] == "finish":
            liq.stage = Stage.FINISHING
            return FinishLiquidation(f"liq:{n}:finish", ts_ns, account, market)
        if action[0] == "trade":
            trade = action[1]
            liq.steps[trade] = liq.steps.get(trade, 0) + 1
            step = min(liq.steps[trade], self.rules.liquidation_max_steps)
            return LiquidationStep(f"liq:{n}:step:{i}", ts_ns, account, market, trade, step, prices)
        asset, owed = action[1], action[2]
        amount = self.fund.cover_amount(asset, owed)
        if amount <= 0:                               # the fund is empty: the pool writes the rest off
            _add(liq.record.written_off, asset, owed)
            return WriteOffDebt(f"liq:{n}:write_off:{i}", ts_ns, account, market, asset)
        rid = f"liq:{n}:cover:{liq.covers}"
        self._emit(CoverDrawn(Cover(rid, n, liq.shard, account, market, asset, amount)))
        return CoverShortfall(rid, ts_ns, account, market, asset, amount)

    def on_answer(self, request_id, events: list, view: dict | None, ts_ns: int) -> None:
        """The shard's events for a command sent, and the book's view after them."""
        if request_id in self.fund.in_flight:
            self._emit(CoverSettled(request_id))
        n = self.sent.pop(request_id, None)
        liq = self.active.get(n) if n is not None else None
        if liq is None or liq.waiting is None or liq.waiting.request_id != request_id:
            return                                    # a re-sent cover, or an answer nobody waits for
        command, liq.waiting, liq.view = liq.waiting, None, view
        kind = type(command)
        if kind is StartLiquidation:
            self._started(liq, events)
        elif kind is CancelOrder:
            liq.cancels.pop(0)
            if not liq.cancels:
                liq.stage = Stage.TRADING
        elif kind is LiquidationStep:
            self._stepped(liq, command, events)
        elif kind is CoverShortfall:
            liq.record.collect(events)
            _add(liq.record.shortfall, command.asset, command.amount)
        elif kind is FinishLiquidation:
            self._finished(liq, view, ts_ns)

    def _started(self, liq: Liquidation, events: list) -> None:
        started = _first(events, LiquidationUpdate)
        if started is None:
            rejected = _first(events, OrderRejected)
            liq.record.outcome = Outcome.NOT_NEEDED
            liq.record.reason = Reason(rejected.reason).name if rejected else "unknown"
            liq.stage = Stage.DONE
            self._emit(LiquidationEnded(liq.n, liq.record.to_plain()))
            return
        liq.record.level_before_ppm = started.level_ppm
        liq.cancels = [tuple(order) for order in started.detail]
        liq.stage = Stage.CANCELLING if liq.cancels else Stage.TRADING

    def _stepped(self, liq: Liquidation, command: LiquidationStep, events: list) -> None:
        liq.record.collect(events)
        update = _first(events, LiquidationUpdate)
        if update is None:                            # refused (no index price yet): ask again shortly
            liq.hold = Hold.PRICES
        elif update.stage == LiquidationStage.IDLE:   # nothing this book can trade there
            liq.exhausted.append(command.trade_market)
        elif liq.steps[command.trade_market] >= self.rules.liquidation_max_steps and \
                not any(type(e) is Fill or type(e) is Repaid for e in events):
            liq.hold = Hold.BOOK                      # widest limit and no bid: wait for the book to refill

    def _finished(self, liq: Liquidation, view: dict | None, ts_ns: int) -> None:
        record = liq.record
        record.outcome, record.finished_ns = Outcome.FINISHED, ts_ns
        if view is not None:
            record.level_after_ppm = view["level_ppm"] or 0
            record.returned = {a: v for a, v in view["available"].items() if v}
            record.remaining_debt = {a: v for a, v in view["debt"].items() if v}
        liq.stage = Stage.DONE
        self._emit(LiquidationEnded(liq.n, record.to_plain()))

    # ---- holds and resumption ---------------------------------------------------------------
    def held(self) -> dict[int, Hold]:
        """Liquidations waiting for the outside world: n -> why."""
        return {n: liq.hold for n, liq in self.active.items() if liq.hold is not Hold.NONE}

    def hold_of(self, n: int) -> Hold:
        liq = self.active.get(n)
        return Hold.NONE if liq is None else liq.hold

    def release(self, n: int | None = None) -> None:
        """Let held liquidations (one, or all) send again."""
        for liq in ([self.active[n]] if n in self.active else [] if n is not None else self.active.values()):
            liq.hold = Hold.NONE

    def pending_covers(self, ts_ns: int) -> list[Send]:
        """Covers drawn and not known to be applied (after a restart: re-send them as they were)."""
        return [Send(0, c.shard, CoverShortfall(c.request_id, ts_ns, c.account_id, c.market, c.asset, c.amount),
                     c.market)
                for _, c in sorted(self.fund.in_flight.items())]

    # ---- views ---------------------------------------------------------------------------------
    def in_progress(self) -> list[tuple[int, str]]:
        return sorted(self.by_book)

    def public_records(self, limit: int = 100) -> list[dict]:
        return list(self.records)[-limit:] if limit > 0 else []

    def pending_by_mode(self) -> dict[str, int]:
        isolated = sum(1 for liq in self.active.values() if liq.market)
        return {"cross": len(self.active) - isolated, "isolated": isolated}

    # ---- self-checks and plain data -------------------------------------------------------------
    def check_invariants(self) -> None:
        self.fund.check_invariants()
        assert len(self.active) <= self.limit, "more liquidations than liquidations_max"
        assert {(l.account_id, l.market): n for n, l in self.active.items()} == self.by_book, "book index drifted"
        assert all(n < self.next_n for n in self.active), "a liquidation numbered ahead of next_n"

    def canonical(self) -> tuple:
        """The durable state (progress inside a liquidation is not: a restart starts it over)."""
        return (self.next_n, self.count, tuple(_durable(l) for _, l in sorted(self.active.items())),
                _canon(list(self.records)), self.fund.canonical())

    def state_hash(self) -> str:
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    def to_plain(self) -> dict:
        return {"format": FORMAT, "next_n": self.next_n, "count": self.count,
                "active": [list(_durable(l)) for _, l in sorted(self.active.items())],
                "records": list(self.records), "fund": self.fund.to_plain()}

    @classmethod
    def from_plain(cls, config: ExchangeConfig, state: dict) -> "Liquidator":
        """Restore ``to_plain``'s output; any other format is refused (ValueError). A
        snapshot from before Core v2 (no ``format``) never gets here: its store is
        format 2, which the store refuses (``actors/durability/storage.py``)."""
        if state.get("format") != FORMAT:
            raise ValueError(f"liquidator state format {state.get('format')!r}, this code reads {FORMAT}")
        fund = InsuranceFund.from_plain([a.name for a in config.asset_list], state["fund"])
        liquidator = cls(config, fund)
        liquidator.next_n, liquidator.count = state["next_n"], state["count"]
        for n, shard, account, market, level, prices, covers in state["active"]:
            liquidator.active[n] = Liquidation(n, shard, account, market, level, tuple(prices),
                                               LiquidationRecord(n, account, market), covers)
            liquidator.by_book[(account, market)] = n
        liquidator.records.extend(state["records"])
        return liquidator



def _durable(liq: Liquidation) -> tuple:
    return (liq.n, liq.shard, liq.account_id, liq.market, liq.level_ppm, tuple(liq.prices), liq.covers)


def _canon(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_canon(v) for v in value)
    return value


def _add(totals: dict, asset: str, amount: int) -> None:
    totals[asset] = totals.get(asset, 0) + amount


def _first(events: list, kind):
    return next((e for e in events if type(e) is kind), None)
