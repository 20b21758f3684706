"""Prometheus metrics of one actor process: its registry, the families every actor
has, and the push of its samples to the exchange's one scrape endpoint.

Each actor (and each client process) keeps its own ``CollectorRegistry``.
Two kinds of metric live in it:
- **hot-path instruments** (histograms, counters) whose label children are
  bound once at start, so recording is one ``observe``/``inc`` on a bound
  child; handlers record once per batch, never once per message where a
  batch figure says the same;
- **state views**: values read from the actor's own state when the registry
  is collected (book depth, spread, sequence, backlog, journal and recovery
  figures), which cost nothing between collections.

Once per ``push_interval_s``, from the actor's own event loop (never inside a
handler), ``registry.collect()`` is sent to the ``metrics`` actor
(``actors/metrics/actor.py``), which adds an ``actor`` label and serves
everything on one HTTP endpoint. With ``[metrics] enabled = false`` every
actor gets ``NullMetrics``: the same calls, doing nothing.

Role-specific recorders: ``actors/metrics/roles.py`` (shards, markets, index,
client); margin, lending and liquidation families: ``actors/metrics/margin.py``.
"""
from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
import os
import time

import ray
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from actors.metrics.margin import LendingMetrics, LiquidationMetrics, MarginMetrics

disable_created_metrics()        # no *_created series: they double the sample count for nothing here

LATENCY_BUCKETS_S = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                     0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METRICS_ACTOR = "metrics"
DEFAULTS = {"enabled": True, "port": 9464, "address": "127.0.0.1", "push_interval_s": 1.0}
log = logging.getLogger("exchange.metrics")


def metrics_settings(config) -> dict:
    """The ``[metrics]`` section of the config with defaults filled in."""
    return {**DEFAULTS, **config.sections.get("metrics", {})}


class StateView:
    """A collector that builds families from live state when the registry is collected."""

    def __init__(self, build):
        self.build = build

    def collect(self):
        return self.build()


