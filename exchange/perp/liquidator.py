"""The perpetual liquidator: who is due, in what order, the book, the fund, then ADL.

A pure driver (no clock, no I/O) over the shard's liquidation commands
(``exchange.perp.liquidation``), sent through the liquidator's door by a
callable ``send(command) -> events``. ``run(desk, ts_ns)`` settles, in order:

1. liquidations still open from an earlier call (a per-market rate limit
   stopped them), then every position ``liquidation.due`` finds, account by
   account: the account's orders in those markets are cancelled and the
   position taken over at the mark (``TakeOverPerp``);
2. per market, an immediate-or-cancel order at the liquidation's
   **bankruptcy price** (fills there or better: a surplus for the fund);
3. what is left, at a worse price no further than the fund can pay: the
   market's fund stands behind at most ``max_draw`` of its balance (less
   what open liquidations already committed) for one bankruptcy;
4. what is still left is **auto-deleveraged** at the bankruptcy price
   (``exchange.perp.adl``: ranked opposite positions, only what is needed,
   linked accounts skipped), with an ``ADL_START`` and an ``ADL_END`` entry in
   the fund's chain carrying the trigger values, the ranked candidates under
   pseudonyms and the lots taken;
5. ``FinishPerpLiquidation``: the equity left goes into the fund
   (``LIQUIDATION_SURPLUS``) or is drawn from it (``BANKRUPTCY_LOSS``).

**Rate limit.** Orders of liquidations close at most ``liquidation_notional``
(quote units, per market, per second of ``ts_ns``) at the bankruptcy price;
a liquidation over it stays open with its position and continues in the
next second's call, so a cascade cannot sweep a thin book in one burst. ADL
is not limited: it moves no price.

The ADL trigger is published as configuration: the book within the
bankruptcy price and the fund's share (``max_draw``) were not enough.
"""
from __future__ import annotations

from exchange.messages.records import (AbsorbDeleverage, CancelPerpOrder, DeleveragePerp, FinishPerpLiquidation,
                                       LiquidationOrderPerp, OrderRejected, TakeOverPerp)
from exchange.perp import adl, liquidation as liquidations
from exchange.perp.fund import EntryKind, PerpFund
from exchange.perp.position import MarginMode

NS = 10**9


