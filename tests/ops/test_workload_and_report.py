"""The load test's pieces without Ray: the HDR latency recorder against exact percentiles,
the Zipf draw, the role mix and its parsing (spot, margin, perpetual and OTC roles, and
the mix renormalised without the products a config lacks), and the PNG report drawn from
a result (a real PNG of the expected size, every panel present)."""
from __future__ import annotations

import random
import struct
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from exchange.config import load_config, parse_config
from exchange.messages.records import (CancelOrder, CancelPerpOrder, Deposit, EnableMargin, Fill, OrderBooked,
                                       PlaceMarginOrder, PlaceOrder, PlacePerpOrder, SetPerpLeverage, TransferPerp)
from ops.latency import LatencyRecorder, TimeSeries
from ops.report import write_report
from ops.workload import (DEFAULT_MIX, GTC, IOC, MARGIN_TRADERS, OTC_CLIENTS, PERP_MAKERS, PERP_TAKERS, SPOT_MIX,
                          OtcTrade, WorkloadGenerator, ZipfChoice, parse_mix)

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "config" / "default.toml"


def _client(config):
    return SimpleNamespace(next_request_id=lambda: 1, config=config)


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
    assert parse_mix("maker=2,taker=2") == {"maker": 0.5, "taker": 0.5, "sweeper": 0.0, "canceller": 0.0,
                                            "margin": 0.0, "perp": 0.0, "otc": 0.0}
    assert parse_mix("maker=5,margin=2,perp=2,otc=1") == {"maker": 0.5, "taker": 0.0, "sweeper": 0.0, "canceller": 0.0,
                                                          "margin": 0.2, "perp": 0.2, "otc": 0.1}
    for bad in ("maker=1,trader=1", "maker=0", "maker=-1,taker=2"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_the_generator_sends_every_spot_role_in_proportion_and_requotes_what_rested():
    config = load_config()
    gen = WorkloadGenerator(_client(config), config.market_list, 200, seed=5, zipf=0.8, mix=SPOT_MIX)
    commands = gen.batch(20_000)
    assert sum(gen.sent.values()) == 20_000 and {type(c) for c in commands} == {PlaceOrder}
    for role in ("maker", "sweeper"):
        assert gen.sent[role] / 20_000 == pytest.approx(SPOT_MIX[role], abs=0.02)
    assert gen.sent["canceller"] == 0                                        # nothing rested yet: a taker's turn
    assert gen.sent["taker"] / 20_000 == pytest.approx(SPOT_MIX["taker"] + SPOT_MIX["canceller"], abs=0.02)
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
    assert gen.sent["canceller"] > 0 and gen.acknowledged["maker"] > 0
    again = WorkloadGenerator(_client(config), config.market_list, 200, seed=5, zipf=0.8, mix=SPOT_MIX)
    assert again.batch(20_000) == commands                                     # seeded


def test_the_generator_sends_margin_perpetual_and_otc_flow_in_proportion_near_the_mark():
    config = load_config()
    gen = WorkloadGenerator(_client(config), config.market_list, 200, seed=5, zipf=0.8)     # the default mix
    mark = 500_000                                                           # 50,000 USDT in ticks of 0.1
    gen.marks["BTC-USDT-PERP"] = mark
    commands = gen.batch(20_000)
    for role in ("maker", "sweeper", "margin", "perp", "otc"):
        assert gen.sent[role] / 20_000 == pytest.approx(DEFAULT_MIX[role], rel=0.15), role
    margin = [c for c in commands if type(c) is PlaceMarginOrder]
    assert len(margin) == gen.sent["margin"] and {c.account_id for c in margin} <= set(MARGIN_TRADERS)
    assert {c.market for c in margin} == {"BTC-USDT", "ETH-USDT"}
    assert all(c.auto_borrow and c.auto_repay and not c.isolated for c in margin)
    assert 0.8 < sum(c.tif == IOC for c in margin) / len(margin) < 0.9                 # mostly IOC, some GTC
    perp = [c for c in commands if type(c) is PlacePerpOrder]
    assert len(perp) == gen.sent["perp"] and {c.market for c in perp} == {"BTC-USDT-PERP"}
    assert {c.account_id for c in perp if c.tif == GTC} <= set(PERP_MAKERS)
    assert {c.account_id for c in perp if c.tif == IOC} <= set(PERP_TAKERS)
    assert all(abs(c.price - mark * 10**5) <= mark * 10**5 * 6 // 10_000 for c in perp)   # within 6 bps of the mark
    otc = [c for c in commands if type(c) is OtcTrade]
    assert len(otc) == gen.sent["otc"] and {c.account_id for c in otc} <= set(OTC_CLIENTS)
    assert {c.market for c in otc} == {"OTC BTC-USDT", "OTC ETH-USDT"} and {c.side for c in otc} == {"buy", "sell"}
    btc = [c.quantity for c in otc if c.pair == "BTC-USDT"]
    assert 1.1 * 10**8 <= min(btc) and max(btc) <= 10 * 10**8                 # 55,000-500,000 USDT: the desk's range
    quotes = [c for c in perp if c.tif == GTC][:40]
    gen.observe(quotes, [[OrderBooked(c.market, i, 0, 5_000 + i, c.account_id, c.price, c.quantity)]
                         for i, c in enumerate(quotes)])
    gen.observe(otc[:2], [{"ok": True, "state": "settled"}, {"ok": False, "reason": "OTC_INVENTORY_SHORT"}])
    assert gen.acknowledged["otc"] == 1 and gen.refused == {"OTC_INVENTORY_SHORT": 1}
    booked = {(c.account_id, 5_000 + i) for i, c in enumerate(quotes)}
    requotes = [c for c in gen.batch(5_000) if type(c) is CancelPerpOrder]    # the makers requote their own
    assert requotes and {(c.account_id, c.order_id) for c in requotes} <= booked
    again = WorkloadGenerator(_client(config), config.market_list, 200, seed=5, zipf=0.8)
    again.marks["BTC-USDT-PERP"] = mark
    assert again.batch(20_000) == commands                                     # seeded
    setup = gen.setup_commands()
    assert setup == again.setup_commands()                                    # fixed request ids: idempotent
    desk = {c.asset: c.amount for c in setup if type(c) is Deposit and c.account_id == 9_000_001}
    assert desk["BTC"] == 353 * 10**8 and desk["ETH"] == 6_000 * 10**8        # mid-way in [otc.inventory.*]
    assert {(c.user_level, c.leverage_tier) for c in setup if type(c) is EnableMargin} == {("L2", "3x")}
    assert {c.account_id for c in setup if type(c) is TransferPerp} == {*PERP_MAKERS, *PERP_TAKERS}
    assert {c.leverage for c in setup if type(c) is SetPerpLeverage} == {5}


def test_a_config_without_perpetuals_or_an_otc_desk_renormalises_the_mix_and_a_perp_turn_waits_for_a_mark():
    raw = tomllib.loads(DEFAULT_TOML.read_text())
    for section in ("perp", "otc", "risk"):
        raw.pop(section)
    config = parse_config(raw)
    gen = WorkloadGenerator(_client(config), config.market_list, 200, seed=5)
    assert gen.unavailable == ["perp", "otc"] and "otc" not in gen.roles
    assert gen.mix["margin"] == pytest.approx(0.05 / 0.95) and sum(gen.mix.values()) == pytest.approx(1)
    kinds = {type(c) for c in gen.batch(5_000)}
    assert kinds == {PlaceOrder, PlaceMarginOrder}
    whole = load_config()
    early = WorkloadGenerator(_client(whole), whole.market_list, 200, seed=5, mix=parse_mix("perp=1"))
    assert {type(c) for c in early.batch(100)} == {PlaceOrder} and early.sent["taker"] == 100   # no mark yet
    with pytest.raises(ValueError):
        WorkloadGenerator(_client(config), config.market_list, 200, seed=5, mix=parse_mix("otc=1"))


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
