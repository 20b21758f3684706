"""The single-process exchange engine: the whole order pipeline in one place.

``Engine.apply(command) -> list[event]`` is the one door into state. It wires
the pipeline the actors run distributed (risk hold -> matching -> settlement
and release) synchronously: an ``AccountShard`` holding every account, and one
``MarketEngine`` per market. Tests, notebooks, the benchmark and journal
replay drive it command by command; it is deterministic (no clock, no
randomness), so the same commands always give the same events and the same
``state_hash``.

A repeated ``(account_id, request_id)`` returns the original events and changes
nothing (within ``dedup_window`` requests).

Spot orders and cancels on the common path run fused (``exchange/fused.py``:
door to settlement in one pass over the same state, about twice as fast);
``Engine(config, fused=False)`` runs every command through the pipeline, which
is what the fused path is checked against.

Margin and lending run here too: the shard is the venue's
(``exchange/venue.py: new_shard``: the margin desk plugged in as
``shard.margin``), a ``LendingEngine`` answers the shard's pool requests, and
requests that answers call for (``AccountShard.followups``) are run until
none is left. Margin commands are valued at the index prices
set with ``set_index_prices`` (the IndexActor's job under Ray).

Liquidation runs here too, whole: ``run_liquidations(ts_ns)`` scans every
margin book at the index prices (``MarginDesk.scan``), hands the books at or
under the liquidation line to the Engine's own ``Liquidator`` (the same pure
state machine the ``LiquidatorActor`` drives) and applies its commands
through ``apply(command, Role.LIQUIDATOR)`` until every liquidation finished
or waits for the outside world (a book with no bid at the widest limit: call
it again after the order book or the prices change). It is explicit, not a
side effect of ``set_index_prices``, so a test can move prices and drive the
shard's liquidation commands itself. The insurance fund
(``InsuranceFund``, seeded from ``[insurance.initial]`` as a recorded
deposit) lives in the Engine and ``conservation`` counts it.

Perpetual markets (``[perp.*]`` in the config, ``exchange/perp``) run here
too: a ``MarketEngine`` each beside the spot markets, the shard's perpetual
desk (``shard.perp``) as their product, ``mark_perps(ts_ns)`` computing each
market's mark from the index prices, its book and its last trade and
sampling its premium (``exchange.perp.pricer.PerpPricer``), and
``run_funding(ts_ns)`` settling every funding time that has come
(``FundingDue``, a market event the desk applies to every position), and
``run_perp_liquidations(ts_ns)`` driving the perpetual liquidator
(``exchange.perp.liquidator``) through the liquidator's door, with the
markets' insurance funds (``exchange.perp.fund.PerpFund``, topped up with
``top_up_perp_fund``, fed their fee share by ``sweep_perp_fees``, paying an
operator's ``compensate``) in the Engine and counted by ``conservation``.
"""
from __future__ import annotations

from exchange.config import ExchangeConfig
from exchange.accounts.ledger import digest
from exchange.fused import FusedSpot
from exchange.margin.desk import ScanResult
from exchange.margin.insurance import InsuranceFund
from exchange.margin.lending import LendingEngine
from exchange.margin.liquidator import LiquidationEnded, Liquidator
from exchange.accounts.access import LIQUIDATOR_COMMANDS, OPERATOR_COMMANDS, OTC_COMMANDS, Role
from exchange.accounts.pricing import price_context
from exchange.conservation import imbalance
from exchange.messages.records import (LENDING, POOL_ACCRUE, FundingDue, MarkUpdated, PoolRequest, SetMarketMode,
                                       SetRiskRule)
from exchange.perp import liquidation as perp_liquidation
from exchange.perp.compensation import Compensation
from exchange.perp.liquidator import Send, SendAll, drive, new_perp_liquidator
from exchange.perp.pricer import PerpPricer
from exchange.perp.rules import perp_markets
from exchange.pricing.index import index_ticks
from exchange.accounts.shard import link_of, refusal
from exchange.core.reasons import Reason
from exchange.messages.validation import admit_fields
from exchange.risk.modes import apply_set_mode
from exchange.venue import new_market, new_shard

CLIENT, LIQUIDATOR, OPERATOR = Role.CLIENT, Role.LIQUIDATOR, Role.OPERATOR

ROUNDS_MAX = 1_000             # scan -> hand over -> drive rounds in one run_liquidations


