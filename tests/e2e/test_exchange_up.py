"""End to end: `exchange up --duration 10 --json` as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXCHANGE = Path(sys.executable).parent / "exchange"


def test_exchange_up_with_duration_prints_a_sound_json_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    done = subprocess.run([str(EXCHANGE), "up", "--duration", "10", "--json", "--data", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["conservation_ok"] is True
    assert summary["imbalance"] and not any(summary["imbalance"].values())
    assert summary["orders"] > 100 and summary["trades"] > 0
    assert 8 <= summary["duration_s"] <= 30
    for market in ("BTC-USDT", "ETH-USDT"):
        view = summary["markets"][market]
        assert view["trades"] > 0
        assert float(view["best_bid"]) < float(view["best_ask"])
    assert summary["p99_ms"] >= summary["p50_ms"] > 0
    intruder = summary["intruder"]                          # issue 11: every hostile attempt refused, nothing moved
    assert intruder["attempts"] > 0 and intruder["accepted"] == 0 and intruder["balance_untouched"] is True
    assert set(intruder["refused"]) == {"NOT_PERMITTED", "REQUEST_ID_REUSED", "INVALID_REQUEST_ID",
                                        "INVALID_CLIENT_ORDER_ID"}


def test_exchange_help_documents_every_command():
    out = subprocess.run([str(EXCHANGE), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "up" in out and "loadtest" in out
    for command in ("up", "loadtest", "verify", "chaos", "margin"):
        sub = subprocess.run([str(EXCHANGE), command, "--help"], capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0 and "--json" in sub.stdout
