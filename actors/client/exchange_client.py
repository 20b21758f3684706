"""The Python client: the public API for driving the exchange from Python.

    from actors.client.exchange_client import ExchangeClient
    client = ExchangeClient.start()          # embedded: local Ray + all actors
    # or: ExchangeClient.connect("auto")     # a running `exchange up`
    client.open_account(1)
    client.deposit(1, "USDT", "10000")       # decimal strings or ints in minor units
    result = client.place_order(1, "BTC-USDT", "buy", "0.01", price="50000.00")

Every method has a blocking form; ``execute_async``/``place_orders_async``
return awaitables and ``stream`` is an async iterator, for asyncio code.
Amounts may be decimal strings (parsed exactly with the asset's scale) or ints
in minor units. Rejections come back as results with a ``Reason``, never as
exceptions; exceptions mean the exchange itself is unreachable or broken.

Each client numbers its requests itself (random 32-bit prefix + counter);
pass ``request_id`` to retry a request idempotently after a timeout.

A client carries client commands only: it sends through the shards' client
door, so the liquidator's commands come back rejected ``NOT_PERMITTED``, and
it never holds the deployment's keyring (operator powers live in
``actors.client.operator.OperatorClient``). A ``ScopedClient`` may act only for the
accounts of its scope. See ``docs/SECURITY.md``.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import AsyncIterator

import ray

from actors import bootstrap
from actors.client.coalescing import RETRY_DELAY_S, RETRYABLE, ShardCalls
from actors.client.margin import MarginClientMixin, enum_value as _enum
from actors.client.otc import OtcClientMixin
from actors.client.perp import PerpClientMixin
from actors.metrics.roles import client_metrics
from actors.link.wire import pack, unpack_results
from actors.client.results import CommandResult, OrderResult, command_result, order_result
from exchange.messages.records import (LENDING, AmendOrder, CancelOrder, Deposit, OpenAccount, PlaceOrder,
                               Withdraw)
from exchange.conservation import held, imbalance
from exchange.core.reasons import Reason
from exchange.accounts.shard import refusal
from exchange.messages.validation import check_fields
from exchange.core.money import parse_decimal
from exchange.matching.orders import OrderType, Side, StpMode, TimeInForce
from exchange.core.routing import shard_for
from exchange.perp.compensation import in_flight as compensations_in_flight
from exchange.perp.fees import in_flight as fee_shares_in_flight
from exchange.perp.rules import perp_markets


RETRY_TIMEOUT_S = 120.0
CALLS_IN_FLIGHT_PER_SHARD = 1     # execute_async: calls to one shard at once; the rest coalesce (coalescing.py)


class ExchangeClient(MarginClientMixin, PerpClientMixin, OtcClientMixin):
    def __init__(self, handles: bootstrap.Handles, owns_cluster: bool = False, owns_actors: bool = True):
        self.handles = handles
        self.config = handles.config
        self._owns_cluster = owns_cluster
        self._owns_actors = owns_actors
        self._prefix = (int.from_bytes(os.urandom(4), "big") >> 1) << 32   # ids stay within signed 64 bits
        self._counter = itertools.count(1)
        self._in_flight = 0                              # commands sent and not answered (limits.client_in_flight_max)
        self.metrics = client_metrics(self.config)      # end-to-end latency, pushed to the metrics actor
        self._calls = ShardCalls(lambda shard, packed: self._send(shard, packed), unpack_results,
                                 CALLS_IN_FLIGHT_PER_SHARD, self.config.limits.batch_commands_max)

    # ---- lifecycle --------------------------------------------------------------
    @classmethod
    def start(cls, config_path: str | None = None, num_cpus: int = 2, detached: bool = False,
              data_dir: str | None = None) -> "ExchangeClient":
        """Start an embedded exchange (local Ray cluster unless one is connected).

        With ``data_dir`` every actor journals to LMDB there and recovers from it.
        """
        owns = not ray.is_initialized()
        bootstrap.init_ray(num_cpus=num_cpus)
        return cls(bootstrap.create_actors(config_path, detached=detached, data_dir=data_dir), owns_cluster=owns)

    @classmethod
    def connect(cls, address: str = "auto") -> "ExchangeClient":
        """Connect to a running exchange (``exchange up``) on the Ray cluster at ``address``."""
        bootstrap.init_ray(address=address)
        return cls(bootstrap.find_actors(), owns_actors=False)

    def shutdown(self) -> None:
        """Stop the actors this client created (a connected client leaves the
        exchange running) and, if it started Ray, Ray too."""
        self.metrics.stop()
        if self._owns_actors:
            bootstrap.destroy_actors(self.handles)
        if self._owns_cluster:
            ray.shutdown()

    # ---- raw commands -------------------------------------------------------------
    def next_request_id(self) -> int:
        return self._prefix | next(self._counter)

    def _split(self, commands: list) -> dict[int, list[int]]:
        by_shard: dict[int, list[int]] = {}
        shards = self.config.routing
        for i, cmd in enumerate(commands):
            by_shard.setdefault(shard_for(getattr(cmd, "account_id", None), shards), []).append(i)
        return by_shard

    def execute_refs(self, commands: list) -> list[tuple[list[int], object]]:
        """Send commands to their shards; return (positions, ObjectRef) per shard.

        A command the wire cannot carry (an int beyond 64 bits, a string that
        is not valid UTF-8) is not sent: its answer is a local rejection with
        the reason the shard would give (``exchange.messages.validation.check_fields``),
        in place of a ref."""
        return [(positions, self._send(self.handles.shards[shard], packed) if packed is not None else answer)
                for shard, positions, packed, answer in self._packed(commands)]

    def _packed(self, commands: list) -> list[tuple]:
        """Per shard, ``(shard, positions, packed commands, None)``; a command the wire cannot
        carry gets its own ``(shard, [position], None, LocalAnswer)`` instead."""
        out = []
        for shard, positions in self._split(commands).items():
            try:
                packed = pack([commands[i] for i in positions])
            except TypeError:               # orjson refuses a value: answer those commands here
                local: list = []
                positions = self._answer_unencodable(commands, positions, local)
                out.extend((shard, where, None, answer) for where, answer in local)
                if not positions:
                    continue
                packed = pack([commands[i] for i in positions])
            out.append((shard, positions, packed, None))
        return out

    def _answer_unencodable(self, commands: list, positions: list[int], out: list) -> list[int]:
        """Append local rejections for the commands that cannot be packed; return the others' positions."""
        sendable = []
        for i in positions:
            cmd = commands[i]
            try:
                pack([cmd])
                sendable.append(i)
            except TypeError:
                reason = check_fields(cmd, len(self.config.asset_list)) or Reason.MALFORMED_COMMAND
                out.append(([i], LocalAnswer([[refusal(cmd, reason)]])))
        return sendable

    def _send(self, shard, packed: bytes):
        """One packed batch through the shard's client door."""
        return shard.execute.remote(packed)

    def execute(self, commands: list, timeout_s: float = RETRY_TIMEOUT_S) -> list[list]:
        """Apply client commands (any mix, any accounts); return each one's events.

        Only client commands pass the client door: anything else comes back
        rejected (``NOT_PERMITTED``, ``UNKNOWN_COMMAND``).

        A shard that dies mid-call restarts and recovers; the same commands
        (same request ids) are sent again until ``timeout_s``, so a retry
        returns the original outcome and never applies a command twice.
        Commands beyond ``[limits] client_in_flight_max`` in flight from this
        client come back ``OVERLOADED`` without being sent.
        """
        return self._bounded(commands, lambda inside: self._execute(inside, timeout_s))

    async def execute_async(self, commands: list, timeout_s: float = RETRY_TIMEOUT_S) -> list[list]:
        results, inside = self._take_in_flight(commands)
        try:
            answers = await self._execute_async([commands[i] for i in inside], timeout_s) if inside else []
        finally:
            self._in_flight -= len(inside)
        return _merged(results, inside, answers)

    def _bounded(self, commands: list, send) -> list[list]:
        results, inside = self._take_in_flight(commands)
        try:
            answers = send([commands[i] for i in inside]) if inside else []
        finally:
            self._in_flight -= len(inside)
        return _merged(results, inside, answers)

    def _take_in_flight(self, commands: list) -> tuple[list, list[int]]:
        """Count the commands that fit under the in-flight limit as in flight; the
        rest are answered ``OVERLOADED`` here. Return (results so far, positions to send)."""
        room = max(0, self.config.limits.client_in_flight_max - self._in_flight)
        inside = list(range(min(room, len(commands))))
        results: list = [None] * len(commands)
        for i in range(len(inside), len(commands)):
            results[i] = [refusal(commands[i], Reason.OVERLOADED)]
        self._in_flight += len(inside)
        return results, inside

    def _execute(self, commands: list, timeout_s: float) -> list[list]:
        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        while True:
            parts = self.execute_refs(commands)
            try:
                answers = [ref.results if type(ref) is LocalAnswer else unpack_results(ray.get(ref))
                           for _, ref in parts]
                results = _placed(len(commands), [positions for positions, _ in parts], answers)
                self.metrics.record_round_trip(len(commands), time.perf_counter() - started)
                return results
            except RETRYABLE:
                if time.monotonic() > deadline:
                    raise
                time.sleep(RETRY_DELAY_S)

    async def _execute_async(self, commands: list, timeout_s: float) -> list[list]:
        """Through the per-shard coalescing (``actors.client.coalescing``): sent at once to an
        idle shard, else with whatever else waits for the same shard, in the next call."""
        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        parts, waits = [], []
        for shard, positions, packed, answer in self._packed(commands):
            parts.append(positions)
            waits.append(self._calls.call(shard, self.handles.shards[shard], packed, len(positions), deadline)
                         if packed is not None else _wait(answer))
        answers = [a.results if type(a) is LocalAnswer else a for a in await asyncio.gather(*waits)]
        results = _placed(len(commands), parts, answers)
        self.metrics.record_round_trip(len(commands), time.perf_counter() - started)
        return results

    # ---- accounts and balances --------------------------------------------------------
    def _amount(self, asset: str, amount: int | str) -> int:
        spec = self.config.assets.get(asset)
        if isinstance(amount, str) and spec is not None:
            return parse_decimal(amount, spec.scale)
        return amount

    @staticmethod
    def _on_grid(spec, quantity, price) -> tuple:
        """``quantity`` and ``price`` in minor units: decimal strings parsed exactly at the market's
        base and quote scales, anything else (ints, None, a market the config does not know)
        passed as it is (the shard answers what is wrong with it)."""
        if spec is not None:
            if isinstance(quantity, str):
                quantity = parse_decimal(quantity, spec.base.scale)
            if isinstance(price, str):
                price = parse_decimal(price, spec.quote.scale)
        return quantity, price

    def _one(self, cmd) -> CommandResult:
        return command_result(cmd.request_id, self.execute([cmd])[0])

    def open_account(self, account_id: int, fee_tier: str = "", request_id=None) -> CommandResult:
        return self._one(OpenAccount(request_id or self.next_request_id(), 0, account_id, fee_tier))

    def deposit(self, account_id: int, asset: str, amount: int | str, request_id=None) -> CommandResult:
        return self._one(Deposit(request_id or self.next_request_id(), 0, account_id, asset,
                                 self._amount(asset, amount)))

    def withdraw(self, account_id: int, asset: str, amount: int | str, request_id=None) -> CommandResult:
        return self._one(Withdraw(request_id or self.next_request_id(), 0, account_id, asset,
                                  self._amount(asset, amount)))

    def balances(self, account_id: int) -> dict[str, tuple[int, int]] | None:
        """Per asset (available, held) in minor units; None for an unknown account."""
        return ray.get(self._shard(account_id).balances.remote(account_id))

    # ---- orders -------------------------------------------------------------------------
    def order(self, account_id: int, market: str, side: str | int, quantity: int | str,
              price: int | str | None = None, order_type: str | int = OrderType.LIMIT,
              tif: str | int = TimeInForce.GTC, client_order_id: str = "", stp: str | int = StpMode.DEFAULT,
              request_id=None) -> PlaceOrder:
        """Build a PlaceOrder: a limit order at ``price`` unless ``order_type="market"``
        (a market order; ``price``, if given, is its protection limit). A limit
        order without a positive price is rejected ``NON_POSITIVE_PRICE``."""
        quantity, price = self._on_grid(self.config.markets.get(market), quantity, price)
        return PlaceOrder(request_id or self.next_request_id(), 0, account_id, market, _enum(Side, side),
                          _enum(OrderType, order_type), price or 0, quantity, _enum(TimeInForce, tif),
                          client_order_id, _enum(StpMode, stp))

    def place_order(self, account_id: int, market: str, side: str | int, quantity: int | str,
                    price: int | str | None = None, **kwargs) -> OrderResult:
        """Place one order; see ``order`` for the arguments."""
        return self.place_orders([self.order(account_id, market, side, quantity, price, **kwargs)])[0]

    def place_orders(self, orders: list[PlaceOrder]) -> list[OrderResult]:
        """Place many orders in one round trip per shard."""
        return [order_result(o.request_id, events, o.account_id)
                for o, events in zip(orders, self.execute(orders))]

    async def place_orders_async(self, orders: list[PlaceOrder]) -> list[OrderResult]:
        return [order_result(o.request_id, events, o.account_id)
                for o, events in zip(orders, await self.execute_async(orders))]

    def cancel_order(self, account_id: int, market: str, order_id: int = 0, client_order_id: str = "",
                     request_id=None) -> OrderResult:
        cmd = CancelOrder(request_id or self.next_request_id(), 0, account_id, market, order_id, client_order_id)
        return order_result(cmd.request_id, self.execute([cmd])[0], account_id)

    def amend_order(self, account_id: int, market: str, order_id: int, price: int | str | None = None,
                    quantity: int | str | None = None, request_id=None) -> OrderResult:
        """Amend price and/or total quantity (see ``exchange.messages.records.AmendOrder``)."""
        quantity, price = self._on_grid(self.config.markets.get(market), quantity, price)
        cmd = AmendOrder(request_id or self.next_request_id(), 0, account_id, market, order_id,
                         price or 0, quantity or 0)
        return order_result(cmd.request_id, self.execute([cmd])[0], account_id)

    def get_order(self, account_id: int, order_id: int) -> dict | None:
        return ray.get(self._shard(account_id).get_order.remote(account_id, order_id))

    def open_orders(self, account_id: int) -> list[dict]:
        return ray.get(self._shard(account_id).open_orders.remote(account_id))

    # ---- market data ------------------------------------------------------------------
    def order_book(self, market: str, depth: int = 10) -> dict:
        """Aggregated levels: {"bids": [(price, qty, orders)], "asks": [...], "seq", "last_price"}."""
        return ray.get(self.handles.markets[market].depth.remote(depth))

    def recent_trades(self, market: str, limit: int = 100) -> list:
        return ray.get(self.handles.markets[market].trades.remote(limit))

    def market_stats(self) -> list[dict]:
        return ray.get([m.stats.remote() for m in self.handles.markets.values()])

    # ---- streams ------------------------------------------------------------------------
    async def stream(self, account: int | None = None, market: str | None = None, from_start: bool = False,
                     poll_s: float = 1.0) -> AsyncIterator[tuple[int, object]]:
        """Yield ``(cursor, event)`` for an account or a market, in order, forever.

        Cursors are consecutive: a consumer can check that it missed nothing.
        Raises RuntimeError if the consumer fell behind the stream's buffer.
        """
        if (account is None) == (market is None):
            raise ValueError("stream needs exactly one of account= or market=")
        if account is not None:
            actor = self._shard(account)
            cursor = 0 if from_start else await actor.subscribe.remote(account)
            fetch = lambda c: actor.events_after.remote(account, c, poll_s)  # noqa: E731
        else:
            actor = self.handles.markets[market]
            cursor = 0
            fetch = lambda c: actor.events_after.remote(c, poll_s)  # noqa: E731
        while True:
            batch = await fetch(cursor)
            if batch["lost"]:
                raise RuntimeError(f"stream consumer fell behind at cursor {cursor}")
            for position, event in batch["events"]:
                cursor = position
                yield position, event

    def subscribe(self, account: int) -> int:
        """Start recording an account's events now; return the current cursor."""
        return ray.get(self._shard(account).subscribe.remote(account))

    # ---- audit ----------------------------------------------------------------------------
    def audit(self, attempts: int = 50) -> dict:
        """Conservation over all shards, the lending pools and the insurance fund,
        at a consistent cut.

        Retries until every market's and the pool's pushes to every shard are
        applied (so no fill or loan is half-settled in the totals), no
        insurance-fund cover, no perpetual ADL and no OTC crossing is in flight (the
        OTC desk's transit counts as its holding) (a perpetual fee share a shard
        moved and the fund has not recorded yet counts as the fund's). Returns per asset the imbalance
        (balances + fees + margin books + pool cash + fund - deposits +
        withdrawals - fund deposits; 0 when sound) and ``ok``.
        """
        links = dict(self.handles.markets)
        lending, liquidator, otc = self.handles.lending, self.handles.liquidator, self.handles.otc
        for _ in range(attempts):
            before = ray.get([m.push_marks.remote() for m in links.values()])
            fund_before = ray.get(liquidator.audit.remote()) if liquidator else None
            desk_before = ray.get(otc.audit.remote()) if otc else None
            audits = ray.get([s.audit.remote() for s in self.handles.shards])
            desk = ray.get(otc.audit.remote()) if otc else {"transit": {}, "unanswered": 0}
            after = ray.get([m.push_marks.remote() for m in links.values()])
            pools = ray.get(lending.audit.remote()) if lending else {"cash": {}, "pushed": {}}
            fund = ray.get(liquidator.audit.remote()) if liquidator else {"fund": {}, "deposited": {},
                                                                            "covers_in_flight": 0}
            marks = dict(zip(links, after))
            if lending:
                marks[LENDING] = pools["pushed"]
            if before == after and fund == fund_before and not fund["covers_in_flight"] \
                    and (not otc or (desk == desk_before and not desk["unanswered"])) \
                    and not fund.get("adl_in_flight") \
                    and all(audits[shard]["applied"][name] >= pushed
                            for name, by_shard in marks.items() for shard, pushed in by_shard.items()) \
                    and (not lending or pools["pushed"] == ray.get(lending.push_marks.remote())):
                break
            time.sleep(0.02)
        else:
            return {"ok": False, "consistent": False, "imbalance": {}}
        assets, holdings = self.config.asset_list, dict(fund["fund"])
        for asset, amount in desk["transit"].items():               # the OTC desk's, between two accounts
            holdings[asset] = holdings.get(asset, 0) + amount
        perps = perp_markets(self.config)
        for moving in (fee_shares_in_flight(perps, [a["perp_fees_swept"] for a in audits],
                                            fund.get("perp_fees_through", {})),
                       compensations_in_flight(perps, [a["perp_compensated"] for a in audits],
                                               fund.get("perp_paid", {}))):
            for asset, amount in moving.items():
                holdings[asset] = holdings.get(asset, 0) + amount
        off = imbalance(assets, [a["totals"] for a in audits], [a["deposited"] for a in audits],
                        [a["withdrawn"] for a in audits], pools["cash"], holdings, fund["deposited"])
        totals = held(assets, [a["totals"] for a in audits], pools["cash"], holdings)
        return {"ok": not any(off.values()), "consistent": True, "imbalance": off, "totals": totals}

    def account_shard(self, account_id: int):
        """The handle of the shard actor that owns ``account_id`` (for its async views)."""
        return self._shard(account_id)

    def _shard(self, account_id: int):
        return self.handles.shards[shard_for(account_id, self.config.routing)]


