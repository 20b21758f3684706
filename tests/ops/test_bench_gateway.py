"""The gateway benchmark (``ops/bench/gateway.py``) runs end to end: client processes over
HTTP and the Python client handle on real actors, every request answered, each figure
beside its baseline; with the gateway in the benchmark's process and apart
(``exchange gateway --processes 2``). Correctness only; speed is the benchmark's to print."""
from __future__ import annotations

import pytest

from ops.bench.gateway import run


@pytest.mark.parametrize("gateways", [0, 2])       # in the benchmark's process; apart, two processes on one port
def test_the_gateway_benchmark_reports_http_beside_the_client_handle(gateways):
    result = run(seconds=1.0, processes=1, concurrency=2, gateways=gateways)
    assert result["http_requests"] > 10 and result["handle_requests"] > 10
    assert result["http_refused"] == 0 and result["handle_refused"] == 0
    assert 0 < result["http_p50_ms"] <= result["http_p99_ms"] and 0 < result["handle_p50_ms"] <= result["handle_p99_ms"]
    assert result["http_to_handle_rate"] == round(result["http_requests_per_s"] / result["handle_requests_per_s"], 3) \
        or abs(result["http_to_handle_rate"] - result["http_requests_per_s"] / result["handle_requests_per_s"]) < 0.01
    assert result["ray_idle_call_p50_ms"] > 0
