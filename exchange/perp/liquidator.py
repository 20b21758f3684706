"""The perpetual liquidator: who is due, in what order, the book, the fund, then ADL.

A pure step machine (no clock, no I/O, no desk). Each liquidation is driven
by a generator, ``step(n, ts_ns)``, that yields what it needs and receives
the answer:

- ``Read(what, account, market, n)``: a question a shard answers with
  ``exchange.perp.liquidation.read`` (who is ``due`` and ``candidates`` for
  ADL are asked of every shard and merged; ``orders`` and ``liquidation``
  of the account's shard);
- ``Send(command)``: a liquidator command through the door of the shard
  owning ``command.account_id``; the answer is its events;
- ``SendAll(commands)``: many at once (an ADL round's closes), answered in
  order.

The Engine answers in-process (``run``: the same ``read`` on its one desk,
commands through ``Engine.apply``); the liquidator actor answers over Ray
and drives many liquidations at once. A round steps every open liquidation
and every newly due one, then runs one ADL round (``deleverage``) for all
that need it, then steps those again. A liquidation, in order:

1. the account's orders in the markets concerned are cancelled and the
   position taken over at the mark (``TakeOverPerp``; only while still due);
2. per market, an immediate-or-cancel order at the liquidation's
   **bankruptcy price** (fills there or better: a surplus for the fund);
3. what is left, at a worse price no further than the fund can pay: the
   market's fund stands behind at most ``max_draw`` of its balance (less
   what open liquidations already reserved) for one bankruptcy, and nothing
   while it is drawn down ``adl_drawdown`` below its high of the window;
4. what is still left is **auto-deleveraged** at the bankruptcy price
   (``exchange.perp.adl``: ranked opposite positions from every shard, only
   what is needed, linked accounts skipped), with an ``ADL_START`` and an
   ``ADL_END`` entry in the fund's chain carrying the trigger values, the
   ranked candidates under pseudonyms and the lots taken. One round plans
   every liquidation waiting for ADL in a market and side together: one
   read of the candidates (from every shard, linked accounts left out at
   the source), ranked once, each liquidation by number taking the next
   ranked positions (``adl.allocate``), so concurrent liquidations never
   race for a position; every close leaves at once. With no opposite
   position left the lots wait, unrecorded, for a later round;
5. ``FinishPerpLiquidation``: the equity left in each market goes into its
   fund (``LIQUIDATION_SURPLUS``) or is drawn from it (``BANKRUPTCY_LOSS``).

**Rate limit.** Orders of liquidations close at most ``liquidation_notional``
(quote units, per market, per second of ``ts_ns``); a liquidation over it
waits with its position for a later step, so a cascade cannot sweep a thin
book in one burst. ADL is not limited: it moves no price.

**Facts and restarts.** Every decision that must survive the liquidator is a
fact (``take_facts``: journal records tagged ``RecordTag.PERP_*``, replayed
by ``apply``): a liquidation opened (before its take-over is sent), taken
over, fund reserved for a worse-priced order, an ADL planned (before any of
its closes is sent), an ADL done, a liquidation ended, accounts linked, and
every fund entry. The actor makes the facts durable before each command
leaves. Request ids derive from the facts (``pliq:<n>:take``,
``pliq:<n>:finish``, an ADL's ``...:adl:<plan>:<account>``, the plan named by
its ``ADL_START`` entry's number), so after a
restart the machine re-reads the liquidation and re-sends what may have
gone unanswered with the same ids; the shards' replay memory answers a
repeated one without applying it twice. Orders are never re-sent: each step
reads the lots left first. Not durable: the per-second budget (a restart
may close one more second's worth early).

The ADL triggers are published as configuration (``PerpFund.view``, the
rules' hash) and recorded in each ``ADL_START``: the book within the
bankruptcy price and the fund's share (``max_draw``) were not enough, or the
fund was drawn down past ``adl_drawdown``.
"""
from __future__ import annotations

from typing import Callable, Generator, NamedTuple

from exchange.core.reasons import Reason
from exchange.core.routing import ShardLayout, house_account, shard_for
from exchange.messages.records import (AbsorbDeleverage, CancelPerpOrder, DeleveragePerp, FinishPerpLiquidation,
                                       LiquidationOrderPerp, OrderRejected, SweepPerpFees, TakeOverPerp)