class Engine:
    """Spot exchange core: accounts, holds, books, fills, fees."""

    def __init__(self, config: ExchangeConfig, *, fused: bool = True):
        self.config = config
        self.markets = {spec.name: new_market(config, spec) for spec in config.market_list}
        self.perps = perp_markets(config)
        self.markets.update((name, new_market(config, perp.spec)) for name, perp in self.perps.items())
        self.pricers = {name: PerpPricer(perp.basis_window_ns, perp.funding) for name, perp in self.perps.items()}
        self.perp_liquidator = new_perp_liquidator(config, journaling=False)
        self.perp_fund = self.perp_liquidator.fund
        self.perp_liquidator.seed(0)
        self._fuse = fused
        self.shard = new_shard(config)
        self.lending = LendingEngine(config.lending, config.reserve_account)
        self.prices: tuple = (0,) * len(config.assets)     # index price per asset index
        self.index_ticks: dict[str, int] = {}              # market -> index price in ticks
        self.fund = InsuranceFund([a.name for a in config.asset_list])
        self.liquidator = Liquidator(config, self.fund)
        self.liquidator.seed_fund()
        self.liquidator.take_facts()                        # nothing to journal in one process
        self.notified_zones: dict = {}                      # margin book -> zone last notified (a view)

    @property
    def shard(self):
        """The venue's shard (every account); replacing it (a restored snapshot) rebuilds the fused path."""
        return self._shard

    @shard.setter
    def shard(self, shard) -> None:
        self._shard = shard
        self.fused = FusedSpot(shard, self.markets) if self._fuse else None
        if self.fused is not None:
            self.fused.index_ticks = getattr(self, "index_ticks", {})

    def set_index_prices(self, prices: dict[str, int]) -> None:
        """Index prices by asset name, in quote minor units per whole unit."""
        updated = list(self.prices)
        for name, price in prices.items():
            updated[self.config.assets[name].index] = price
        self.prices = tuple(updated)
        by_name = {a.name: self.prices[a.index] for a in self.config.asset_list}
        self.index_ticks = index_ticks(self.config.market_list + [p.spec for p in self.perps.values()],
                                       self.config.index_quote_asset, by_name)
        if self.fused is not None:
            self.fused.index_ticks = self.index_ticks

    def mark_perps(self, ts_ns: int) -> dict[str, int]:
        """Each perpetual market's mark (ticks) at ``ts_ns`` from its index, book and last trade,
        handed to the perpetual desk, and a premium sample for its funding; markets without
        an index price yet are left out."""
        marks = {}
        for name, pricer in self.pricers.items():
            index = self.index_ticks.get(name)
            if index is None:
                continue
            market = self.markets[name]
            marks[name] = pricer.update(ts_ns, index, market.book.best_bid(), market.book.best_ask(),
                                        market.last_price or None)
            if market.guard is not None:
                market.guard.observe(ts_ns, index, "index")
            self.shard.apply_market(MarkUpdated(name, market.next_seq(), ts_ns, index, marks[name]))
        return marks

    def top_up_perp_fund(self, market: str, amount: int, ts_ns: int, by: str = "operator") -> None:
        """Add capital to a perpetual market's insurance fund (a ``TOP_UP`` entry; ValueError if unusable)."""
        self.perp_liquidator.top_up(market, amount, ts_ns, by)

    def run_perp_liquidations(self, ts_ns: int) -> list[dict]:
        """Liquidate every perpetual position due at the marks (``exchange.perp.liquidator``):
        the book at the bankruptcy price, the fund's share, then ADL; return the records of
        the liquidations that finished. One over its market's per-second limit continues in a
        later call."""
        return self.perp_liquidator.run(self._perp_answer, ts_ns)

    def sweep_perp_fees(self, ts_ns: int) -> None:
        """Move each perpetual market's fee share into its insurance fund (``FEE_SHARE``
        entries; ``exchange.perp.fees``)."""
        drive(self.perp_liquidator.sweep(0, 1, ts_ns), self._perp_answer)

    def compensate(self, market: str, account_id: int, amount: int, operator: str, reason: str,
                   ts_ns: int) -> Reason | None:
        """Pay an operator's compensation out of a perpetual market's fund into the account's
        spot balance (``exchange.perp.compensation``); the refusal's Reason, or None."""
        order = Compensation(market, account_id, amount, operator, reason)
        return drive(self.perp_liquidator.compensate(order, ts_ns, 1), self._perp_answer)

    def _perp_answer(self, request):
        """Answer the perpetual liquidator's request in-process: a command through the
        liquidator's door, a read of the one desk."""
        if type(request) is Send:
            return self.apply(request.command, Role.LIQUIDATOR)
        if type(request) is SendAll:
            return [self.apply(command, Role.LIQUIDATOR) for command in request.commands]
        return perp_liquidation.read(self.shard.perp, *request)

    def run_funding(self, ts_ns: int) -> list:
        """Settle every funding time that has come by ``ts_ns``, market by market: the rate
        from the interval's premium index, paid at the current mark (``FundingDue``); return
        the events (``FundingPaid`` per position)."""
        events: list = []
        for name, pricer in self.pricers.items():
            while pricer.due(ts_ns):
                at, rate = pricer.settle_funding()
                due = FundingDue(name, self.markets[name].next_seq(), at, rate, pricer.mark)
                events.extend(self.shard.apply_market(due))
        return events

    def deposit_fund(self, asset: str, amount: int) -> None:
        """Add capital to the insurance fund (a recorded deposit; ValueError if unusable)."""
        self.liquidator.deposit(asset, amount)
        self.liquidator.take_facts()

    def scan_margin(self) -> ScanResult:
        """Every indebted book's zone at the index prices (``MarginDesk.scan``)."""
        return self.shard.margin.scan(self.prices, self.notified_zones)

    def run_liquidations(self, ts_ns: int = 0, on_step=None) -> list[dict]:
        """Run the liquidation cascade at the current index prices, in this process.

        Scan, hand every book at or under the liquidation line to the liquidator
        (each book once per call; over ``limits.liquidations_max`` the rest waits
        for the next round), apply its commands with the liquidator's door until
        none is left, and scan again. Liquidations held (no bid at the widest
        limit, no index price) stay in progress: call again once the book or the
        prices changed. Returns the public records of the liquidations this call
        ended, in order. ``ts_ns`` stamps the liquidator's commands."""
        liquidator, ended, handed = self.liquidator, [], set()
        liquidator.release()
        for _ in range(ROUNDS_MAX):
            for key, level in self.scan_margin().candidates:
                if key not in handed and liquidator.candidate(0, key[0], key[1], level, self.prices):
                    handed.add(key)
            sends = liquidator.next_commands(self.prices, ts_ns)
            if not sends:
                break
            while sends:
                for send in sends:
                    command = send.command
                    events = self.apply(command, Role.LIQUIDATOR)
                    liquidator.on_answer(command.request_id, events,
                                         self.margin_view(command.account_id, send.book), ts_ns)
                    if on_step is not None:
                        on_step(send, events)
                ended.extend(self._ended(liquidator.take_facts()))
                sends = liquidator.next_commands(self.prices, ts_ns)
        ended.extend(self._ended(liquidator.take_facts()))
        return ended

    @staticmethod
    def _ended(facts: list) -> list[dict]:
        return [{k: v for k, v in f.record.items() if k != "account"} for f in facts if type(f) is LiquidationEnded]

    def accrue(self, ts_ns: int) -> list:
        """Turn the lending pools' hour to ``ts_ns`` (what the pool actor's clock does)."""
        return self._run([(LENDING, PoolRequest(POOL_ACCRUE, 0, "", "", 0, 0, ts_ns))], [])

    def apply(self, command, role: Role | None = None) -> list:
        """Apply one command and return every event it produced, in order.

        ``role`` is the door it comes through (``exchange.accounts.access``); by default the
        in-process driver holds every role: liquidator commands come through the
        liquidator's door, everything else through the client's. A spot order or cancel on
        the common path takes the fused path (``exchange.fused``: the same events and state,
        one pass); anything it does not take runs the pipeline below."""
        shard = self._shard
        if type(command) is SetMarketMode:
            return self._set_market_mode(command)
        if self.fused is not None and (role is None or role == CLIENT):
            events = self.fused.apply(command)
            if events is not None:
                if shard.followups:      # a product's maker closed (margin auto-repay): extends the remembered list
                    self._run(shard.take_followups(), events)
                return events
        if role is None:
            kind = type(command)
            role = (LIQUIDATOR if kind in LIQUIDATOR_COMMANDS else OPERATOR if kind in OPERATOR_COMMANDS
                    else Role.OTC if kind in OTC_COMMANDS else CLIENT)
        admitted = shard.admit(command, role)
        if type(admitted) is list:
            return admitted
        previous = shard.recall(admitted)
        if previous is not None:
            return previous
        command = admitted.command
        gate = shard.risk
        context = price_context(command, self._top, self.index_ticks, self.prices,
                                gate is not None and role == CLIENT and gate.wants_prices(command))
        events, request = shard.apply_client(command, context, role)
        if request is not None or shard.followups:
            requests = [] if request is None else [(link_of(command, request), request)]
            requests.extend(shard.take_followups())
            self._run(requests, events)
        shard.remember(admitted, events)
        if type(command) is SetRiskRule and shard.risk is not None:
            for market in self.markets.values():          # the breaker reads the same rulebook
                if market.guard is not None:
                    market.guard.rulebook = shard.risk.rulebook
        return events

    def _set_market_mode(self, command) -> list:
        """An operator's market mode (``exchange.risk.modes``): the market applies it."""
        reason, command = admit_fields(command, len(self.config.assets))
        if reason is None and command.market not in self.markets:
            reason = Reason.UNKNOWN_MARKET
        if reason is None and self.markets[command.market].guard is None:
            reason = Reason.UNKNOWN_COMMAND                 # no rulebook: no modes
        if reason is not None:
            return [refusal(command, reason)]
        return apply_set_mode(self.markets[command.market].guard, command)

    def _top(self, name: str) -> tuple:
        """A market's best bid and ask (ticks; None for an empty side or an unknown market)."""
        market = self.markets.get(name)
        return (market.book.best_bid(), market.book.best_ask()) if market is not None else (None, None)

    def _run(self, requests: list, events: list) -> list:
        """Send requests to markets / pools, apply what comes back, and every follow-up."""
        shard, queue, i = self.shard, list(requests), 0
        apply_market, followups, markets = shard.apply_market, shard.followups, self.markets
        while i < len(queue):          # follow-ups join the end of the queue as answers call for them
            link, request = queue[i]
            i += 1
            peer = self.lending if link == LENDING else markets[link]
            for event in peer.handle(request):
                events.extend(apply_market(event))
                if followups:
                    queue.extend(shard.take_followups())
        return events

    # ---- views ------------------------------------------------------------------
    def balances(self, account_id: int) -> dict[str, tuple[int, int]]:
        """Per asset (available, held) in minor units; empty for an unknown account."""
        return self.shard.balances(account_id) or {}

    def margin_view(self, account_id: int, market: str) -> dict | None:
        """A margin book at the index prices (``MarginDesk.book_view``); None if there is none."""
        desk = self.shard.margin
        book = desk.book(account_id, market)
        return None if book is None else desk.book_view(book, self.prices)

    def conservation(self) -> dict[str, int]:
        """Per asset, all zero when sound (``exchange.conservation.imbalance``). A cover a
        test applies to the shard by hand, not drawn from this Engine's fund, counts as
        a credit from outside."""
        shard, fund = self.shard, self.fund
        fund_in = shard.margin.fund_in
        outside = {a.name: fund_in[a.index] - fund.credited[a.name] for a in self.config.asset_list}
        holdings, deposited = dict(fund.holdings()), dict(fund.deposited)
        self.perp_liquidator.add_fund_totals(holdings, deposited)
        return imbalance(self.config.asset_list, [shard.totals()], [shard.ledger.deposited], [shard.ledger.withdrawn],
                         self.lending.cash(), holdings, deposited, outside)

    def check_invariants(self) -> None:
        """Assert every self-check of the shard and the books, and conservation."""
        self.shard.check_invariants()
        self.lending.check_invariants()
        self.liquidator.check_invariants()
        self.perp_liquidator.check_invariants()
        for market in self.markets.values():
            market.check_invariants()
        bad = {k: v for k, v in self.conservation().items() if v}
        assert not bad, f"conservation broken: {bad}"

    def state_hash(self) -> str:
        """A stable digest of balances, open orders, books, sequences, pools, the
        insurance fund and the liquidator's durable state."""
        perps = (self.perp_liquidator.canonical(),) if self.perps else ()     # a venue without them keeps its hash
        return digest(self.shard.canonical(), tuple(m.canonical() for _, m in sorted(self.markets.items())),
                      self.lending.canonical(), self.liquidator.canonical(), *perps)
