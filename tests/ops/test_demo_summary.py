"""The live summary line of ``exchange up`` (``ops/demo.py: format_summary``): the HTTP bot's part."""
from __future__ import annotations

from ops.demo import format_summary

GATEWAY = {"url": "http://127.0.0.1:8080", "requests": 40, "answered": 40,
           "by_group": {"order": 20, "account": 8, "history": 4, "market": 4, "userStream": 1, "perp": 1,
                        "transparency": 2},
           "orders": 9, "cancels": 9, "refused": {}, "used_weight": 321,
           "user_stream": {"events": {"executionReport": 21, "outboundAccountPosition": 20, "balanceUpdate": 2},
                           "executions": {"NEW": 10, "CANCELED": 9, "TRADE": 2}},
           "ticker": {"symbol": "BTCUSDT", "last": "50100.000000", "change_pct": "0.250", "volume": "12.50000000",
                      "count": 1234},
           "history": {"orders": {"CANCELED": 9, "FILLED": 2}, "kinds": {"LIMIT/GTC": 9, "MARKET/GTC": 2},
                       "trades": 2},
           "premium_index": {}, "transparency": {"url": "http://127.0.0.1:8080/transparency", "page": 200}}


def summary(gateway: dict) -> dict:
    return {"uptime_s": 5.0, "orders_per_s": 100, "trades_per_s": 10, "p50_ms": 1.0, "p99_ms": 2.0,
            "markets": {}, "gateway": gateway, "conservation_ok": True}


def test_summary_line_with_the_http_bot_shows_its_groups_stream_history_ticker_and_transparency_page():
    line = format_summary(summary(GATEWAY))
    assert "gateway 40/40 answered (order=20,account=8,history=4,market=4,userStream=1,perp=1,transparency=2)" in line
    assert "user stream executionReport=21,outboundAccountPosition=20,balanceUpdate=2" in line
    assert "allOrders CANCELED=9,FILLED=2 (LIMIT/GTC=9,MARKET/GTC=2) myTrades 2" in line
    assert "BTCUSDT 24h last 50100.000000 +0.250% vol 12.50000000 trades 1234" in line
    assert "transparency http://127.0.0.1:8080/transparency" in line


def test_summary_line_before_the_first_ticker_read_and_without_a_gateway_leaves_those_parts_out():
    assert "24h" not in format_summary(summary({**GATEWAY, "ticker": {}}))
    assert "-1.500%" in format_summary(summary({**GATEWAY, "ticker": {**GATEWAY["ticker"], "change_pct": "-1.500"}}))
    assert "gateway" not in format_summary(summary({}))
