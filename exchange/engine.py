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
"""
from __future__ import annotations

from exchange.config import ExchangeConfig
from exchange.ledger import digest
from exchange.market import MarketEngine
from exchange.messages import OrderRejected, PlaceOrder
from exchange.orders import BUY, OrderType
from exchange.reasons import Reason
from exchange.shard import CLIENT_COMMANDS, AccountShard, request_key

MARKET = int(OrderType.MARKET)


class Engine:
    """Spot exchange core: accounts, holds, books, fills, fees."""

    def __init__(self, config: ExchangeConfig):
        self.config = config
        self.shard = AccountShard(config)
        self.markets = {spec.name: MarketEngine(spec) for spec in config.market_list}

    def apply(self, command) -> list:
        """Apply one command and return every event it produced, in order."""
        shard = self.shard
        key = request_key(command)
        if key is None and type(command) in CLIENT_COMMANDS:   # an unhashable id: nothing to remember it by
            return [OrderRejected(command[0], command[2], int(Reason.MALFORMED_COMMAND))]
        account_id, request_id = key or (None, None)   # not a command: apply_client rejects it
        previous = shard.results.get((account_id, request_id))
        if previous is not None:
            return previous
        reference = None
        if type(command) is PlaceOrder and command.order_type == MARKET and not command.price:
            market = self.markets.get(command.market) if type(command.market) is str else None
            if market is not None:
                book = market.book
                reference = book.best_ask() if command.side == BUY else book.best_bid()
        events, request = shard.apply_client(command, reference)
        if request is not None:
            apply_market = shard.apply_market
            for event in self.markets[command.market].handle(request):
                events.extend(apply_market(event))
        shard.remember(account_id, request_id, events)
        return events

    # ---- views ------------------------------------------------------------------
    def balances(self, account_id: int) -> dict[str, tuple[int, int]]:
        """Per asset (available, held) in minor units; empty for an unknown account."""
        account = self.shard.ledger.accounts.get(account_id)
        if account is None:
            return {}
        return {a.name: (account.available[a.index], account.held[a.index]) for a in self.config.asset_list}

    def conservation(self) -> dict[str, int]:
        """Per asset: balances + fee account - (deposits - withdrawals). All zero when sound."""
        ledger = self.shard.ledger
        totals = ledger.totals()
        return {a.name: totals[a.index] - (ledger.deposited[a.index] - ledger.withdrawn[a.index])
                for a in self.config.asset_list}

    def check_invariants(self) -> None:
        """Assert every self-check of the shard and the books, and conservation."""
        self.shard.check_invariants()
        for market in self.markets.values():
            market.check_invariants()
        bad = {k: v for k, v in self.conservation().items() if v}
        assert not bad, f"conservation broken: {bad}"

    def state_hash(self) -> str:
        """A stable digest of balances, open orders, books and sequences."""
        return digest(self.shard.canonical(), tuple(m.canonical() for _, m in sorted(self.markets.items())))
