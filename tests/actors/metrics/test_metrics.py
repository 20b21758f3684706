"""Unit tests of the metrics modules: recorders, the margin-level distribution,
merging in the metrics actor (real prometheus-client registries and a real
HTTP endpoint on an ephemeral loopback port; no Ray)."""
from __future__ import annotations

import dataclasses
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from actors.metrics.margin import MARGIN_LEVEL_BUCKETS, MarginLevelDistribution, MarginMetrics, margin_keys
from actors.metrics.recorders import LATENCY_BUCKETS_S, ActorMetrics, NullMetrics, WeightedHistogram
from actors.metrics.actor import MetricsActor, Source, merge
from actors.metrics.roles import ShardMetrics, reason_label, shard_metrics
from exchange.config import load_config
from exchange.messages.records import (BalanceChanged, CancelOrder, OrderClosed, OrderRejected, PlaceOrder, RequestRejected,
                               Withdraw)
from actors.link.link import Links
from exchange.core.reasons import CloseReason, Reason


def sample(registry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels)


def fake_shard(config=None):
    config = config or load_config()
    shard = SimpleNamespace(ledger=SimpleNamespace(accounts={1: None}), orders={}, products={})   # no perpetual desk
    return SimpleNamespace(name="shard:0", config=config, shard=shard, commands=0, pending={},
                           links=Links(config.markets, send=None))


def test_margin_level_distribution_with_a_second_update_replaces_the_first():
    registry = CollectorRegistry()
    distribution = MarginLevelDistribution(margin_keys(["BTC-USDT"]))
    registry.register(distribution)
    distribution.update("all", "cross", [1_020_000, 1_100_000, 1_500_000, 20_000_000])
    assert sample(registry, "exchange_margin_level_bucket", market="all", mode="cross", le="1.0") == 0
    assert sample(registry, "exchange_margin_level_bucket", market="all", mode="cross", le="1.05") == 1
    assert sample(registry, "exchange_margin_level_bucket", market="all", mode="cross", le="1.1") == 2   # <= bound
    assert sample(registry, "exchange_margin_level_bucket", market="all", mode="cross", le="10.0") == 3
    assert sample(registry, "exchange_margin_level_count", market="all", mode="cross") == 4
    assert sample(registry, "exchange_margin_level_sum", market="all", mode="cross") == pytest.approx(23.62)
    distribution.update("all", "cross", [3_000_000])
    assert sample(registry, "exchange_margin_level_count", market="all", mode="cross") == 1
    assert sample(registry, "exchange_margin_level_bucket", market="all", mode="cross", le="2.0") == 0
    assert sample(registry, "exchange_margin_level_count", market="BTC-USDT", mode="isolated") == 0


def test_margin_level_distribution_with_precomputed_counts_of_the_wrong_length_is_refused():
    distribution = MarginLevelDistribution(margin_keys([]))
    with pytest.raises(ValueError):
        distribution.set_counts("all", "cross", [1, 2])
    distribution.set_counts("all", "cross", [0] * len(MARGIN_LEVEL_BUCKETS) + [5], 60.0)
    family = next(distribution.collect())
    assert [s.value for s in family.samples if s.name.endswith("_count")] == [5]


def test_margin_metrics_with_every_configured_market_have_series_at_zero():
    registry = CollectorRegistry()
    margin = MarginMetrics(registry, ["BTC-USDT", "ETH-USDT"])
    for market, mode in (("all", "cross"), ("BTC-USDT", "isolated"), ("ETH-USDT", "isolated")):
        assert sample(registry, "exchange_margin_accounts_at_risk", market=market, mode=mode) == 0
    margin.at_risk("BTC-USDT", "isolated", 3)
    assert sample(registry, "exchange_margin_accounts_at_risk", market="BTC-USDT", mode="isolated") == 3


