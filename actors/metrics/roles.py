"""What each kind of actor records: shards, markets, the index, and the client.

Each ``*_metrics(actor)`` function is the one hook an actor calls at the end
of its ``__init__``: it builds the role's metrics (or ``NullMetrics`` when
``[metrics] enabled = false``), binds every label child for the configured
markets/assets/reasons, and starts the push loop. Handlers then call one
``record_*`` per batch.
"""
from __future__ import annotations

import time

import ray
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from actors.metrics.recorders import (METRICS_ACTOR, ActorMetrics, NullMetrics, StateView, WeightedHistogram,
                            metrics_settings, process_source)
from actors.metrics import otc, perp, risk
from exchange.matching.market import MarketEngine
from exchange.messages.records import (AmendOrder, BalanceChanged, CancelOrder, OrderClosed, OrderRejected, PlaceMarginOrder,
                               PlaceOrder,
                               RequestRejected, Withdraw)
from exchange.core.reasons import CloseReason, Reason

OTHER = "other"                        # label value for a market/asset the config does not know
CLOSED_REJECTED = int(CloseReason.REJECTED)
BOOK_LEVELS = 10


def _enabled(config) -> bool:
    return bool(metrics_settings(config)["enabled"])


def _backlog(**queues: int) -> GaugeMetricFamily:
    """``exchange_mailbox_backlog``: how much work waits inside an actor, one sample per queue."""
    family = GaugeMetricFamily("exchange_mailbox_backlog", "Work queued inside an actor, by queue", labels=["queue"])
    for queue, size in queues.items():
        family.add_metric([queue], size)
    return family


def reason_label(code: int) -> str:
    try:
        return Reason(code).name.lower()
    except ValueError:
        return str(code)


class ShardMetrics(ActorMetrics):
    """An account shard: orders, cancels, amends per market; rejections by reason;
    withdrawals by asset and outcome; accounts, open orders and backlog."""

    def __init__(self, actor):
        super().__init__(actor.name, actor.config, actor)
        r, markets = self.registry, [m.name for m in actor.config.market_list] + [OTHER]
        assets = [a.name for a in actor.config.asset_list] + [OTHER]

        def per_market(name: str, documentation: str) -> dict:
            counter = Counter(name, documentation, ["market"], registry=r)
            return {m: counter.labels(m) for m in markets}
        self.orders = per_market("exchange_orders", "Orders received (PlaceOrder commands)")
        self.cancels = per_market("exchange_cancels", "Cancel requests received")
        self.amends = per_market("exchange_amends", "Amend requests received")
        rejections = Counter("exchange_rejections", "Commands rejected, by reason (exchange/core/reasons.py)",
                             ["reason"], registry=r)
        self._rejections_family = rejections
        self.rejections = {int(code): rejections.labels(reason_label(code)) for code in Reason}
        withdrawals = Counter("exchange_withdrawals", "Withdrawals by asset and outcome", ["asset", "state"],
                              registry=r)
        self.withdrawals = {(a, s): withdrawals.labels(a, s) for a in assets for s in ("accepted", "rejected")}
        self.batch_commands = Histogram("exchange_batch_commands", "Commands per client batch",
                                        buckets=(1, 10, 100, 1_000, 10_000), registry=r)
        self.execute = self.handler("execute")
        self.market_events = self.handler("on_market_events")
        self.margin                                      # margin series exist (at 0) from the start
        r.register(StateView(self._view))
        if "perp" in actor.shard.products:
            r.register(StateView(lambda: perp.shard_families(actor)))
        if getattr(actor.shard, "risk", None) is not None:
            r.register(StateView(lambda: risk.shard_families(actor)))

    def record_batch(self, commands: list, results: list, seconds: float) -> None:
        """One ``execute`` call: count commands by kind and market, rejections by reason."""
        self.execute.observe(seconds)
        self.batch_commands.observe(len(commands))
        placed: dict = {}
        cancelled: dict = {}
        amended: dict = {}
        rejected: dict = {}
        for cmd, events in zip(commands, results):
            kind = type(cmd)
            if kind is PlaceOrder or kind is PlaceMarginOrder:
                market = cmd.market if type(cmd.market) is str else OTHER
                placed[market] = placed.get(market, 0) + 1
            elif kind is CancelOrder:
                market = cmd.market if type(cmd.market) is str else OTHER
                cancelled[market] = cancelled.get(market, 0) + 1
            elif kind is AmendOrder:
                market = cmd.market if type(cmd.market) is str else OTHER
                amended[market] = amended.get(market, 0) + 1
            elif kind is Withdraw:
                asset = cmd.asset if type(cmd.asset) is str else OTHER
                ok = any(type(e) is BalanceChanged for e in events)
                key = (asset if (asset, "accepted") in self.withdrawals else OTHER, "accepted" if ok else "rejected")
                self.withdrawals[key].inc()
            for event in events or ():
                ek = type(event)
                if ek is OrderRejected or ek is RequestRejected:
                    rejected[event.reason] = rejected.get(event.reason, 0) + 1
                elif ek is OrderClosed and event.reason == CLOSED_REJECTED:
                    rejected[event.reject_reason] = rejected.get(event.reject_reason, 0) + 1
        for counts, children in ((placed, self.orders), (cancelled, self.cancels), (amended, self.amends)):
            for market, n in counts.items():
                children.get(market, children[OTHER]).inc(n)
        for code, n in rejected.items():
            child = self.rejections.get(code)
            if child is None:
                child = self.rejections[code] = self._rejections_family.labels(reason_label(code))
            child.inc(n)

    def record_push(self, seconds: float) -> None:
        """One ``on_market_events`` call (settling a market's push)."""
        self.market_events.observe(seconds)

    def _view(self):
        a = self.actor
        yield GaugeMetricFamily("exchange_accounts", "Accounts on this shard", value=len(a.shard.ledger.accounts))
        yield GaugeMetricFamily("exchange_open_orders", "Open orders of this shard's accounts",
                                value=len(a.shard.orders))
        yield CounterMetricFamily("exchange_commands", "Client commands handled", value=a.commands)
        yield _backlog(pending_requests=len(a.pending), outbox=a.links.unsent(), staged=a.links.staged())


