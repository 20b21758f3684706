"""The flash-crash benchmark (``ops/bench/liquidation.py``) at a small size, in-process and on
real Ray actors: every long it opens in-process is liquidated (the book, the fund, ADL); on
Ray (where pairs may cross-match) nothing due is left; both runs conserve every unit, and
every figure comes with its same-run baseline and ratio.
Correctness only; speed is the benchmark's to print."""
from __future__ import annotations

import json

from ops.bench.liquidation import main


def test_the_flash_crash_benchmark_liquidates_every_long_and_prints_its_baselines(capsys):
    assert main(["--positions", "120", "--marks", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["liquidations_engine"] == 60 and result["adl_rounds_engine"] > 0
    assert result["liquidations"] >= 50 and result["due_left"] == 0 and result["conservation_ok"]
    for figure, baseline in (("liquidations_per_s", "liquidations_per_s_engine"),
                             ("mark_to_margin_p99_ms", "ray_idle_call_p50_ms"),
                             ("mark_to_margin_p99_ms", "mark_to_margin_p99_ms_engine")):
        assert result[figure] > 0 and result[baseline] > 0
    assert result["liquidations_per_s_ratio_to_engine"] > 0 and result["mark_to_margin_p99_ratio_to_idle_call"] > 0
