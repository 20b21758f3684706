"""End to end: `exchange up --duration 10 --json` as a user runs it (its gateway's transparency page read
while it runs)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

EXCHANGE = Path(sys.executable).parent / "exchange"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_while_running(process: subprocess.Popen, url: str) -> int | None:
    """The status ``url`` answers once the gateway serves (None if the process ends first)."""
    while process.poll() is None:
        try:
            return requests.get(url, timeout=5).status_code
        except requests.ConnectionError:
            time.sleep(0.5)
    return None


def test_exchange_up_with_duration_prints_a_sound_json_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    port = free_port()
    up = subprocess.Popen([str(EXCHANGE), "up", "--duration", "10", "--json", "--data", str(tmp_path / "data"),
                           "--gateway", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=tmp_path)
    try:
        page = status_while_running(up, f"http://127.0.0.1:{port}/transparency")
        stdout, stderr = up.communicate(timeout=240)
    finally:
        up.kill()
    assert up.returncode == 0, stderr[-3000:]
    assert page == 200                                      # the transparency page, served while it runs
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["conservation_ok"] is True
    assert summary["imbalance"] and not any(summary["imbalance"].values())
    assert summary["orders"] > 100 and summary["trades"] > 0
    assert 8 <= summary["duration_s"] <= 30
    gateway = summary["gateway"]                            # issue 18: a bot trading over HTTP, all answered
    assert gateway["url"].startswith("http://127.0.0.1:") and gateway["orders"] > 0
    assert gateway["cancels"] == gateway["orders"] and gateway["answered"] == gateway["requests"]
    assert gateway["refused"] == {} and gateway["used_weight"] > 0
    assert gateway["url"] == f"http://127.0.0.1:{port}" and sum(gateway["by_group"].values()) == gateway["requests"]
    for group in ("order", "account", "market", "history", "userStream", "perp", "transparency"):
        assert gateway["by_group"].get(group, 0) > 0, group
    events = gateway["user_stream"]["events"]               # the user-data stream by listen key
    assert events.get("executionReport", 0) > 0 and events.get("outboundAccountPosition", 0) > 0
    assert events.get("balanceUpdate", 0) == 2              # the perpetual wallet, there and back
    assert gateway["user_stream"]["executions"].get("CANCELED", 0) > 0
    ticker = gateway["ticker"]                              # GET /api/v3/ticker/24hr
    assert ticker["symbol"] == "BTCUSDT" and ticker["count"] > 0 and float(ticker["last"]) > 0
    assert gateway["history"]["orders"].get("CANCELED", 0) > 0      # allOrders: this run's, closed
    assert {"LIMIT/GTC", "MARKET/GTC"} <= set(gateway["history"]["kinds"])       # each as placed
    assert gateway["history"]["trades"] > 0 and gateway["user_stream"]["executions"].get("TRADE", 0) > 0
    assert gateway["premium_index"]["symbol"] == "BTCUSDTPERP" and float(gateway["premium_index"]["markPrice"]) > 0
    assert gateway["transparency"] == {"url": f"http://127.0.0.1:{port}/transparency", "page": 200,
                                       "chain_verified": True}
    keys = json.loads(subprocess.run([str(EXCHANGE), "keys", "list", "--json", "--keys",
                                      str(tmp_path / "data" / "gateway")], capture_output=True, text=True,
                                     timeout=60).stdout)["keys"]
    assert [k["revoked"] for k in keys] == [True]           # the durable store; the bot's key revoked at stop
    cluster = summary["cluster"]                            # issue 17: where it runs, every actor up
    assert cluster["actors_up"] == cluster["actors"] >= 12 and cluster["down"] == [] and cluster["nodes"] == 1
    assert cluster["shards"] == 2
    for market in ("BTC-USDT", "ETH-USDT"):
        view = summary["markets"][market]
        assert view["trades"] > 0
        assert float(view["best_bid"]) < float(view["best_ask"])
    assert summary["p99_ms"] >= summary["p50_ms"] > 0
    perp = summary["perpetuals"]["BTC-USDT-PERP"]                  # issue 14: the perpetual market trades
    assert float(perp["mark"]) > 0 and perp["next_funding_s"] is not None
    assert perp["liquidations"] >= 1 and float(perp["fund"]) + 50 >= 1_000_000   # the gambler's, closed better
                                                    # than bankruptcy: a surplus to the fund (less the compensation)
    assert float(perp["fee_share"]) > 0                              # the fees' share, swept every 5 s
    assert summary["markets"]["BTC-USDT-PERP"]["trades"] > 0
    intruder = summary["intruder"]                          # issue 11: every hostile attempt refused, nothing moved
    assert intruder["attempts"] > 0 and intruder["accepted"] == 0 and intruder["balance_untouched"] is True
    assert set(intruder["refused"]) == {"NOT_PERMITTED", "REQUEST_ID_REUSED", "INVALID_REQUEST_ID",
                                        "INVALID_CLIENT_ORDER_ID"}
    risk = summary["risk"]                                  # issue 15: the rulebook at work, every chain verifying
    assert len(risk["rulebook"]) == 12 and risk["audit_ok"] is True and risk["audit_entries"] > 0
    assert risk["ladder"].get("warned", 0) >= 1                      # the churner met the cancel ladder
    assert risk["refused"].get("R-5.2.2.3-freeze", 0) >= 1           # the frozen account's orders, citing the rule
    assert risk["refused"].get("R-5.2.2.2-market-mode", 0) >= 1      # ETH-USDT halted on round 10
    assert risk["alerts"].get("R-4.2.1-wash-trade|none", 0) >= 1     # the linked pair traded with each other
    assert risk["withdrawal_1500_btc"] in ("queued", "approved", "sent", "confirmed")
    assert risk["compensated"] == "50 USDT"                           # round 6: out of the perpetual's fund
    assert risk["perp_maintenance"] in ("raised to 0.01", "configured")   # raised on round 5, restored on 12
    otc = summary["otc"]                                    # issue 16: the OTC desk's signed quotes
    assert otc["quotes"] > 0 and otc["accepted"] > 0 and otc["signatures_ok"] is True
    assert otc["refused"].get("OTC_BELOW_MINIMUM", 0) >= 1           # a small ask pointed to the order book
    assert otc["fiat_paid"] >= 1 and otc["third_party_refused"] >= 1 and otc["refunds"] >= otc["third_party_refused"]
    assert set(otc["last_quote"]["breakdown"]) == {"size", "volatility", "liquidity", "payment"}
    assert otc["settled"] >= otc["fiat_paid"] and float(otc["income"]) > 0       # settled, the spread earned
    assert otc["credit_paid"] >= 1 and otc["approved"] == 1 and otc["hedges"] >= 1   # T+1, cold wallet, hedge


def test_exchange_help_documents_every_command():
    out = subprocess.run([str(EXCHANGE), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "up" in out and "loadtest" in out
    for command in ("up", "loadtest", "verify", "chaos", "margin", "status", "audit insurance"):
        sub = subprocess.run([str(EXCHANGE), *command.split(), "--help"], capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0 and "--json" in sub.stdout


def test_loadtest_sweep_reports_each_step_the_knee_and_its_baselines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    done = subprocess.run([str(EXCHANGE), "loadtest", "--sweep", "--markets", "1", "--accounts", "100",
                           "--orders", "2000", "--sweep-steps", "0.1,0.5", "--step-seconds", "0.5",
                           "--knee-p99-ms", "100000", "--no-progress", "--json"],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mode"] == "sweep" and result["conservation_ok"] is True
    assert result["capacity_orders_per_s"] > 0 and result["idle_round_trip_p50_ms"] > 0
    assert result["ray_batched_msgs_per_s"] > 0
    assert [s["fraction"] for s in result["steps"]] == [0.1, 0.5]
    for step in result["steps"]:
        assert step["orders"] >= 200 and step["p999_ms"] >= step["p99_ms"] >= step["p50_ms"] > 0
    assert result["knee_fraction"] == 0.5                  # every step is within a bound this loose
    assert result["p99_to_idle_p50"] > 0 and result["p99_to_idle_p50_at_fraction"] == 0.1   # nearest 30%
    per_market = result["per_market"]                                        # the capacity run, per market:
    assert set(per_market) == {"BTC-USDT", "BTC-USDT-PERP", "OTC BTC-USDT"}   # spot and margin, perp, the desk
    assert sum(m["orders"] for m in per_market.values()) == 2000
    workload = result["workload"]                                            # the whole venue, by default
    assert sum(workload["sent"].values()) >= 2000 and workload["zipf"] == 0.6 and workload["unavailable"] == []
    for role in ("maker", "taker", "margin", "perp", "otc"):
        assert workload["sent"][role] > 0 and workload["acknowledged"][role] > 0, (role, workload)
    report = tmp_path / "loadtest-report.png"                                # the picture, by default
    assert result["report"] == "loadtest-report.png" and report.read_bytes()[:4] == b"\x89PNG"


def test_loadtest_with_a_bad_workload_mix_is_refused_before_anything_starts():
    done = subprocess.run([str(EXCHANGE), "loadtest", "--mix", "maker=1,trader=1"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "unknown role 'trader'" in done.stderr


def test_loadtest_with_many_clients_reports_their_orders_latency_and_baselines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    done = subprocess.run([str(EXCHANGE), "loadtest", "--clients", "60", "--drivers", "2", "--seconds", "2",
                           "--markets", "2", "--accounts", "100", "--no-progress", "--json"],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mode"] == "clients" and result["conservation_ok"] is True
    assert result["clients"] == 60 and result["drivers"] == 2
    assert 60 <= result["orders_in_flight_max"] <= 4 * 60           # 1-4 orders in flight per client
    assert result["orders"] > 60 and result["orders_per_s"] > 0
    assert result["p999_ms"] >= result["p99_ms"] >= result["p50_ms"] > 0
    assert result["idle_round_trip_p50_ms"] > 0 and result["p99_to_idle_p50"] > 0
    assert result["ray_batched_msgs_per_s"] > 0 and result["e2e_to_ray_ratio"] > 0


def test_loadtest_with_an_impossible_many_clients_option_is_refused_before_anything_starts():
    for option, value, says in (("--drivers", "0", "below the minimum 1"), ("--clients", "-3", "below the minimum 0"),
                                ("--seconds", "x", "not a number")):
        done = subprocess.run([str(EXCHANGE), "loadtest", option, value], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and says in done.stderr, (option, done.stderr[-500:])