class MarketMetrics(ActorMetrics):
    """A market: submit handling, requests, trades and volume, book depth and spread, sequence."""

    def __init__(self, actor):
        super().__init__(actor.actor_name, actor.config, actor)
        self.submit = self.handler("submit")
        self.batch_requests = Histogram("exchange_batch_requests", "Requests per submit call from a shard",
                                        buckets=(1, 10, 100, 1_000, 10_000), registry=self.registry)
        self.registry.register(StateView(self._view))
        if hasattr(actor, "pricer"):                     # a perpetual market: its price state too
            self.registry.register(StateView(lambda: perp.market_families(actor)))
        if getattr(actor.engine, "guard", None) is not None:
            self.registry.register(StateView(lambda: risk.market_families(actor)))

    def record_submit(self, requests: int, seconds: float) -> None:
        """One ``submit`` call that applied ``requests`` new requests."""
        self.submit.observe(seconds)
        self.batch_requests.observe(requests)

    def _view(self):
        a = self.actor
        engine, spec, market = a.engine, a.engine.spec, a.name
        tick, base = spec.tick_minor / 10 ** spec.quote.scale, 10 ** spec.base.scale

        def gauge(name, doc, value, labels=None, label_values=()):
            family = GaugeMetricFamily(name, doc, labels=["market", *(labels or [])])
            family.add_metric([market, *label_values], value)
            return family

        def counter(name, doc, value):
            family = CounterMetricFamily(name, doc, labels=["market"])
            family.add_metric([market], value)
            return family

        yield gauge("exchange_market_sequence", "Last event sequence number of the market", engine.seq)
        yield counter("exchange_market_requests", "Requests applied by the market", a.requests)
        yield counter("exchange_trades", "Trades (fills)", engine.trade_count)
        yield counter("exchange_volume_base", "Traded quantity, in base asset units", a.traded_quantity / base)
        yield gauge("exchange_book_resting_orders", "Orders resting on the book", len(engine.book.orders))
        bids, asks = engine.book.depth(BOOK_LEVELS)
        depth = GaugeMetricFamily("exchange_book_depth", f"Resting quantity in the best {BOOK_LEVELS} levels, "
                                                         "in base units", labels=["market", "side"])
        depth.add_metric([market, "bid"], sum(q for _, q, _ in bids) * spec.lot_minor / base)
        depth.add_metric([market, "ask"], sum(q for _, q, _ in asks) * spec.lot_minor / base)
        yield depth
        bid, ask = engine.book.best_bid(), engine.book.best_ask()
        best = GaugeMetricFamily("exchange_book_best_price", "Best bid and ask, in quote units",
                                 labels=["market", "side"])
        if bid:
            best.add_metric([market, "bid"], bid * tick)
        if ask:
            best.add_metric([market, "ask"], ask * tick)
        yield best
        if bid and ask:
            yield gauge("exchange_book_spread", "Best ask - best bid, in quote units", (ask - bid) * tick)
            yield gauge("exchange_book_spread_bps", "Spread over the mid, in basis points",
                        (ask - bid) * 20_000 / (ask + bid))
        if engine.last_price:
            yield gauge("exchange_last_price", "Price of the last trade, in quote units", engine.last_price * tick)
        yield _backlog(pushes=a.links.unsent(), staged=a.links.staged())


class LendingPoolMetrics(ActorMetrics):
    """The lending pool actor (a ``MarketActor`` serving a ``LendingEngine``): submit
    handling, backlog, and every pool's figures (``exchange_lending_*``), set from
    the engine's view each time the registry is collected."""

    def __init__(self, actor):
        super().__init__(actor.actor_name, actor.config, actor)
        self.submit = self.handler("submit")
        self.registry.register(StateView(self._view))

    def record_submit(self, requests: int, seconds: float) -> None:
        self.submit.observe(seconds)

    def families(self) -> list:
        lending = self.lending
        for asset, pool in self.actor.engine.view().items():
            if asset in lending.assets:
                lending.pool(asset, pool["supplied"], pool["borrowed"], pool["utilization_ppm"],
                             pool["borrow_rate_ppm"], pool["supply_rate_ppm"], pool["written_off"])
        return super().families()

    def _view(self):
        a = self.actor
        yield GaugeMetricFamily("exchange_lending_sequence", "Last event sequence number of the pools", a.engine.seq)
        yield _backlog(pushes=a.links.unsent(), staged=a.links.staged())