def test_actor_metrics_with_lending_and_liquidation_bind_every_asset():
    metrics = ActorMetrics("lending", load_config())
    metrics.lending.pool("USDT", 1_000, 250, 250_000, 40_000, 9_000)
    metrics.liquidation.insurance_fund("USDT", 77)
    metrics.liquidation.liquidated("all", "cross")
    r = metrics.registry
    assert sample(r, "exchange_lending_utilization_ratio", asset="USDT") == 0.25
    assert sample(r, "exchange_lending_borrow_rate", asset="USDT") == 0.04
    assert sample(r, "exchange_lending_supplied", asset="BTC") == 0
    assert sample(r, "exchange_insurance_fund_balance", asset="USDT") == 77
    assert sample(r, "exchange_liquidations_total", market="all", mode="cross") == 1
    assert sample(r, "exchange_bad_debt_total", asset="ETH") == 0


def test_shard_metrics_with_a_mixed_batch_count_orders_rejections_and_withdrawals():
    metrics = ShardMetrics(fake_shard())
    rejected_close = OrderClosed("BTC-USDT", 3, 0, 9, 1, int(CloseReason.REJECTED), 5, int(Reason.POST_ONLY_WOULD_TAKE))
    commands = [PlaceOrder(1, 0, 1, "BTC-USDT", 1, 1, 1, 1), PlaceOrder(2, 0, 1, "BTC-USDT", 1, 1, 1, 1),
                PlaceOrder(3, 0, 1, "NOPE", 1, 1, 1, 1), PlaceOrder(4, 0, 1, ["unhashable"], 1, 1, 1, 1),
                CancelOrder(5, 0, 1, "ETH-USDT", 7), Withdraw(6, 0, 1, "USDT", 5), Withdraw(7, 0, 1, "USDT", 10**12)]
    results = [[rejected_close], [OrderRejected(2, 1, int(Reason.INSUFFICIENT_BALANCE))],
               [OrderRejected(3, 1, int(Reason.UNKNOWN_MARKET))], [OrderRejected(4, 1, int(Reason.MALFORMED_COMMAND))],
               [RequestRejected("ETH-USDT", 4, 0, 5, 7, 1, int(Reason.ORDER_NOT_FOUND))],
               [BalanceChanged(6, 0, 1, "USDT", -5, 0, 0)], [OrderRejected(7, 1, int(Reason.INSUFFICIENT_BALANCE))]]
    metrics.record_batch(commands, results, 0.002)
    r = metrics.registry
    assert sample(r, "exchange_orders_total", market="BTC-USDT") == 2
    assert sample(r, "exchange_orders_total", market="other") == 2
    assert sample(r, "exchange_cancels_total", market="ETH-USDT") == 1
    assert sample(r, "exchange_rejections_total", reason="insufficient_balance") == 2
    assert sample(r, "exchange_rejections_total", reason="post_only_would_take") == 1
    assert sample(r, "exchange_rejections_total", reason="order_not_found") == 1
    assert sample(r, "exchange_rejections_total", reason="amend_no_change") == 0
    assert sample(r, "exchange_withdrawals_total", asset="USDT", state="accepted") == 1
    assert sample(r, "exchange_withdrawals_total", asset="USDT", state="rejected") == 1
    assert sample(r, "exchange_handler_seconds_count", handler="execute") == 1
    assert sample(r, "exchange_handler_seconds_bucket", handler="execute", le="0.0025") == 1
    assert sample(r, "exchange_handler_seconds_bucket", handler="execute", le="0.001") == 0
    assert sample(r, "exchange_mailbox_backlog", queue="outbox") == 0
    assert sample(r, "exchange_accounts") == 1


def test_reason_label_with_an_unknown_code_is_the_number():
    assert reason_label(int(Reason.NO_LIQUIDITY)) == "no_liquidity"
    assert reason_label(99_999) == "99999"


def test_shard_metrics_with_metrics_disabled_are_null():
    config = load_config()
    config = dataclasses.replace(config, sections={**config.sections, "metrics": {"enabled": False}})
    metrics = shard_metrics(fake_shard(config))
    assert isinstance(metrics, NullMetrics)
    assert metrics.record_batch([], [], 0.1) is None
    assert metrics.margin.levels("all", "cross", [1]) is None