class PerpLiquidator:
    def __init__(self, markets: dict, fund: PerpFund, pseudonym_key: bytes):
        self.markets = markets                      # name -> PerpMarket
        self.fund = fund
        self.key = pseudonym_key
        self.seq = 0
        self.open: list[int] = []                   # liquidations under way (in order)
        self.reserved: dict[tuple[int, str], int] = {}   # (liquidation, market) -> fund loss its orders may cost
        self.used: dict[tuple[str, int], int] = {}  # (market, second) -> notional ordered
        self.linked: dict[int, frozenset] = {}      # account -> accounts an operator linked to it
        self.records: list[dict] = []               # every finished liquidation, public (latest 10,000)

    def link(self, a: int, b: int) -> None:
        """Treat ``a`` and ``b`` as one owner: neither is ever deleveraged against the other."""
        self.linked[a] = self.linked.get(a, frozenset()) | {b}
        self.linked[b] = self.linked.get(b, frozenset()) | {a}

    def run(self, desk, books: dict, send, ts_ns: int) -> list[dict]:
        """One round (module docstring); ``books``: market name -> its ``MarketEngine``.
        Returns the records of the liquidations this call finished."""
        finished = []
        self.used = {k: v for k, v in self.used.items() if k[1] >= ts_ns // NS - 1}     # keep two seconds
        for n in list(self.open):
            finished.extend(self._drive(desk, books, send, n, ts_ns))
        for account, market in liquidations.due(desk):
            if (account, market) not in liquidations.account_due(desk, account):
                continue                                        # the cascade so far changed it: no longer due
            self.seq += 1
            n = self.seq
            names = [market] if market else [m for m, p in desk.accounts[account].positions.items()
                                             if p.lots and p.mode == MarginMode.CROSS]
            for order in [o for o in desk.accounts[account].orders.values() if o.market.name in names]:
                send(CancelPerpOrder(f"pliq:{n}:cancel:{order.order_id}", ts_ns, account, order.market.name,
                                     order.order_id))
            events = send(TakeOverPerp(f"pliq:{n}:take", ts_ns, account, market, n))
            if not events or type(events[0]) is OrderRejected:
                continue                                        # not due after all (the cancels changed nothing)
            self.open.append(n)
            finished.extend(self._drive(desk, books, send, n, ts_ns))
        return finished

    def _drive(self, desk, books: dict, send, n: int, ts_ns: int) -> list[dict]:
        record = desk.liquidations[n]
        account = record.account_id
        for name in sorted(record.positions):
            if record.positions[name].lots:
                self._close(desk, books[name], send, record, name, ts_ns)
        if any(p.lots for p in record.positions.values()):
            return []                                           # the rate limit: more next second
        per_market = {name: record.left(name) for name in sorted(record.positions)}
        events = send(FinishPerpLiquidation(f"pliq:{n}:finish", ts_ns, account, n))
        assert events[0].amount == sum(per_market.values()), (events, per_market)
        for name, amount in per_market.items():
            if amount > 0:
                self.fund.record(EntryKind.LIQUIDATION_SURPLUS, name, amount, ts_ns, (("liquidation", n),))
            elif amount < 0:
                self.fund.record(EntryKind.BANKRUPTCY_LOSS, name, amount, ts_ns, (("liquidation", n),))
            self.reserved.pop((n, name), None)
        self.open.remove(n)
        public = {"liquidation": n, "account": adl.pseudonym(self.key, account), "markets": sorted(record.positions),
                  "equity_taken": sum(record.shares.values()), "fund": per_market, "ts_ns": ts_ns}
        self.records = (self.records + [public])[-10_000:]
        return [public]

    def _close(self, desk, book, send, record, name: str, ts_ns: int) -> None:
        market = self.markets[name]
        position = record.positions[name]
        k = market.k
        long = position.lots > 0
        bankrupt = liquidations.bankruptcy(desk, record, name)
        if bankrupt is None:                    # no positive price breaks even: close at the mark
            bankrupt = desk._mark(market, position)
        n = record.n
        # 2. the book at the bankruptcy price or better, within the second's budget
        self._order(send, record, name, bankrupt, ts_ns, f"pliq:{n}:{name}:book:{ts_ns}")
        if not position.lots or self._budget(name, ts_ns, bankrupt) <= 0:
            return
        # 3. a worse price, as far as the fund can pay
        committed = sum(v for (_, m), v in self.reserved.items() if m == name)
        payable = self.fund.payable(name, 1 << 62) - committed
        gap = max(0, payable) // (abs(position.lots) * k)
        if gap:
            worst = max(1, bankrupt - gap if long else bankrupt + gap)
            key = (n, name)
            self.reserved[key] = self.reserved.get(key, 0) + abs(position.lots) * abs(bankrupt - worst) * k
            self._order(send, record, name, worst, ts_ns, f"pliq:{n}:{name}:fund:{ts_ns}")
        if not position.lots or self._budget(name, ts_ns, bankrupt) <= 0:
            return
        # 4. ADL at the bankruptcy price
        self._deleverage(desk, send, record, name, bankrupt, ts_ns)

    def _budget(self, name: str, ts_ns: int, price: int) -> int:
        """Lots the second's notional budget still allows at ``price``."""
        market = self.markets[name]
        left = market.liquidation_notional - self.used.get((name, ts_ns // NS), 0)
        return max(0, left // (price * market.k))

    def _order(self, send, record, name: str, price: int, ts_ns: int, request_id: str) -> None:
        market = self.markets[name]
        position = record.positions[name]
        lots = min(abs(position.lots), self._budget(name, ts_ns, price))
        if lots <= 0:
            return
        key = (name, ts_ns // NS)
        self.used[key] = self.used.get(key, 0) + lots * price * market.k
        send(LiquidationOrderPerp(request_id, ts_ns, record.account_id, name, record.n,
                                  price * market.spec.tick_minor, lots * market.spec.lot_minor))

    def _deleverage(self, desk, send, record, name: str, bankrupt: int, ts_ns: int) -> None:
        market = self.markets[name]
        position = record.positions[name]
        mark = desk._mark(market, position)
        candidates = [c for c in desk.adl_candidates(name) if c.account_id != record.account_id]
        linked = self.linked.get(record.account_id, frozenset())
        plan = adl.plan(position.lots, bankrupt, abs(position.lots), candidates, mark, market.k, linked)
        ranked = adl.ranking([c for c in candidates if (c.lots > 0) != (position.lots > 0)], mark, market.k)
        n = record.n
        self.fund.record(EntryKind.ADL_START, name, 0, ts_ns, (
            ("liquidation", n), ("bankruptcy_price", bankrupt), ("mark", mark), ("lots", abs(position.lots)),
            ("fund_balance", self.fund.balances[name]), ("max_draw_ppm", self.fund.cap(name)),
            ("trigger", "book within bankruptcy price and fund share exhausted"),
            ("ranked", ";".join(f"{adl.pseudonym(self.key, c.account_id)}:{s.numerator}/{s.denominator}"
                                for s, c in ranked[:100])),
            ("skipped_linked", ";".join(adl.pseudonym(self.key, a) for a in plan.skipped_linked))))
        for take in plan.takes:
            quantity, price = take.lots * market.spec.lot_minor, bankrupt * market.spec.tick_minor
            send(DeleveragePerp(f"pliq:{n}:{name}:adl:{take.account_id}", ts_ns, take.account_id, name, n,
                                quantity, price))
            send(AbsorbDeleverage(f"pliq:{n}:{name}:absorb:{take.account_id}", ts_ns, record.account_id, name, n,
                                  quantity, price))
        self.fund.record(EntryKind.ADL_END, name, 0, ts_ns, (
            ("liquidation", n), ("taken", ";".join(f"{adl.pseudonym(self.key, t.account_id)}:{t.lots}"
                                                   for t in plan.takes)), ("left", plan.left)))

    def check_invariants(self) -> None:
        self.fund.check_invariants()

    def canonical(self) -> tuple:
        return (self.seq, tuple(self.open), tuple(sorted(self.reserved.items())), self.fund.canonical(),
                tuple(sorted((a, tuple(sorted(b))) for a, b in self.linked.items())))