class LocalAnswer:
    """Answers made by the client itself for commands it could not send."""
    __slots__ = ("results",)

    def __init__(self, results: list):
        self.results = results


def _merged(results: list, positions: list[int], answers: list) -> list:
    """``results`` with ``answers`` put at ``positions`` (the commands that were sent)."""
    for i, events in zip(positions, answers):
        results[i] = events
    return results


def _placed(count: int, parts: list[list[int]], answers: list[list]) -> list[list]:
    """Each part's per-command events put back at the commands' positions."""
    results: list = [None] * count
    for positions, answer in zip(parts, answers):
        _merged(results, positions, answer)
    return results


async def _wait(ref):
    return ref if type(ref) is LocalAnswer else await ref


class ScopedClient(ExchangeClient):
    """A client that may act only for the accounts of its ``Scope`` (for less trusted
    services: a desk, a market maker's process). It sends through the shards'
    ``execute_scoped`` door, which checks the scope and refuses other accounts
    with ``ACCOUNT_NOT_IN_SCOPE``; it also refuses them here, before sending,
    so a mistake shows at once. Get one from ``OperatorClient.scoped``."""

    def __init__(self, handles: bootstrap.Handles, scope):
        super().__init__(handles, owns_actors=False)
        self.scope = scope

    def _send(self, shard, packed: bytes):
        return shard.execute_scoped.remote(self.scope, packed)

    def _shard(self, account_id: int):
        """Per-account reads (balances, orders, margin books, streams) for the scope's accounts only.
        Raises ``PermissionError`` otherwise (a local check: shard views are not authenticated)."""
        if type(account_id) is not int or account_id not in self.scope.accounts:
            raise PermissionError(f"account {account_id!r} is not in this client's scope")
        return super()._shard(account_id)

    def execute(self, commands: list, timeout_s: float = RETRY_TIMEOUT_S) -> list[list]:
        return self._within_scope(commands, lambda inside: super(ScopedClient, self).execute(inside, timeout_s))

    async def execute_async(self, commands: list, timeout_s: float = RETRY_TIMEOUT_S) -> list[list]:
        results, inside = self._refused(commands)
        answers = await super().execute_async([commands[i] for i in inside], timeout_s) if inside else []
        return _merged(results, inside, answers)

    def _within_scope(self, commands: list, send) -> list[list]:
        results, inside = self._refused(commands)
        return _merged(results, inside, send([commands[i] for i in inside]) if inside else [])

    def _refused(self, commands: list) -> tuple[list, list[int]]:
        """Rejections for commands outside the scope; the positions of the others."""
        results: list = [None] * len(commands)
        inside = []
        for i, cmd in enumerate(commands):
            account = getattr(cmd, "account_id", None)
            if type(account) is int and account in self.scope.accounts:
                inside.append(i)
            else:
                results[i] = [refusal(cmd, Reason.ACCOUNT_NOT_IN_SCOPE)]
        return results, inside