def test_merge_with_two_sources_labels_each_sample_with_its_actor_and_skips_type_conflicts():
    first, second = CollectorRegistry(), CollectorRegistry()
    Counter("exchange_things", "doc", registry=first).inc(2)
    Counter("exchange_things", "doc", registry=second).inc(3)
    Gauge("exchange_clash", "doc", registry=first).set(1)
    Counter("exchange_clash", "doc", registry=second).inc()
    merged = merge({"a": Source("actor", 1, list(first.collect()), 10.0),
                    "b": Source("actor", 1, list(second.collect()), 10.0),
                    "old": Source("actor", 1, list(second.collect()), 1.0)}, fresh_after=5.0)
    values = {(s.name, s.labels["actor"]): s.value for s in merged["exchange_things"].samples}
    assert values == {("exchange_things_total", "a"): 2, ("exchange_things_total", "b"): 3}
    assert [s.labels["actor"] for s in merged["exchange_clash"].samples] == ["a"]


@pytest.fixture
def metrics_actor():
    actor = MetricsActor(None, port=0)
    yield actor
    actor.stop()


def test_metrics_actor_with_pushes_serves_them_over_http_with_restarts_and_placeholders(metrics_actor):
    shard = ShardMetrics(fake_shard())
    lending = ActorMetrics("lending", load_config())
    lending.lending.pool("USDT", 10, 5, 500_000, 1, 1)
    metrics_actor.push("shard:0", "actor", 111, shard.families())
    metrics_actor.push("shard:0", "actor", 222, shard.families())      # a new process: a restart
    metrics_actor.push("lending", "actor", 5, lending.families())
    host, port = metrics_actor.address()
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    assert 'exchange_actor_restarts_total{actor="shard:0"} 1.0' in text
    assert 'exchange_actor_restarts_total{actor="lending"} 0.0' in text
    assert 'exchange_actor_up{actor="shard:0"} 1.0' in text
    assert 'exchange_rejections_total{actor="shard:0",reason="insufficient_balance"} 0.0' in text
    assert 'exchange_lending_utilization_ratio{actor="lending",asset="USDT"} 0.5' in text
    assert 'exchange_lending_utilization_ratio{asset="USDT"}' not in text             # pushed: no placeholder
    assert 'exchange_insurance_fund_balance{asset="USDT"} 0.0' in text                # nobody pushes it yet
    assert 'exchange_margin_level_count{actor="shard:0",market="all",mode="cross"} 0.0' in text   # the shard's own
    assert text.count("# TYPE exchange_rejections_total counter") == 1


def test_metrics_actor_with_a_taken_port_serves_on_another_one(metrics_actor):
    other = MetricsActor(None, port=metrics_actor.address()[1])
    try:
        assert other.address()[1] not in (0, metrics_actor.address()[1])
    finally:
        other.stop()


def test_weighted_histogram_with_a_batch_matches_prometheus_client_fed_one_by_one():
    weighted, reference = CollectorRegistry(), CollectorRegistry()
    histogram = WeightedHistogram("exchange_latency_seconds", "doc")
    weighted.register(histogram)
    one_by_one = Histogram("exchange_latency_seconds", "doc", buckets=LATENCY_BUCKETS_S, registry=reference)
    for value, count in ((0.002, 500), (0.0000001, 3), (0.5, 1), (42.0, 2)):
        histogram.observe(value, count)
        for _ in range(count):
            one_by_one.observe(value)
    expected = {(s.name, s.labels.get("le")): s.value for f in reference.collect() for s in f.samples}
    got = {(s.name, s.labels.get("le")): s.value for f in weighted.collect() for s in f.samples}
    assert got == pytest.approx(expected)
    assert got[("exchange_latency_seconds_bucket", "+Inf")] == 506


def test_liquidation_metrics_with_cross_and_isolated_books_count_under_their_series():
    metrics = ActorMetrics("liquidator", load_config())
    metrics.liquidation.liquidated("")
    metrics.liquidation.liquidated("all", "cross")
    metrics.liquidation.liquidated("BTC-USDT", "isolated", 2)
    metrics.liquidation.liquidated("NOPE-USDT", "isolated")                 # unknown: ignored, not a crash
    r = metrics.registry
    assert sample(r, "exchange_liquidations_total", market="all", mode="cross") == 2
    assert sample(r, "exchange_liquidations_total", market="BTC-USDT", mode="isolated") == 2
