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

Margin and lending run here too: a ``LendingEngine`` answers the shard's pool
requests, and requests that answers call for (``AccountShard.followups``)
are run until none is left. Margin commands are valued at the index prices
set with ``set_index_prices`` (the IndexActor's job under Ray).
"""
from __future__ import annotations

from collections import deque

from exchange.config import ExchangeConfig
from exchange.accounts.ledger import digest
from exchange.margin.lending import LendingEngine
from exchange.matching.market import MarketEngine
from exchange.accounts.access import LIQUIDATOR_COMMANDS, Role
from exchange.messages.records import LENDING, POOL_ACCRUE, PlaceMarginOrder, PlaceOrder, PoolRequest, Withdraw
from exchange.matching.orders import BUY, OrderType
from exchange.accounts.shard import MARGIN_COMMANDS, AccountShard, link_of

MARKET = int(OrderType.MARKET)


class Engine:
    """Spot exchange core: accounts, holds, books, fills, fees."""

    def __init__(self, config: ExchangeConfig):
        self.config = config
        self.shard = AccountShard(config)
        self.markets = {spec.name: MarketEngine(spec) for spec in config.market_list}
        self.lending = LendingEngine(config.lending, config.reserve_account)
        self.prices: tuple = (0,) * len(config.assets)     # index price per asset index

    def set_index_prices(self, prices: dict[str, int]) -> None:
        """Index prices by asset name, in quote minor units per whole unit."""
        updated = list(self.prices)
        for name, price in prices.items():
            updated[self.config.assets[name].index] = price
        self.prices = tuple(updated)

    def accrue(self, ts_ns: int) -> list:
        """Turn the lending pools' hour to ``ts_ns`` (what the pool actor's clock does)."""
        return self._run([(LENDING, PoolRequest(POOL_ACCRUE, 0, "", "", 0, 0, ts_ns))], [])

    def apply(self, command, role: Role | None = None) -> list:
        """Apply one command and return every event it produced, in order.

        ``role`` is the door it comes through (``exchange.accounts.access``); by default the
        in-process driver holds every role: liquidator commands come through the
        liquidator's door, everything else through the client's."""
        shard = self.shard
        if role is None:
            role = Role.LIQUIDATOR if type(command) in LIQUIDATOR_COMMANDS else Role.CLIENT
        admitted = shard.admit(command, role)
        if type(admitted) is list:
            return admitted
        previous = shard.recall(admitted)
        if previous is not None:
            return previous
        command = admitted.command
        reference = None
        kind = type(command)
        if (kind is PlaceOrder or kind is PlaceMarginOrder) and command.order_type == MARKET and not command.price:
            market = self.markets.get(command.market)
            if market is not None:
                book = market.book
                reference = book.best_ask() if command.side == BUY else book.best_bid()
        if kind in MARGIN_COMMANDS or kind is Withdraw:      # valued at index prices
            reference = (reference, self.prices)
        events, request = shard.apply_client(command, reference)
        requests = [] if request is None else [(link_of(command, request), request)]
        self._run([*requests, *shard.take_followups()], events)
        shard.remember(admitted, events)
        return events

    def _run(self, requests: list, events: list) -> list:
        """Send requests to markets / pools, apply what comes back, and every follow-up."""
        shard = self.shard
        queue = deque(requests)
        while queue:
            link, request = queue.popleft()
            peer = self.lending if link == LENDING else self.markets[link]
            for event in peer.handle(request):
                events.extend(shard.apply_market(event))
                queue.extend(shard.take_followups())
        return events

    # ---- views ------------------------------------------------------------------
    def balances(self, account_id: int) -> dict[str, tuple[int, int]]:
        """Per asset (available, held) in minor units; empty for an unknown account."""
        account = self.shard.ledger.accounts.get(account_id)
        if account is None:
            return {}
        return {a.name: (account.available[a.index], account.held[a.index]) for a in self.config.asset_list}

    def conservation(self) -> dict[str, int]:
        """Per asset: balances + fee account + margin books + pool cash - (deposits -
        withdrawals + insurance fund credits). All zero when sound."""
        ledger, fund_in = self.shard.ledger, self.shard.margin.fund_in
        totals = self.shard.totals()
        cash = self.lending.cash()
        return {a.name: totals[a.index] + cash.get(a.name, 0)
                - (ledger.deposited[a.index] - ledger.withdrawn[a.index] + fund_in[a.index])
                for a in self.config.asset_list}

    def check_invariants(self) -> None:
        """Assert every self-check of the shard and the books, and conservation."""
        self.shard.check_invariants()
        self.lending.check_invariants()
        for market in self.markets.values():
            market.check_invariants()
        bad = {k: v for k, v in self.conservation().items() if v}
        assert not bad, f"conservation broken: {bad}"

    def state_hash(self) -> str:
        """A stable digest of balances, open orders, books and sequences."""
        return digest(self.shard.canonical(), tuple(m.canonical() for _, m in sorted(self.markets.items())),
                      self.lending.canonical())
