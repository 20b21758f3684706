"""The load test's pieces without Ray: the HDR latency recorder against exact percentiles,
the Zipf draw, the role mix and its parsing, and the PNG report drawn from a result (a
real PNG of the expected size, every panel present)."""
from __future__ import annotations

import random
import struct
from types import SimpleNamespace

import pytest

from exchange.config import load_config
from exchange.messages.records import CancelOrder, Fill, OrderBooked, PlaceOrder
from ops.workload import GTC, IOC
from ops.latency import LatencyRecorder, TimeSeries
from ops.report import write_report
from ops.workload import DEFAULT_MIX, WorkloadGenerator, ZipfChoice, parse_mix


def test_the_hdr_recorder_reports_percentiles_within_its_precision():
    rng = random.Random(7)
    values = [rng.expovariate(1 / 0.004) for _ in range(20_000)]          # seconds, mean 4 ms
    recorder = LatencyRecorder()
    recorder.extend(values)
    exact = sorted(values)
    for point, key in ((0.5, "p50_ms"), (0.99, "p99_ms"), (0.999, "p999_ms")):
        expected = exact[int(point * len(exact))] * 1000
        assert recorder.percentiles()[key] == pytest.approx(expected, rel=0.01, abs=0.002)
    assert recorder.count == 20_000
    merged = LatencyRecorder()
    merged.add(0.001, 10)
    merged.merge(recorder)
    assert merged.count == 20_010 and recorder.drain().count == 20_000 and recorder.count == 0
    curve = merged.distribution()
    assert curve[0][0] == 0 and curve[-1][0] == pytest.approx(99.999) and all(a[1] <= b[1] for a, b in zip(curve, curve[1:]))


def test_the_time_series_keeps_a_count_and_percentiles_per_second():
    series = TimeSeries(100.0)
    series.add(100.2, 0.001)
    series.add(100.9, 0.003, 3)
    series.add(102.5, 0.010)
    rows = series.rows()
    assert [(r["t"], r["orders"]) for r in rows] == [(0, 4), (2, 1)] and rows[1]["p99_ms"] == pytest.approx(10, rel=0.01)


def test_a_zipf_draw_favours_the_first_in_proportion():
    draw = ZipfChoice(10, 1.0, random.Random(3))
    counts = [0] * 10
    for _ in range(100_000):
        counts[draw.draw()] += 1
    assert counts[0] / counts[1] == pytest.approx(2.0, rel=0.05) and counts[0] / counts[9] == pytest.approx(10, rel=0.15)
    uniform = ZipfChoice(4, 0.0, random.Random(3))
    assert {uniform.draw() for _ in range(200)} == {0, 1, 2, 3}


def test_a_mix_is_parsed_and_normalised_and_a_bad_one_refused():
    assert parse_mix("maker=2,taker=2") == {"maker": 0.5, "taker": 0.5, "sweeper": 0.0, "canceller": 0.0}
    for bad in ("maker=1,trader=1", "maker=0", "maker=-1,taker=2"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_the_generator_sends_every_role_in_proportion_and_requotes_what_rested():
    config = load_config()
    client = SimpleNamespace(next_request_id=lambda: 1)
    gen = WorkloadGenerator(client, config.market_list, 200, seed=5, zipf=0.8, mix=DEFAULT_MIX)
    commands = gen.batch(20_000)
    assert sum(gen.sent.values()) == 20_000
    for role, weight in DEFAULT_MIX.items():
        assert gen.sent[role] / 20_000 == pytest.approx(weight, abs=0.02)
    assert gen.makers == 2                                                   # 1% of 200
    placed = [c for c in commands if type(c) is PlaceOrder]
    quoting = {c.account_id for c in placed if c.tif == GTC}
    taking = [c.account_id for c in placed if c.tif == IOC]
    assert quoting == {1, 2} and min(taking) == 3                            # makers quote, the others take
    assert taking.count(3) > 4 * taking.count(150)                           # Zipf: the first is the busiest
    booked = [(c, [OrderBooked(c.market, i, 0, 1000 + i, c.account_id, c.price, c.quantity)])
              for i, c in enumerate(placed[:60])]
    gen.observe([c for c, _ in booked], [e for _, e in booked])
    first = booked[0][0]
    filled = Fill(first.market, 1, 0, first.price, first.quantity, 9, 3, 1, 1000, first.account_id, 0, 0)
    gen.observe([first], [[filled]])                                         # a taker filled the first one
    cancels = [c for c in gen.batch(4_000) if type(c) is CancelOrder]
    assert cancels and all(c.order_id >= 1001 for c in cancels)               # requotes and cancels, never
    assert len({c.order_id for c in cancels}) == len(cancels)                 # of a filled order, never twice
    again = WorkloadGenerator(client, config.market_list, 200, seed=5, zipf=0.8, mix=DEFAULT_MIX)
    assert again.batch(20_000) == commands                                     # seeded


def test_the_report_is_a_png_with_every_panel(tmp_path):
    recorder = LatencyRecorder()
    recorder.extend([0.001 * (1 + i % 50) for i in range(5_000)])
    series = TimeSeries(0.0)
    for t in range(10):
        series.add(t + 0.5, 0.002 + t / 1000, 500)
    result = {"mode": "sweep", "orders": 5000, "capacity_orders_per_s": 9000, **recorder.percentiles(),
              "distribution": recorder.distribution(), "timeline": series.rows(),
              "per_market": {"BTC-USDT": {"orders": 3000, "orders_per_s": 600, "p50_ms": 2.0, "p99_ms": 9.0},
                             "ETH-USDT": {"orders": 2000, "orders_per_s": 400, "p50_ms": 2.5, "p99_ms": 11.0}},
              "steps": [{"offered_per_s": 900 * k, "p50_ms": 1.0 * k, "p99_ms": 3.0 * k} for k in range(1, 6)],
              "knee_p99_ms_bound": 10.0, "knee_orders_per_s": 2700, "ray_batched_msgs_per_s": 100_000,
              "conservation_ok": True, "chaos": {"kills": 3, "lost": 0}}
    path = write_report(str(tmp_path / "report.png"), result)
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1540, 990) and len(data) > 50_000            # 14 x 9 in at 110 dpi, drawn