class ActorMetrics:
    """One actor's registry with the families every actor has.

    - ``exchange_handler_seconds{handler}``: time spent in a handler per call;
    - ``exchange_journal_commit_seconds``: one group commit (LMDB write + fsync);
    - snapshot duration and size, recovery time and records replayed, storage
      full and used ratio, start time, CPU seconds, garbage-collector passes
      (state views).
    ``margin``, ``lending`` and ``liquidation`` bind the issue-6 families for
    every configured market/asset on first use (``actors/metrics/margin.py``).
    """

    enabled = True

    def __init__(self, source: str, config, actor=None, kind: str = "actor"):
        self.source = source
        self.kind = kind
        self.config = config
        self.actor = actor
        self.started_ns = getattr(actor, "started_ns", None) or time.time_ns()
        self.settings = metrics_settings(config)
        self.registry = CollectorRegistry(auto_describe=False)
        self._handlers: dict[str, object] = {}
        self.handler_seconds = Histogram("exchange_handler_seconds", "Time an actor spent in one handler call",
                                         ["handler"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self._margin = self._lending = self._liquidation = None
        self._task = None
        self.pushes = 0
        self.push_errors = 0
        journal = getattr(actor, "journal", None)
        if journal is not None and journal.enabled:
            commit = Histogram("exchange_journal_commit_seconds", "One journal group commit (write and sync)",
                               buckets=LATENCY_BUCKETS_S, registry=self.registry)
            journal.on_commit = commit.observe
        if actor is not None:
            self.registry.register(StateView(self._common_view))

    # ---- recording --------------------------------------------------------------------
    def handler(self, name: str):
        """The bound ``exchange_handler_seconds`` child of handler ``name`` (bind once, observe often)."""
        child = self._handlers.get(name)
        if child is None:
            child = self._handlers[name] = self.handler_seconds.labels(name)
        return child

    def observe(self, handler: str, seconds: float) -> None:
        """Record one call of ``handler`` that took ``seconds``."""
        self.handler(handler).observe(seconds)

    @property
    def margin(self) -> MarginMetrics:
        if self._margin is None:
            self._margin = MarginMetrics(self.registry, [m.name for m in self.config.market_list])
        return self._margin

    @property
    def lending(self) -> LendingMetrics:
        if self._lending is None:
            self._lending = LendingMetrics(self.registry, [a.name for a in self.config.asset_list])
        return self._lending

    @property
    def liquidation(self) -> LiquidationMetrics:
        if self._liquidation is None:
            self._liquidation = LiquidationMetrics(self.registry, [m.name for m in self.config.market_list],
                                                   [a.name for a in self.config.asset_list])
        return self._liquidation

    # ---- state view ---------------------------------------------------------------------
    def _common_view(self):
        actor = self.actor
        yield GaugeMetricFamily("exchange_actor_start_time_seconds", "When this actor process started (Unix time)",
                                value=self.started_ns / 1e9)
        yield CounterMetricFamily("exchange_actor_cpu_seconds", "CPU time of this actor process",
                                  value=time.process_time())
        recovery = getattr(actor, "recovery", None)
        if recovery is not None:
            yield GaugeMetricFamily("exchange_actor_recovery_seconds",
                                    "Time the last start spent loading the snapshot and replaying the journal",
                                    value=recovery.get("seconds", 0.0))
            yield GaugeMetricFamily("exchange_actor_recovery_replayed_records",
                                    "Journal records replayed at the last start", value=recovery.get("replayed", 0))
        journal = getattr(actor, "journal", None)
        if journal is not None and journal.enabled:
            yield GaugeMetricFamily("exchange_snapshot_duration_seconds", "Last snapshot: encode and write time",
                                    value=journal.snapshot_seconds_last)
            yield GaugeMetricFamily("exchange_snapshot_size_bytes", "Last snapshot: encoded size",
                                    value=journal.snapshot_bytes_last)
            yield GaugeMetricFamily("exchange_journal_since_snapshot_commands",
                                    "Commands journaled since the last snapshot", value=journal.since_snapshot)
            yield GaugeMetricFamily("exchange_storage_full", "1 when the actor's store has no room left (it "
                                    "refuses new commands with STORAGE_FULL)",
                                    value=int(journal.full or not journal.store.has_room(0)))
            yield GaugeMetricFamily("exchange_storage_used_ratio", "Used fraction of the actor's store "
                                    "(LMDB map, or disk if less)", value=journal.used_ratio)
        gc_policy = getattr(actor, "gc", None)
        if gc_policy is not None:
            yield CounterMetricFamily("exchange_gc_collections", "Full collections run by the GC policy",
                                      value=gc_policy.collections)
            yield GaugeMetricFamily("exchange_gc_pause_max_seconds", "Longest GC-policy pause so far",
                                    value=gc_policy.pause_s_max)

    # ---- push ---------------------------------------------------------------------------
    def families(self) -> list:
        """Every family of this registry as picklable ``Metric`` objects."""
        return list(self.registry.collect())

    def start(self) -> "ActorMetrics":
        """Start the periodic push from the running event loop (no-op without one, or without Ray)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self
        if ray.is_initialized() and self._task is None:
            self._task = loop.create_task(self._push_forever())
        return self

    async def _push_forever(self) -> None:
        interval = float(self.settings["push_interval_s"])
        handle = None
        while True:
            await asyncio.sleep(interval)
            try:
                handle = handle or ray.get_actor(METRICS_ACTOR)
                await asyncio.wait_for(handle.push.remote(self.source, self.kind, self.started_ns, self.families()),
                                       timeout=max(5.0, 5 * interval))
                self.pushes += 1
            except Exception as exc:      # the metrics actor is restarting or absent: try again next time
                handle = None
                self.push_errors += 1
                if self.push_errors in (1, 10) or self.push_errors % 1000 == 0:
                    log.warning("metrics push from %s failed (%s)", self.source, type(exc).__name__)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class WeightedHistogram:
    """A histogram that takes ``count`` equal observations in one call.

    prometheus-client has no weighted ``observe``; a batch of N commands that all
    waited the same round trip would otherwise cost N calls (~0.7 us each).
    Buckets are per-bucket counts bumped with ``bisect``; ``collect`` exports
    the standard cumulative ``_bucket``/``_count``/``_sum`` series. Single
    writer (the owning thread); a collect during an update may see the bucket
    bumped before the sum, which the next scrape corrects."""

    def __init__(self, name: str, documentation: str, buckets=LATENCY_BUCKETS_S):
        self.name, self.documentation = name, documentation
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += count
        self.total += value * count

    def collect(self):
        family = HistogramMetricFamily(self.name, self.documentation)
        running, cumulative = 0, []
        for edge, count in zip([repr(b) for b in self.bounds] + ["+Inf"], self.counts):
            running += count
            cumulative.append((edge, running))
        family.add_metric([], cumulative, self.total)
        yield family


class NullMetrics:
    """Metrics switched off: any attribute, any call, does nothing."""

    enabled = False

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return None


def process_source(prefix: str) -> str:
    """A source name unique to this process (clients: one series set per process)."""
    return f"{prefix}-{os.getpid()}"
