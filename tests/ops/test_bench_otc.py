"""The OTC benchmark (``ops/bench/otc.py``) runs end to end on real actors and reports its
figures beside Ray's idle call from the same run. Correctness only; speed is the
benchmark's to print."""
from __future__ import annotations

from ops.bench.otc import run


def test_the_otc_benchmark_reports_quotes_and_round_trips_beside_the_idle_call():
    result = run(seconds=0.5, concurrency=2, trips=10)
    assert result["quotes"] > 0 and result["quotes_per_s"] > 0 and result["round_trips"] == 10
    assert 0 < result["round_trip_p50_ms"] <= result["round_trip_p99_ms"]
    assert result["ray_idle_call_p50_ms"] > 0 and result["signatures_ok"] is True and result["refused"] == 0
    assert result["round_trip_p50_to_two_idle_calls"] == round(result["round_trip_p50_ms"]
                                                               / (2 * result["ray_idle_call_p50_ms"]), 2)