from exchange.messages.tags import RecordTag
from exchange.messages.validation import check_fields
from exchange.perp import adl, compensation
from exchange.perp.fund import EntryKind, PerpFund
from exchange.perp.liquidation import ACCOUNT, CANDIDATES, DUE, LIQUIDATION, ORDERS
from exchange.perp.rules import perp_markets
from exchange.risk.admin import permit

NS = 10**9
RECORDS_KEPT = 10_000
UNREAD = object()               # no view was read (nothing was sent)
T = RecordTag


class Read(NamedTuple):
    what: str                   # DUE, ORDERS, LIQUIDATION or CANDIDATES (``exchange.perp.liquidation.read``)
    account_id: int = 0
    market: str = ""
    n: int = 0                  # a liquidation's number; for CANDIDATES the bankrupt position's signed lots
    exclude: tuple = ()         # for CANDIDATES: accounts never taken (the liquidated one, those linked to it)


class Send(NamedTuple):
    command: object             # to the shard owning ``command.account_id``, through the liquidator's door


class SendAll(NamedTuple):
    commands: tuple             # each as a ``Send``, all at once; the answer: their events, in order


Steps = Generator[Read | Send | SendAll, object, object]


def new_perp_liquidator(config, journaling: bool = True) -> "PerpLiquidator":
    """The venue's perpetual liquidator and funds (none on a venue without perpetuals), with the
    pseudonym key of ``[perp_fund]`` (a demo key without one)."""
    perps = perp_markets(config)
    fund = PerpFund(sorted(perps), draw_caps={name: p.max_draw_ppm for name, p in perps.items()},
                    adl_drawdown={name: (p.adl_drawdown_ppm, p.drawdown_window_ns) for name, p in perps.items()})
    return PerpLiquidator(perps, fund, pseudonym_key(config), journaling, config.risk)


def pseudonym_key(config) -> bytes:
    """The key of the venue's published account pseudonyms: ``[perp_fund] pseudonym_key``, a
    demo key without one (``exchange.perp.adl.pseudonym``)."""
    return str(config.sections.get("perp_fund", {}).get("pseudonym_key", "exchange-demo-key")).encode()


def drive(steps: Steps, answer: Callable) -> dict | None:
    """Run a step generator to its end, answering each request with ``answer(request)``."""
    try:
        request = next(steps)
        while True:
            request = steps.send(answer(request))
    except StopIteration as stop:
        return stop.value


def _view(account: int, n: int) -> Read:
    """The read of liquidation ``n``'s state on ``account``'s shard (``liquidation.view``)."""
    return Read(LIQUIDATION, account, "", n)


def rejected(events: list) -> bool:
    return not events or type(events[0]) is OrderRejected


