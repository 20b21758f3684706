"""The scaling benchmark (``ops/bench/scaling.py``) runs end to end on real actors: two
layouts (one market and four, the extra ones synthetic), each conserving every asset,
with the CPU per order, the per-actor rates and the projection beside Ray's own rate."""
from __future__ import annotations

import pytest

from ops.bench.scaling import overlay, run


def test_the_scaling_benchmark_reports_each_layout_and_a_projection(tmp_path):
    result = run([1, 4], [2], orders=2_000, accounts=200, seed=3)
    assert [(r["markets"], r["shards"]) for r in result["rows"]] == [(1, 2), (4, 2)] and result["all_ok"]
    for row in result["rows"]:
        assert row["orders_per_s"] > 0 and row["cpu_us_per_order"] > 0
        assert 0 < row["cpu_busy"] <= 1.1          # the kernel counts CPU time in 10 ms ticks: a short run can
                                                   # read a little over its wall time
        assert row["per_market_per_s"] * row["markets"] == pytest.approx(row["orders_per_s"], abs=row["markets"])
    assert result["rows"][0]["ratio_to_first"] == 1.0 and result["ray_batched_msgs_per_s"] > 0
    nodes = result["projection"]["nodes"]
    assert nodes[2][0] == pytest.approx(2 * nodes[1][0], abs=2) and nodes[1][0] <= nodes[1][1]
    assert result["projection"]["per_market_actor_limit_per_s"] > 0
    assert "[markets.A2-USDT]" in overlay(4, 1) and "[markets.A3-USDT]" not in overlay(4, 1)
    from exchange.config import load_config
    path = tmp_path / "layout.toml"
    path.write_text(overlay(4, 3))
    assert load_config(path).shards == 3 and len(load_config(path).market_list) == 4     # the file says what it runs