class IndexMetrics(ActorMetrics):
    """The index actor: index price and usable components per asset."""

    def __init__(self, actor):
        super().__init__("index", actor.config, actor)
        self.registry.register(StateView(self._view))

    def _view(self):
        a = self.actor
        scale = 10 ** a.config.assets[a.quote_asset].scale
        price = GaugeMetricFamily("exchange_index_price", "Index price, in quote units", labels=["asset"])
        used = GaugeMetricFamily("exchange_index_components", "Components used in the index (stale and "
                                                             "outlying ones dropped)", labels=["asset"])
        for asset, index in a.prices.items():
            price.add_metric([asset], index.price / scale)
            used.add_metric([asset], len(index.used))
        yield price
        yield used


class ClientMetrics(ActorMetrics):
    """A client process: end-to-end latency, client send to acknowledgement, per command.

    A client may have no event loop and no spare thread, so it pushes from the
    caller's thread, right after an acknowledgement, at most once per
    ``push_interval_s`` (fire and forget), and once more at ``stop``. A
    background thread would outlive ``ray.shutdown()`` and Ray would connect
    again on its next call."""

    def __init__(self, config):
        super().__init__(process_source("client"), config, None, kind="client")
        self.latency = WeightedHistogram("exchange_order_latency_seconds", "End to end, client send to "
                                         "acknowledgement, per command (orders, cancels, amends, transfers)")
        self.registry.register(self.latency)
        self.interval_s = float(self.settings["push_interval_s"])
        self.next_push = time.monotonic() + self.interval_s
        self._handle = None

    def record_round_trip(self, commands: int, seconds: float) -> None:
        """A batch of ``commands`` acknowledged ``seconds`` after it was sent: each command waited that long."""
        self.latency.observe(seconds, commands)
        if time.monotonic() >= self.next_push:
            self.push()

    def push(self) -> None:
        """Send this process's samples to the metrics actor now (no-op when Ray is not connected)."""
        self.next_push = time.monotonic() + self.interval_s
        if not ray.is_initialized():
            return
        try:
            self._handle = self._handle or ray.get_actor(METRICS_ACTOR)
            self._handle.push.remote(self.source, self.kind, self.started_ns, self.families())
            self.pushes += 1
        except Exception:             # no metrics actor (yet, or any more): look again later
            self._handle = None
            self.push_errors += 1
            self.next_push = time.monotonic() + 10 * self.interval_s

    def start(self) -> "ClientMetrics":
        return self

    def stop(self) -> None:
        self.push()


def shard_metrics(actor):
    """Metrics of an ``AccountShardActor`` (call at the end of its ``__init__``)."""
    return ShardMetrics(actor).start() if _enabled(actor.config) else NullMetrics()


def market_metrics(actor):
    """Metrics of a ``MarketActor`` (call at the end of its ``__init__``); the lending
    pool actor, a ``MarketActor`` serving a ``LendingEngine``, gets the pool metrics."""
    if not _enabled(actor.config):
        return NullMetrics()
    kind = MarketMetrics if type(actor.engine) is MarketEngine else LendingPoolMetrics
    return kind(actor).start()


def index_metrics(actor):
    """Metrics of the ``IndexActor``."""
    return IndexMetrics(actor).start() if _enabled(actor.config) else NullMetrics()


def actor_metrics(actor, source: str):
    """Metrics of any other actor (``lending``, ``liquidator``...): the common families,
    plus ``.margin``, ``.lending``, ``.liquidation`` on first use. The actor
    needs ``config`` (and, if it has them, ``journal``, ``recovery``, ``started_ns``, ``gc``)."""
    return ActorMetrics(source, actor.config, actor).start() if _enabled(actor.config) else NullMetrics()


def surveillance_metrics(actor):
    """Metrics of the ``SurveillanceActor``: the common families and its alerts."""
    return _with_families(actor, "surveillance", risk.surveillance_families)


def treasury_metrics(actor):
    """Metrics of the ``TreasuryActor``: the common families and its wallets."""
    return _with_families(actor, "treasury", risk.treasury_families)


def otc_metrics(actor):
    """Metrics of the ``OtcActor``: the common families and the desk's (``actors/metrics/otc.py``)."""
    return _with_families(actor, "otc", otc.otc_families)


def _with_families(actor, source: str, families):
    if not _enabled(actor.config):
        return NullMetrics()
    metrics = ActorMetrics(source, actor.config, actor)
    metrics.registry.register(StateView(lambda: families(actor)))
    return metrics.start()


def client_metrics(config):
    """Metrics of a client process (end-to-end latency)."""
    return ClientMetrics(config).start() if _enabled(config) else NullMetrics()
