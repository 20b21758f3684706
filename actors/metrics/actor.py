"""MetricsActor: the exchange's one Prometheus scrape endpoint.

Every actor (and client process) pushes its registry's families here once per
``push_interval_s`` (``actors/metrics/recorders.py``); this actor keeps the latest
families of each source and serves them all, each sample labelled with its
source as ``actor``, on ``http://<address>:<port>/metrics``
(``prometheus_client.start_http_server`` on its own thread). Why a push to one
actor rather than Ray's metrics export: one stable target for Prometheus
whatever the number of nodes and actors, no service-discovery file, and the
exchange's families carry its own labels (see docs/DECISIONS.md, "Metrics").

It also owns:
- ``exchange_actor_up{actor}``: 1 while the actor pushes, 0 once it missed
  three pushes (clients are not listed: they come and go);
- ``exchange_actor_restarts_total{actor}``: a source reappearing with a new
  start time (a new process) is a restart;
- placeholders for the margin, lending and liquidation families
  (``actors/metrics/margin.py``) at 0 for every configured market and asset,
  served only while no actor pushes a family of that name, so dashboards and
  alerts have their series from the first scrape.

An actor's families are served while it pushes (three missed pushes: gone,
and ``up`` is 0); a client pushes only while it sends orders, so its last
families stay until it has been silent for ``FORGET_AFTER_S``, when any
source is dropped. If the configured port is
taken, the actor serves on an ephemeral port instead (logged; ``address()``
tells which).
"""
from __future__ import annotations

import logging
import time

import ray
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server
from prometheus_client.metrics_core import Metric

from actors.metrics.margin import LendingMetrics, LiquidationMetrics, MarginMetrics
from actors.metrics.recorders import metrics_settings
from exchange.config import load_config

FORGET_AFTER_S = 300.0
MISSED_PUSHES_DOWN = 3
log = logging.getLogger("exchange.metrics")


class Source:
    __slots__ = ("kind", "started_ns", "families", "received")

    def __init__(self, kind: str, started_ns: int, families: list, received: float):
        self.kind, self.started_ns, self.families, self.received = kind, started_ns, families, received


def merge(sources: dict[str, Source], fresh_after: float) -> dict[str, Metric]:
    """One family per name over every fresh source, each sample labelled ``actor=<source>``.
    A family whose type disagrees with the first one seen under its name is skipped."""
    merged: dict[str, Metric] = {}
    for name, source in sources.items():
        if source.received < fresh_after:
            continue
        for family in source.families:
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(family.name, family.documentation, family.type)
            elif target.type != family.type:
                continue
            target.samples.extend(s._replace(labels={**s.labels, "actor": name}) for s in family.samples)
    return merged


class MetricsActor:
    def __init__(self, config_path: str | None, port: int | None = None):
        self.config = load_config(config_path)
        settings = metrics_settings(self.config)
        self.interval_s = float(settings["push_interval_s"])
        self.sources: dict[str, Source] = {}
        self.own = CollectorRegistry(auto_describe=False)
        self.restarts = Counter("exchange_actor_restarts", "Times an actor came back in a new process",
                                ["actor"], registry=self.own)
        self.up = Gauge("exchange_actor_up", "1 while the actor pushes its metrics, 0 once it stopped",
                        ["actor"], registry=self.own)
        self.pushes = Counter("exchange_metrics_pushes", "Metric pushes received", registry=self.own)
        self.placeholders = CollectorRegistry(auto_describe=False)
        markets = [m.name for m in self.config.market_list]
        assets = [a.name for a in self.config.asset_list]
        MarginMetrics(self.placeholders, markets)
        LiquidationMetrics(self.placeholders, markets, assets)
        LendingMetrics(self.placeholders, assets)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.host = settings["address"]
        wanted = int(settings["port"] if port is None else port)
        try:
            self.server, self.thread = start_http_server(wanted, self.host, registry=self.registry)
        except OSError as exc:
            log.error("metrics port %s:%s unavailable (%s); serving on an ephemeral port", self.host, wanted, exc)
            self.server, self.thread = start_http_server(0, self.host, registry=self.registry)
        self.port = self.server.server_port

    def push(self, source: str, kind: str, started_ns: int, families: list) -> bool:
        """Keep ``families`` as the latest of ``source`` (a new ``started_ns`` counts a restart)."""
        now = time.monotonic()
        known = self.sources.get(source)
        if kind != "client":
            if known is not None and known.started_ns != started_ns:
                self.restarts.labels(source).inc()
            else:
                self.restarts.labels(source)      # the series exists from the first push, at 0
        self.sources[source] = Source(kind, started_ns, families, now)
        self.pushes.inc()
        return True

    def address(self) -> tuple[str, int]:
        """Where the scrape endpoint listens: (host, port)."""
        return self.host, self.port

    def scrape(self) -> str:
        """The text exposition Prometheus would scrape (for tests and the CLI)."""
        return generate_latest(self.registry).decode()

    def collect(self):
        """Collector interface: own families, every fresh source's, then placeholders nobody pushes."""
        now = time.monotonic()
        for name, source in list(self.sources.items()):
            if now - source.received > FORGET_AFTER_S:
                self.sources.pop(name, None)
                if source.kind != "client":
                    try:
                        self.up.remove(name)
                    except KeyError:
                        pass
            elif source.kind != "client":
                self.up.labels(name).set(1 if now - source.received <= MISSED_PUSHES_DOWN * self.interval_s else 0)
        fresh_after = now - MISSED_PUSHES_DOWN * self.interval_s
        merged = merge({name: source for name, source in list(self.sources.items())        # clients push only
                        if source.kind == "client" or source.received >= fresh_after}, 0.0)  # while they send
        yield from self.own.collect()
        yield from merged.values()
        for family in self.placeholders.collect():
            if family.name not in merged:
                yield family

    def stop(self) -> bool:
        self.server.shutdown()
        return True


RemoteMetrics = ray.remote(MetricsActor)