class PerpLiquidator:
    def __init__(self, markets: dict, fund: PerpFund, pseudonym_key: bytes, journaling: bool = True,
                 rulebook=None):
        self.markets = markets                      # name -> PerpMarket
        self.rulebook = rulebook                    # the risk rulebook's operators (None: no compensations)
        self.acked: dict[tuple[str, int], int] = {}  # (market, shard) -> compensations it holds, as last heard
                                                    # (not durable: a restart sends again, the shard says so)
        self.fund = fund
        self.key = pseudonym_key
        self.journaling = journaling                # keep facts for a journal (the actor) or not (the Engine)
        self.seq = 0
        self.open: dict[int, list] = {}             # n -> [account, market ("" cross), equity taken over or None]
        self.reserved: dict[tuple[int, str], int] = {}   # (n, market) -> fund loss its orders may cost
        self.adl: dict[tuple[int, str], list] = {}  # (n, market) -> [plan, price, wanted, [[account, lots]]] planned
        self.used: dict[tuple[str, int], int] = {}  # (market, second) -> notional ordered (not durable)
        self.wanting: dict[tuple[int, str], tuple] = {}  # (n, market) -> (lots, bankruptcy price, mark): this
                                                    # round's steps left them to ADL (``deleverage``; not durable)
        self.linked: dict[int, frozenset] = {}      # account -> accounts an operator linked to it
        self.records: list[dict] = []               # finished liquidations, public (the latest RECORDS_KEPT)
        self.finished = 0                           # liquidations finished (taken over and closed), ever
        self.facts: list[list] = []

    # ---- facts ----------------------------------------------------------------------------
    def take_facts(self) -> list[list]:
        facts, self.facts = self.facts, []
        return facts

    def _fact(self, record: list) -> None:
        self.apply(record)
        if self.journaling:
            self.facts.append(record)

    def _entry(self, kind: EntryKind, market: str, amount: int, ts_ns: int, details: tuple) -> None:
        entry = self.fund.record(kind, market, amount, ts_ns, details)
        if self.journaling:
            self.facts.append([T.PERP_FUND_ENTRY, entry.to_plain()])

    def apply(self, record: list) -> None:
        """Apply one fact (live, or replayed from the journal)."""
        tag = T(record[0])
        if tag is T.PERP_FUND_ENTRY:
            self.fund.replay(record[1])
        elif tag is T.PERP_LIQUIDATION_OPENED:
            _, n, account, market = record
            self.seq = max(self.seq, n)
            self.open[n] = [account, market, None]
        elif tag is T.PERP_LIQUIDATION_TAKEN:
            self.open[record[1]][2] = record[2]
        elif tag is T.PERP_FUND_RESERVED:
            _, n, market, amount = record
            self.reserved[(n, market)] = amount
        elif tag is T.PERP_ADL_PLANNED:
            _, n, market, plan_id, price, wanted, takes = record
            self.adl[(n, market)] = [plan_id, price, wanted, [list(t) for t in takes]]
        elif tag is T.PERP_ADL_DONE:
            self.adl.pop((record[1], record[2]), None)
        elif tag is T.PERP_LIQUIDATION_ENDED:
            _, n, public = record
            self.open.pop(n, None)
            for key in [key for key in self.reserved if key[0] == n]:
                del self.reserved[key]
            if public is not None:
                self.finished += 1
                self.records.append(public)
                del self.records[:-RECORDS_KEPT]
        elif tag is T.PERP_ACCOUNTS_LINKED:
            _, a, b = record
            self.linked[a] = self.linked.get(a, frozenset()) | {b}
            self.linked[b] = self.linked.get(b, frozenset()) | {a}
        else:
            raise ValueError(f"not a perpetual liquidator fact: {record[:1]!r}")

    def link(self, a: int, b: int) -> None:
        """Treat ``a`` and ``b`` as one owner: neither is ever deleveraged against the other."""
        self._fact([T.PERP_ACCOUNTS_LINKED, a, b])

    def top_up(self, market: str, amount: int, ts_ns: int, by: str = "operator") -> None:
        """Add capital to a market's fund (a ``TOP_UP`` entry; ValueError if unusable)."""
        self._entry(EntryKind.TOP_UP, market, amount, ts_ns, (("by", by),))

    def add_fund_totals(self, holdings: dict, deposited: dict) -> None:
        """Add the funds (per settlement asset name) to ``holdings`` and their top-ups to
        ``deposited``: what conservation counts as held by, and brought into, the funds."""
        for name, balance in self.fund.balances.items():
            asset = self.markets[name].spec.quote.name
            holdings[asset] = holdings.get(asset, 0) + balance
        for entry in self.fund.entries:
            if entry.kind == EntryKind.TOP_UP:
                asset = self.markets[entry.market].spec.quote.name
                deposited[asset] = deposited.get(asset, 0) + entry.amount

    # ---- rounds -----------------------------------------------------------------------------
    def seed(self, ts_ns: int) -> None:
        """Each market's ``fund_initial`` as a ``TOP_UP`` by "config", into funds with no entry yet."""
        if not self.fund.entries:
            for name, market in sorted(self.markets.items()):
                if market.fund_initial:
                    self.top_up(name, market.fund_initial, ts_ns, "config")

    def prune(self, ts_ns: int) -> None:
        """Forget the per-second budget of seconds before the last one."""
        self.used = {k: v for k, v in self.used.items() if k[1] >= ts_ns // NS - 1}

    def admit(self, due: list) -> list[int]:
        """Open a liquidation for each due ``[account, market]`` not under one already;
        return their numbers (each ``step`` re-checks that it is still due)."""
        busy = {(account, market) for account, market, _ in self.open.values()}
        new = []
        for account, market in due:
            if (account, market) in busy:
                continue
            busy.add((account, market))
            self._fact([T.PERP_LIQUIDATION_OPENED, self.seq + 1, account, market])
            new.append(self.seq)
        return new

    def run(self, answer: Callable, ts_ns: int) -> list[dict]:
        """One round in-process, liquidation by liquidation: the open ones, then every
        position due now, then one ADL round for all that need it and a step more for those
        it deleveraged. Returns the public records of those that finished."""
        self.prune(ts_ns)
        finished = [drive(self.step(n, ts_ns), answer) for n in sorted(self.open)]
        for n in self.admit(answer(Read(DUE))):
            finished.append(drive(self.step(n, ts_ns), answer))
        for n in drive(self.deleverage(ts_ns), answer):
            finished.append(drive(self.step(n, ts_ns), answer))
        return [record for record in finished if record is not None]

    def sweep(self, shard: int, shards: int | ShardLayout, ts_ns: int) -> Steps:
        """Collect each market's fee share from ``shard`` (of ``shards``) into its fund: a
        ``FEE_SHARE`` entry for what the shard moved since the fund last recorded it
        (``exchange.perp.fees``; exactly once across lost answers and restarts)."""
        account = house_account(shard, shards)
        for name in sorted(self.markets):
            if not self.markets[name].fee_share_ppm:
                continue
            known = self.fund.fees_through.get((name, shard), 0)
            events = yield Send(SweepPerpFees(f"pfee:{name}:{known}:{ts_ns}", ts_ns, account, name, known))
            known = self.fund.fees_through.get((name, shard), 0)     # as recorded now (another sweep's answer)
            if not rejected(events) and events[0].swept > known:
                self._entry(EntryKind.FEE_SHARE, name, events[0].swept - known, ts_ns,
                            (("shard", shard), ("through", events[0].swept)))
        for name in sorted(self.markets):
            yield from self.deliver(name, shard)

    # ---- compensations (exchange.perp.compensation) -----------------------------------------
    def compensate(self, order: compensation.Compensation, ts_ns: int, shards: int | ShardLayout) -> Steps:
        """Pay an operator's compensation out of the market's fund: checked, asked of the
        account's shard whether the account exists, recorded (a ``COMPENSATION`` entry), then
        delivered with any earlier one the shard has not acknowledged. Returns the refusal's
        ``Reason`` (nothing recorded) or None."""
        refused = self._refusal(order)
        if refused is not None:
            return refused
        if order.account_id <= 0 or not (yield Read(ACCOUNT, order.account_id)):
            return Reason.UNKNOWN_ACCOUNT
        refused = self._refusal(order)              # again: the fund may have paid out meanwhile
        if refused is not None:
            return refused
        shard = shard_for(order.account_id, shards)
        seq, through = self.fund.paid_to(order.market, shard)
        self._entry(EntryKind.COMPENSATION, order.market, -order.amount, ts_ns,
                    (("account", order.account_id), ("shard", shard), ("seq", seq + 1),
                     ("through", through + order.amount), ("operator", order.operator), ("reason", order.reason)))
        yield from self.deliver(order.market, shard)
        return None

    def _refusal(self, order: compensation.Compensation) -> Reason | None:
        if self.rulebook is None:
            return Reason.UNKNOWN_OPERATOR
        shape = check_fields(compensation.probe(order), 0)   # what the shard's door will ask of the command
        if shape is not None:
            return shape
        refused = permit(self.rulebook, order, compensation.ROLES)
        if refused is not None:
            return refused
        if order.market not in self.markets:
            return Reason.UNKNOWN_MARKET
        if order.amount <= 0:
            return Reason.NON_POSITIVE_AMOUNT
        reserved = sum(v for (_, market), v in self.reserved.items() if market == order.market)
        if order.amount > self.fund.balances[order.market] - reserved:
            return Reason.FUND_INSUFFICIENT
        return None

    def deliver(self, market: str, shard: int) -> Steps:
        """Send ``shard`` the compensations from ``market``'s fund it has not acknowledged, in
        order (each with the body it was first sent with); stop at one that does not land."""
        key = (market, shard)
        for entry in self.fund.compensations.get(key, ())[self.acked.get(key, 0):]:
            cmd = compensation.command(entry)
            if cmd.seq <= self.acked.get(key, 0):
                continue                            # the shard said it holds this one already
            events = yield Send(cmd)
            if rejected(events):
                return
            self.acked[key] = max(self.acked.get(key, 0), events[0].seq)

    def pending(self) -> list[tuple[str, int]]:
        """(market, shard) with compensations not acknowledged yet."""
        return [key for key, (seq, _) in sorted(self.fund.paid.items()) if self.acked.get(key, 0) < seq]

    # ---- one liquidation ----------------------------------------------------------------------
    def step(self, n: int, ts_ns: int) -> Steps:
        """Drive liquidation ``n`` as far as it goes now; return its public record when it
        finished, None while it waits (the rate limit, an order still in flight, this round's
        ADL: ``wanting``) or when it ended without a take-over (no longer due)."""
        account, market, taken = self.open[n]
        view = yield _view(account, n)
        if view is None and taken is None:
            orders = yield Read(ORDERS, account, market)
            if orders is None:
                self._fact([T.PERP_LIQUIDATION_ENDED, n, None])
                return None
            for order_id, name in orders:
                yield Send(CancelPerpOrder(f"pliq:{n}:cancel:{order_id}", ts_ns, account, name, order_id))
            if rejected((yield Send(TakeOverPerp(f"pliq:{n}:take", ts_ns, account, market, n)))):
                self._fact([T.PERP_LIQUIDATION_ENDED, n, None])
                return None
            view = yield _view(account, n)
        if taken is None:
            self._fact([T.PERP_LIQUIDATION_TAKEN, n, sum(s["share"] for s in view["markets"].values())])
        for key in sorted(k for k in self.adl if k[0] == n):       # planned before a restart
            yield from self.close_planned(n, key[1], ts_ns)
            view = yield _view(account, n)
        if view is None:          # it finished before a restart recorded it: the shard repeats the answer
            return (yield from self._finish(n, account, ts_ns))
        self._reserve(n, view)
        latest = view                          # the liquidation as last read, after every command sent
        for name, state in view["markets"].items():
            if state["lots"] and not state["order_open"]:
                read = yield from self._close(n, account, name, state, ts_ns)
                latest = latest if read is UNREAD else read
        view = latest
        if view is not None and any(s["lots"] or s["order_open"] for s in view["markets"].values()):
            return None
        return (yield from self._finish(n, account, ts_ns))

    def _finish(self, n: int, account: int, ts_ns: int) -> Steps:
        events = yield Send(FinishPerpLiquidation(f"pliq:{n}:finish", ts_ns, account, n))
        if rejected(events):      # unknown to the shard and not in its replay memory any more
            public = {"liquidation": n, "account": adl.pseudonym(self.key, account), "unreconciled": True,
                      "ts_ns": ts_ns}
            self._fact([T.PERP_LIQUIDATION_ENDED, n, public])
            return public
        per_market = {event.market: event.amount for event in events}
        for name, amount in per_market.items():
            if amount > 0:
                self._entry(EntryKind.LIQUIDATION_SURPLUS, name, amount, ts_ns, (("liquidation", n),))
            elif amount < 0:
                self._entry(EntryKind.BANKRUPTCY_LOSS, name, amount, ts_ns, (("liquidation", n),))
        public = {"liquidation": n, "account": adl.pseudonym(self.key, account), "markets": sorted(per_market),
                  "equity_taken": self.open[n][2], "fund": per_market, "ts_ns": ts_ns}
        self._fact([T.PERP_LIQUIDATION_ENDED, n, public])
        return public

    def _close(self, n: int, account: int, name: str, state: dict, ts_ns: int) -> Steps:
        """Steps 2 to 4 in one market; return the liquidation's view read after the last order
        (``UNREAD`` if none was sent)."""
        market = self.markets[name]
        k, lots = market.k, state["lots"]
        bankrupt = state["bankrupt"] or state["mark"]   # no positive price breaks even: close at the mark
        # 2. the book at the bankruptcy price or better, within the second's budget
        lots, view = yield from self._order(n, account, name, bankrupt, lots, ts_ns, "book")
        if not lots or self._budget(name, ts_ns, bankrupt) <= 0:
            return view
        # 3. a worse price, as far as the fund can pay (nothing while it is drawn down past the trigger)
        committed = sum(v for (_, m), v in self.reserved.items() if m == name)
        drawn_down = self.fund.drawdown_ppm(name, ts_ns, market.drawdown_window_ns,
                                            committed) >= market.adl_drawdown_ppm     # counting what is promised
        gap = 0 if drawn_down else max(0, self.fund.payable(name, 1 << 62) - committed) // (abs(lots) * k)
        if gap:
            worst = max(1, bankrupt - gap if lots > 0 else bankrupt + gap)
            self._fact([T.PERP_FUND_RESERVED, n, name,
                        self.reserved.get((n, name), 0) + abs(lots) * abs(bankrupt - worst) * k])
            lots, fund_view = yield from self._order(n, account, name, worst, lots, ts_ns, "fund")
            view = view if fund_view is UNREAD else fund_view
        if not lots or self._budget(name, ts_ns, bankrupt) <= 0:
            return view
        # 4. ADL at the bankruptcy price: with every other liquidation's, in this round's ``deleverage``
        self.wanting[(n, name)] = (lots, bankrupt, state["mark"])
        return view

    def _budget(self, name: str, ts_ns: int, price: int) -> int:
        """Lots the second's notional budget still allows at ``price``."""
        market = self.markets[name]
        left = market.liquidation_notional - self.used.get((name, ts_ns // NS), 0)
        return max(0, left // (price * market.k))

    def _order(self, n: int, account: int, name: str, price: int, lots: int, ts_ns: int, why: str) -> Steps:
        """Send an order for as many of ``lots`` as the budget allows; return the lots left (0
        while the order is still open: nothing more until it closed) and the view read after
        it (``UNREAD`` when the budget allowed none)."""
        market = self.markets[name]
        size = min(abs(lots), self._budget(name, ts_ns, price))
        if size <= 0:
            return lots, UNREAD
        key = (name, ts_ns // NS)
        self.used[key] = self.used.get(key, 0) + size * price * market.k
        yield Send(LiquidationOrderPerp(f"pliq:{n}:{name}:{why}:{ts_ns}", ts_ns, account, name, n,
                                        price * market.spec.tick_minor, size * market.spec.lot_minor))
        view = yield _view(account, n)
        if view is None:
            return 0, view
        self._reserve(n, view)
        state = view["markets"][name]
        return (0 if state["order_open"] else state["lots"]), view

    def _reserve(self, n: int, view: dict) -> None:
        """Reserve, per market, what liquidation ``n`` will draw from the fund if the rest closes
        at the bankruptcy price: the loss its fills so far locked in (from the shard's view, so
        a reservation for an order that never left is dropped at the next read)."""
        for name, state in view["markets"].items():
            price = state["bankrupt"] or state["mark"]
            loss = max(0, state["basis"] - state["left"] - state["lots"] * price * self.markets[name].k)
            if self.reserved.get((n, name), 0) != loss:
                self._fact([T.PERP_FUND_RESERVED, n, name, loss])

    # ---- ADL: one round for every liquidation waiting for it ------------------------------------
    def deleverage(self, ts_ns: int) -> Steps:
        """Step 4 for every liquidation this round's steps left lots to (``wanting``), market by
        market and side by side: one read of the candidates for all of them, ranked once, and
        each liquidation in turn (by number) takes the next ranked positions, only what it
        needs (``adl.allocate``). Every plan is a fact, with its ``ADL_START`` entry, before
        any close leaves; then every candidate's close at once, every absorption at once, and
        an ``ADL_END`` entry each. Returns the liquidations that were deleveraged (step them
        again to finish them)."""
        wanting, self.wanting = self.wanting, {}
        groups: dict[tuple[str, bool], list] = {}
        for (n, name), (lots, bankrupt, mark) in sorted(wanting.items()):
            if n in self.open and (n, name) not in self.adl:
                groups.setdefault((name, lots > 0), []).append((n, lots, bankrupt, mark))
        done: list[int] = []
        for (name, _), group in sorted(groups.items()):
            done += yield from self._deleverage_group(name, group, ts_ns)
        return sorted(set(done))

    def _deleverage_group(self, name: str, group: list, ts_ns: int) -> Steps:
        market = self.markets[name]
        long_side = group[0][1] > 0                   # the liquidations hold longs: shorts are taken
        claimed = self._claimed(name)                 # plans a restart left (their closes are re-sent first)
        exclude = set()
        for n, *_ in group:
            account = self.open[n][0]
            exclude |= self.linked.get(account, frozenset()) | {account}
        wanted = sum(abs(lots) for _, lots, _, _ in group) + sum(claimed.values())
        read = yield Read(CANDIDATES, 0, name, wanted if long_side else -wanted, tuple(sorted(exclude)))
        pool = []
        for candidate, held, basis, equity in read:
            free = max(0, abs(held) - claimed.get(candidate, 0))
            if free:
                pool.append(adl.Candidate(candidate, free if held > 0 else -free,       # ranked on what is free
                                          basis * free // abs(held), equity))
        mark = group[0][3]
        ranked = adl.ranking([c for c in pool if (c.lots > 0) != long_side], mark, market.k)
        drawdown = self.fund.drawdown_ppm(name, ts_ns, market.drawdown_window_ns)
        side = -1 if long_side else 1                 # the candidates hold the other side
        labels: dict[int, str] = {}                   # ranked place -> "pseudonym:score", made once

        def label(i: int) -> str:
            if i not in labels:
                score, candidate = ranked[i]
                labels[i] = f"{adl.pseudonym(self.key, candidate.account_id)}:{score.numerator}/{score.denominator}"
            return labels[i]
        planned, place = [], 0
        for (n, lots, bankrupt, _), takes in zip(group, adl.allocate(ranked, [abs(l) for _, l, _, _ in group])):
            if not takes:                             # nobody left: the rest wait, unrecorded, for a later round
                break
            account = self.open[n][0]
            linked = self.linked.get(account, frozenset())
            plan_id = len(self.fund.entries) + 1      # the ADL_START entry's number names the plan
            self._entry(EntryKind.ADL_START, name, 0, ts_ns, (
                ("liquidation", n), ("bankruptcy_price", bankrupt), ("mark", mark), ("lots", abs(lots)),
                ("fund_balance", self.fund.balances[name]), ("max_draw_ppm", self.fund.cap(name)),
                ("fund_drawdown_ppm", drawdown), ("adl_drawdown_ppm", market.adl_drawdown_ppm),
                ("trigger", "fund drawn down past the ADL trigger" if drawdown >= market.adl_drawdown_ppm
                 else "book within bankruptcy price and fund share exhausted"),
                ("ranked", ";".join(label(i) for i in range(place, min(place + 100, len(ranked))))),
                ("skipped_linked", ";".join(adl.pseudonym(self.key, a) for a in sorted(linked)))))
            self._fact([T.PERP_ADL_PLANNED, n, name, plan_id, bankrupt, abs(lots),
                        [[candidate, side * taken] for candidate, taken in takes]])
            planned.append(n)
            place += len(takes) - 1                   # where the next plan's ranking starts (near enough)
        closes = [(n, self._close_commands(n, name, ts_ns)) for n in planned]
        answers = yield SendAll(tuple(close for _, commands in closes for close, _ in commands))
        accepted = iter(not rejected(events) for events in answers)
        taken = {n: [(close, absorb) for close, absorb in commands if next(accepted)] for n, commands in closes}
        if any(taken.values()):
            yield SendAll(tuple(absorb for pairs in taken.values() for _, absorb in pairs))
        for n in planned:
            self._adl_done(n, name, [(c.account_id, abs(c.quantity) // market.spec.lot_minor)
                                     for c, _ in taken[n]], ts_ns)
        return planned

    def _close_commands(self, n: int, name: str, ts_ns: int) -> list[tuple]:
        """A planned ADL's (candidate's close, liquidation's absorption) pairs; the ids come from
        the plan, so a re-send after a restart repeats, never doubles."""
        plan_id, price, _, takes = self.adl[(n, name)]
        account, spec = self.open[n][0], self.markets[name].spec
        out = []
        for candidate, lots in takes:
            quantity, at = lots * spec.lot_minor, price * spec.tick_minor
            out.append((DeleveragePerp(f"pliq:{n}:{name}:adl:{plan_id}:{candidate}", ts_ns, candidate, name, n,
                                       quantity, at),
                        AbsorbDeleverage(f"pliq:{n}:{name}:absorb:{plan_id}:{candidate}", ts_ns, account, name,
                                         n, abs(quantity), at)))
        return out

    def _adl_done(self, n: int, name: str, taken: list[tuple[int, int]], ts_ns: int) -> None:
        wanted = self.adl[(n, name)][2]
        self._entry(EntryKind.ADL_END, name, 0, ts_ns, (
            ("liquidation", n), ("taken", ";".join(f"{adl.pseudonym(self.key, a)}:{lots}" for a, lots in taken)),
            ("left", wanted - sum(lots for _, lots in taken))))
        self._fact([T.PERP_ADL_DONE, n, name])

    def _claimed(self, name: str) -> dict[int, int]:
        """Lots of each account that ADLs planned in ``name`` and not done yet will close (plans
        a restart left): a new plan is made around them."""
        claimed: dict[int, int] = {}
        for (_, market), (_, _, _, takes) in self.adl.items():
            if market == name:
                for candidate, lots in takes:
                    claimed[candidate] = claimed.get(candidate, 0) + abs(lots)
        return claimed

    def close_planned(self, n: int, name: str, ts_ns: int) -> Steps:
        """Close an ADL planned before a restart, one pair at a time (the same ids: the shards'
        replay memory answers what was applied); ``exchange verify`` does the same offline."""
        spec = self.markets[name].spec
        taken = []
        for close, absorb in self._close_commands(n, name, ts_ns):
            if rejected((yield Send(close))):
                continue                            # it closed or turned since it was ranked
            yield Send(absorb)
            taken.append((close.account_id, abs(close.quantity) // spec.lot_minor))
        self._adl_done(n, name, taken, ts_ns)

    # ---- state ------------------------------------------------------------------------------
    def to_plain(self) -> dict:
        """The durable state but the fund (its entries are snapshotted beside it)."""
        return {"seq": self.seq, "open": [[n, *v] for n, v in sorted(self.open.items())],
                "reserved": [[n, m, v] for (n, m), v in sorted(self.reserved.items())],
                "adl": [[n, m, *v] for (n, m), v in sorted(self.adl.items())],
                "linked": sorted([a, b] for a, bs in self.linked.items() for b in bs if a < b),
                "records": list(self.records), "finished": self.finished}

    def restore(self, state: dict) -> None:
        self.seq = state["seq"]
        self.open = {n: [account, market, taken] for n, account, market, taken in state["open"]}
        self.reserved = {(n, m): v for n, m, v in state["reserved"]}
        self.adl = {(n, m): [plan_id, price, wanted, takes] for n, m, plan_id, price, wanted, takes in state["adl"]}
        self.linked = {}
        for a, b in state["linked"]:
            self.apply([T.PERP_ACCOUNTS_LINKED, a, b])
        self.records = list(state["records"])
        self.finished = state["finished"]

    def check_invariants(self) -> None:
        self.fund.check_invariants()
        assert all(n in self.open for n, _ in self.reserved) and all(n in self.open for n, _ in self.adl)

    def canonical(self) -> tuple:
        return (self.seq, tuple((n, *v) for n, v in sorted(self.open.items())), tuple(sorted(self.reserved.items())),
                tuple((key, v[0], v[1], v[2], tuple(map(tuple, v[3]))) for key, v in sorted(self.adl.items())),
                self.fund.canonical(), tuple(sorted((a, tuple(sorted(b))) for a, b in self.linked.items())))
