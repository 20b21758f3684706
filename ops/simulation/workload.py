"""Seeded clients: what each account asks its shard, and what it was answered.

Each simulated client is one account on the shard that owns it, with at most
one ``execute`` call outstanding; a call that fails (lost, or the shard down)
is sent again with the same request ids, as a real client retries. Commands
are drawn from the run's random generator: spot limit and market orders
(GTC and IOC, prices around the market's start price so they cross), cancels
of the client's open orders, deposits and withdrawals, supply to and
withdrawal from the lending pool, margin transfers, borrows, repays and margin
orders with auto-borrow. Now and then a client sends an acknowledged request
again: its answer must be the first one.
"""
from __future__ import annotations

from exchange.core.routing import shard_for
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.messages.records import (Borrow, CancelOrder, Deposit, EnableMargin, OpenAccount, OrderAccepted,
                                       OrderClosed, PlaceMarginOrder, PlaceOrder, Repay, SupplyToPool,
                                       TransferMargin, Withdraw, WithdrawFromPool)

START_PRICES = {"BTC-USDT": 50_000, "ETH-USDT": 3_000}        # whole quote units per whole base
FUNDING = {"USDT": 1_000_000, "BTC": 20, "ETH": 300}           # whole units deposited at the start


class Client:
    """One account: its request numbers, its open orders, its acknowledged requests."""

    def __init__(self, account: int, shard: int):
        self.account = account
        self.shard = shard
        self.name = f"client:{account}"
        self.requests = 0
        self.busy = False
        self.opened = False
        self.open_orders: dict[int, str] = {}          # order id -> market
        self.acknowledged: list = []                   # commands answered (re-sent now and then)

    def request_id(self) -> int:
        self.requests += 1
        return self.account * 1_000_000 + self.requests

    def learn(self, command, events: list) -> None:
        """Track the open orders an answer reports."""
        for event in events:
            if type(event) is OrderAccepted and event.account_id == self.account:
                self.open_orders[event.order_id] = event.market
            elif type(event) is OrderClosed and event.account_id == self.account:
                self.open_orders.pop(event.order_id, None)


class Workload:
    """The clients of a run and the commands they send."""

    def __init__(self, config, rng, accounts_per_shard: int = 4):
        self.config = config
        self.rng = rng
        self.clients: list[Client] = []
        for shard in range(config.shards):
            mine = [a for a in range(1, 10_000) if shard_for(a, config.shards) == shard][:accounts_per_shard]
            self.clients.extend(Client(a, shard) for a in mine)
        self.markets = [m.name for m in config.market_list]

    def idle(self) -> list[Client]:
        return [c for c in self.clients if not c.busy]

    def batch(self, client: Client) -> list:
        """The next batch ``client`` sends (one to three commands)."""
        if not client.opened:
            client.opened = True
            commands = [OpenAccount(client.request_id(), 0, client.account)]
            commands += [Deposit(client.request_id(), 0, client.account, asset, units * self._unit(asset))
                         for asset, units in FUNDING.items()]
            commands.append(EnableMargin(client.request_id(), 0, client.account))
            usdt = self._unit("USDT")
            commands.append(SupplyToPool(client.request_id(), 0, client.account, "USDT", 200_000 * usdt))
            commands.append(TransferMargin(client.request_id(), 0, client.account, "USDT", 100_000 * usdt))
            return commands
        commands = [self.command(client) for _ in range(self.rng.choice((1, 1, 2, 3)))]
        if client.acknowledged and self.rng.random() < 0.1:       # a retry of something answered
            commands.append(self.rng.choice(client.acknowledged))
        return commands

    def command(self, client: Client):
        rng, account = self.rng, client.account
        roll = rng.random()
        market = rng.choice(self.markets)
        spec = self.config.markets[market]
        if roll < 0.45:
            return self._order(client, market, spec, PlaceOrder)
        if roll < 0.50:
            side = rng.choice((Side.BUY, Side.SELL))
            return PlaceOrder(client.request_id(), 0, account, market, int(side), int(OrderType.MARKET), 0,
                              rng.randint(1, 10) * spec.lot_minor, int(TimeInForce.IOC))
        if roll < 0.65 and client.open_orders:
            order_id = rng.choice(sorted(client.open_orders))
            return CancelOrder(client.request_id(), 0, account, client.open_orders[order_id], order_id)
        if roll < 0.70:
            return Deposit(client.request_id(), 0, account, rng.choice(list(FUNDING)), rng.randint(1, 10 ** 6))
        if roll < 0.75:
            asset = rng.choice(list(FUNDING))
            return Withdraw(client.request_id(), 0, account, asset, rng.randint(1, 3) * self._unit(asset) // 10)
        if roll < 0.80:
            return SupplyToPool(client.request_id(), 0, account, "USDT", rng.randint(1, 500) * self._unit("USDT"))
        if roll < 0.83:
            return WithdrawFromPool(client.request_id(), 0, account, "USDT", rng.randint(1, 300) * self._unit("USDT"))
        if roll < 0.87:
            return TransferMargin(client.request_id(), 0, account, "USDT", rng.randint(100, 5_000) * self._unit("USDT"),
                                  rng.random() < 0.8)
        if roll < 0.91:
            return Borrow(client.request_id(), 0, account, "USDT", rng.randint(10, 2_000) * self._unit("USDT"))
        if roll < 0.94:
            return Repay(client.request_id(), 0, account, "USDT", rng.randint(10, 3_000) * self._unit("USDT"))
        return self._order(client, market, spec, PlaceMarginOrder)

    def _order(self, client: Client, market: str, spec, kind):
        rng = self.rng
        side = rng.choice((Side.BUY, Side.SELL))
        mid_ticks = START_PRICES[market] * 10 ** spec.quote.scale // spec.tick_minor
        price = (mid_ticks + rng.randint(-8, 8)) * spec.tick_minor
        quantity = rng.randint(1, 20) * spec.lot_minor
        tif = TimeInForce.IOC if rng.random() < 0.2 else TimeInForce.GTC
        return kind(client.request_id(), 0, client.account, market, int(side), int(OrderType.LIMIT), price,
                    quantity, int(tif))

    def _unit(self, asset: str) -> int:
        return 10 ** self.config.assets[asset].scale
