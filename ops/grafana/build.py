"""Grafana dashboards of the exchange, written as data and rendered to JSON.

    python ops/grafana/build.py          # rewrite ops/grafana/dashboards/*.json

This file is the source; the JSON files are what Grafana's file provider
loads (``ops/grafana/provisioning``). A test renders the dashboards again and
compares them with the committed JSON, and another evaluates every query
against a real Prometheus scraping a running exchange.

Template variables are ``$market`` and ``$asset``; rates use
``$__rate_interval``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "exchange-prometheus"}
OUT = Path(__file__).resolve().parent / "dashboards"
RATE = "$__rate_interval"


def q(expr: str, legend: str = "") -> dict:
    return {"expr": expr, "legend": legend}


def panel(title: str, unit: str, *queries: dict, kind: str = "timeseries", description: str = "") -> dict:
    return {"title": title, "unit": unit, "queries": list(queries), "kind": kind, "description": description}


def text(title: str, content: str) -> dict:
    return {"title": title, "kind": "text", "content": content}


def quantiles(metric: str, by: str = "", matcher: str = "") -> list[dict]:
    group = f"{by}, le" if by else "le"
    legend = "{{" + by + "}} " if by and "," not in by else ""
    return [q(f"histogram_quantile({p}, sum by ({group}) (rate({metric}_bucket{matcher}[{RATE}])))",
              f"{legend}p{int(p * 100)}") for p in (0.5, 0.99)]


def variable(name: str, metric: str, label: str) -> dict:
    query = f"label_values({metric}, {label})"
    return {"name": name, "label": name, "type": "query", "datasource": DATASOURCE, "refresh": 2,
            "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
            "includeAll": False, "multi": False, "sort": 1}


M = '{market="$market"}'
A = '{asset="$asset"}'
DASHBOARDS = {
    "overview": ("Exchange: overview", [], [
        panel("Orders, cancels, amends /s", "ops",
              q(f"sum(rate(exchange_orders_total[{RATE}]))", "orders"),
              q(f"sum(rate(exchange_cancels_total[{RATE}]))", "cancels"),
              q(f"sum(rate(exchange_amends_total[{RATE}]))", "amends")),
        panel("Trades /s by market", "ops", q(f"sum by (market) (rate(exchange_trades_total[{RATE}]))",
                                               "{{market}}")),
        panel("End-to-end latency (client send to acknowledgement)", "s",
              *quantiles("exchange_order_latency_seconds")),
        panel("Rejections /s, top reasons", "ops",
              q(f"topk(5, sum by (reason) (rate(exchange_rejections_total[{RATE}])))", "{{reason}}")),
        panel("Volume /s by market (base units)", "short",
              q(f"sum by (market) (rate(exchange_volume_base_total[{RATE}]))", "{{market}}")),
        panel("Withdrawals /s by state", "ops",
              q(f"sum by (state) (rate(exchange_withdrawals_total[{RATE}]))", "{{state}}")),
        panel("Actors up", "short", q("exchange_actor_up", "{{actor}}")),
        panel("Actor restarts (15 min)", "short", q("increase(exchange_actor_restarts_total[15m])", "{{actor}}")),
        panel("CPU by actor", "percentunit", q(f"rate(exchange_actor_cpu_seconds_total[{RATE}])", "{{actor}}")),
        panel("Mailbox backlog by actor", "short", q("sum by (actor) (exchange_mailbox_backlog)", "{{actor}}")),
    ]),
    "market": ("Exchange: per market", [variable("market", "exchange_market_sequence", "market")], [
        panel("Best bid / ask and last trade", "currencyUSD", q(f"exchange_book_best_price{M}", "{{side}}"),
              q(f"exchange_last_price{M}", "last")),
        panel("Spread (bps)", "short", q(f"exchange_book_spread_bps{M}", "spread")),
        panel("Depth, best 10 levels (base units)", "short", q(f"exchange_book_depth{M}", "{{side}}")),
        panel("Resting orders", "short", q(f"exchange_book_resting_orders{M}", "resting")),
        panel("Orders, cancels, amends /s", "ops",
              q(f"sum(rate(exchange_orders_total{M}[{RATE}]))", "orders"),
              q(f"sum(rate(exchange_cancels_total{M}[{RATE}]))", "cancels"),
              q(f"sum(rate(exchange_amends_total{M}[{RATE}]))", "amends")),
        panel("Trades /s and volume /s (base units)", "short",
              q(f"sum(rate(exchange_trades_total{M}[{RATE}]))", "trades"),
              q(f"sum(rate(exchange_volume_base_total{M}[{RATE}]))", "volume")),
        panel("Sequence advance /s", "ops", q(f"deriv(exchange_market_sequence{M}[{RATE}])", "events")),
        panel("Market actor: submit handling", "s",
              *quantiles("exchange_handler_seconds", matcher='{actor="market:$market"}')),
        panel("Requests per submit call", "short",
              q(f'sum(rate(exchange_batch_requests_sum{{actor="market:$market"}}[{RATE}])) / '
                f'sum(rate(exchange_batch_requests_count{{actor="market:$market"}}[{RATE}]))', "requests/call")),
        panel("Queued pushes to shards", "short",
              q('exchange_mailbox_backlog{actor="market:$market"}', "{{queue}}")),
    ]),
    "margin": ("Exchange: margin and liquidations", [], [
        panel("Margin level distribution (accounts per bucket, now)", "short",
              q("sum by (le) (exchange_margin_level_bucket)", "<= {{le}}"), kind="bargauge"),
        panel("Median and 10th-percentile margin level", "percentunit",
              q("histogram_quantile(0.5, sum by (market, mode, le) (exchange_margin_level_bucket))",
                "p50 {{mode}} {{market}}"),
              q("histogram_quantile(0.1, sum by (market, mode, le) (exchange_margin_level_bucket))",
                "p10 {{mode}} {{market}}")),
        panel("Accounts with margin debt", "short",
              q("sum by (market, mode) (exchange_margin_level_count)", "{{mode}} {{market}}")),
        panel("Accounts at risk (between warning and liquidation lines)", "short",
              q("sum by (market, mode) (exchange_margin_accounts_at_risk)", "{{mode}} {{market}}")),
        panel("Liquidations (5 min)", "short",
              q("sum by (market, mode) (increase(exchange_liquidations_total[5m]))", "{{mode}} {{market}}")),
        panel("Liquidations pending", "short", q("sum by (mode) (exchange_liquidations_pending)", "{{mode}}")),
        panel("Bad debt (1 h, minor units)", "short",
              q("sum by (asset) (increase(exchange_bad_debt_total[1h]))", "{{asset}}")),
        panel("Insurance fund (minor units)", "short",
              q("sum by (asset) (exchange_insurance_fund_balance)", "{{asset}}")),
        panel("Insurance fund change (1 h, minor units)", "short",
              q("sum by (asset) (delta(exchange_insurance_fund_balance[1h]))", "{{asset}}")),
        text("Perpetuals", "Funding, marks, open interest, the perpetual insurance funds and ADL are on the "
                           "perpetuals dashboard."),
    ]),
    "perp": ("Exchange: perpetuals", [], [
        panel("Mark and index price", "currencyUSD", q("exchange_perp_mark_price", "mark {{market}}"),
              q("exchange_perp_index_price", "index {{market}}")),
        panel("Mark - index (bps)", "short", q("exchange_perp_basis_bps", "{{market}}")),
        panel("Funding rate (last interval)", "percentunit", q("exchange_perp_funding_rate", "{{market}}")),
        panel("Time to next funding", "s", q("exchange_perp_next_funding_seconds", "{{market}}")),
        panel("Open interest (base units)", "short", q("sum by (market) (exchange_perp_open_interest)", "{{market}}")),
        panel("Open positions", "short", q("sum by (market) (exchange_perp_positions)", "{{market}}")),
        panel("Positions near liquidation", "short",
              q("sum by (scope, zone) (exchange_perp_positions_at_risk)", "{{zone}} {{scope}}")),
        panel("Liquidations in progress", "short", q("sum(exchange_perp_liquidations_open)", "on the shards"),
              q("exchange_perp_liquidations_running", "on the liquidator")),
        panel("Liquidations finished (per minute)", "short",
              q("sum(increase(exchange_perp_liquidations_total[1m]))", "finished")),
        panel("Insurance fund (quote units)", "short", q("exchange_perp_insurance_fund", "{{market}}")),
        panel("Insurance fund flows (1 h, quote units)", "short",
              q("sum by (market, kind) (increase(exchange_perp_fund_flows_total[1h]))", "{{kind}} {{market}}")),
        panel("Auto-deleveraging rounds (1 h)", "short",
              q("sum by (market) (increase(exchange_perp_adl_events_total[1h]))", "{{market}}")),
    ]),
    "lending": ("Exchange: lending", [variable("asset", "exchange_lending_supplied", "asset")], [
        panel("Supplied and borrowed (minor units)", "short", q(f"sum(exchange_lending_supplied{A})", "supplied"),
              q(f"sum(exchange_lending_borrowed{A})", "borrowed")),
        panel("Utilization", "percentunit", q(f"max(exchange_lending_utilization_ratio{A})", "utilization")),
        panel("Rates per year", "percentunit", q(f"max(exchange_lending_borrow_rate{A})", "borrow"),
              q(f"max(exchange_lending_supply_rate{A})", "supply")),
        panel("Utilization, every asset", "percentunit",
              q("max by (asset) (exchange_lending_utilization_ratio)", "{{asset}}")),
        panel("Borrow rate, every asset", "percentunit",
              q("max by (asset) (exchange_lending_borrow_rate)", "{{asset}}")),
    ]),
    "durability": ("Exchange: durability", [], [
        panel("Journal commit latency", "s", *quantiles("exchange_journal_commit_seconds", by="actor")),
        panel("Journal commits /s", "ops",
              q(f"sum by (actor) (rate(exchange_journal_commit_seconds_count[{RATE}]))", "{{actor}}")),
        panel("Commands since last snapshot", "short",
              q("exchange_journal_since_snapshot_commands", "{{actor}}")),
        panel("Last snapshot duration", "s", q("exchange_snapshot_duration_seconds", "{{actor}}")),
        panel("Last snapshot size", "bytes", q("exchange_snapshot_size_bytes", "{{actor}}")),
        panel("Storage used (STORAGE_FULL refusals near 98%)", "percentunit",
              q("exchange_storage_used_ratio", "{{actor}}"), q("exchange_storage_full", "{{actor}} full")),
        panel("Recovery time at last start", "s", q("exchange_actor_recovery_seconds", "{{actor}}")),
        panel("Journal records replayed at last start", "short",
              q("exchange_actor_recovery_replayed_records", "{{actor}}")),
        panel("Uptime", "s", q("time() - exchange_actor_start_time_seconds", "{{actor}}")),
        panel("Restarts (1 h)", "short", q("increase(exchange_actor_restarts_total[1h])", "{{actor}}")),
        panel("GC policy: longest pause", "s", q("exchange_gc_pause_max_seconds", "{{actor}}")),
        panel("Handler latency p99", "s",
              q(f"histogram_quantile(0.99, sum by (actor, handler, le) (rate(exchange_handler_seconds_bucket[{RATE}])))",
                "{{actor}} {{handler}}")),
    ]),
    "risk": ("Exchange: risk", [], [
        panel("Risk rejections /s", "ops",
              q(f'sum by (reason) (rate(exchange_rejections_total{{reason=~"insufficient.*|.*margin.*|.*borrow.*|'
                f'.*leverage.*|.*reduce.*"}}[{RATE}]))', "{{reason}}")),
        panel("Rejected share of commands", "percentunit",
              q(f"sum(rate(exchange_rejections_total[{RATE}])) / sum(rate(exchange_commands_total[{RATE}]))",
                "rejected")),
        panel("Withdrawals rejected share", "percentunit",
              q(f'sum(rate(exchange_withdrawals_total{{state="rejected"}}[{RATE}])) / '
                f'sum(rate(exchange_withdrawals_total[{RATE}]))', "rejected")),
        panel("Index price", "currencyUSD", q("exchange_index_price", "{{asset}}")),
        panel("Index components in use", "short", q("exchange_index_components", "{{asset}}")),
        panel("Last trade vs index (bps)", "short",
              q('(max by (asset) (label_replace(exchange_last_price, "asset", "$1", "market", "([^-]+)-.*")) '
                '/ on (asset) max by (asset) (exchange_index_price) - 1) * 10000', "{{asset}}")),
        panel("Accounts at risk", "short",
              q("sum by (mode) (exchange_margin_accounts_at_risk)", "{{mode}}")),
        panel("Lowest margin levels (p10)", "percentunit",
              q("histogram_quantile(0.1, sum by (mode, le) (exchange_margin_level_bucket))", "{{mode}}")),
        panel("Perpetual positions near liquidation", "short",
              q("sum by (zone) (exchange_perp_positions_at_risk)", "{{zone}}")),
        panel("Surveillance alerts by rule and action (rulebook 4.2.1, 4.2.4, 4.2.6)", "short",
              q("sum by (rule, action) (exchange_risk_alerts_total)", "{{rule}} {{action}}")),
        panel("Restrictions surveillance imposed /s", "ops",
              q(f"sum(rate(exchange_risk_restrictions_total[{RATE}]))", "restrictions")),
        panel("Accounts locked, frozen, restricted", "short",
              q("sum by (state) (exchange_risk_accounts)", "{{state}}")),
        panel("Refusals citing a risk rule /s", "ops",
              q(f'sum by (reason) (rate(exchange_rejections_total{{reason=~"rate_limited|too_many_open_orders|'
                f'opening_restricted|trading_restricted|account_frozen|account_locked|asset_frozen|'
                f'price_outside_band|market_halted|market_reduce_only|circuit_breaker"}}[{RATE}]))', "{{reason}}")),
        panel("Market mode (0 open, 1 reduce-only, 2 halted)", "short",
              q("max by (market) (exchange_market_mode)", "{{market}}")),
        panel("Withdrawals in progress", "short",
              q("sum by (state) (exchange_withdrawals_pending)", "{{state}}")),
        panel("Audit trail: entries by chain", "short",
              q("sum by (chain) (exchange_risk_actions_total)", "{{chain}}")),
        panel("Rulebook in force (its published hash)", "short",
              q("count by (digest) (exchange_risk_rulebook_info)", "{{digest}}")),
        panel("Treasury wallets (hot, cold, in flight)", "short",
              q("sum by (asset, wallet) (exchange_treasury_balance)", "{{asset}} {{wallet}}")),
        panel("Treasury reconciliation (wallets less ledger; 0 is sound)", "short",
              q("max by (asset) (abs(exchange_treasury_discrepancy))", "{{asset}}")),
        panel("OTC quotes and acceptances /s", "ops",
              q(f"sum(rate(exchange_otc_quotes_total[{RATE}]))", "quotes"),
              q(f"sum(rate(exchange_otc_acceptances_total[{RATE}]))", "accepted")),
        panel("OTC acceptance ratio", "percentunit",
              q(f"sum(increase(exchange_otc_acceptances_total[5m])) / clamp_min(sum(increase("
                f"exchange_otc_quotes_total[5m])), 1)", "accepted / quoted")),
        panel("OTC RFQs by state (expiries, cancellations)", "short",
              q("sum by (state) (exchange_otc_rfqs)", "{{state}}")),
        panel("OTC refusals by reason /s", "ops",
              q(f"sum by (reason) (rate(exchange_otc_refusals_total[{RATE}]))", "{{reason}}")),
        panel("OTC desk inventory (free, locked)", "short",
              q("sum by (asset, part) (exchange_otc_inventory)", "{{asset}} {{part}}")),
        panel("OTC refunds recorded", "short", q("sum(exchange_otc_refunds)", "refunds")),
        panel("OTC trades settled and quotes expired /s", "ops",
              q(f"sum by (settlement) (rate(exchange_otc_settled_total[{RATE}]))", "settled {{settlement}}"),
              q(f"sum(rate(exchange_otc_expiries_total[{RATE}]))", "expired")),
        panel("OTC spread income", "short", q("sum by (asset) (exchange_otc_spread_income_total)", "{{asset}}")),
        panel("OTC transit and hedges", "short", q("sum by (asset) (exchange_otc_transit)", "transit {{asset}}"),
              q("sum by (asset) (exchange_otc_hedges_total)", "hedges {{asset}}")),
        panel("OTC credit: exposure, limit, overdue", "short",
              q("sum by (account, part) (exchange_otc_credit_exposure)", "{{account}} {{part}}"),
              q("sum by (account) (exchange_otc_credit_overdue)", "{{account}} overdue")),
    ]),
}


def render_panel(spec: dict, index: int) -> dict:
    grid = {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)}
    if spec["kind"] == "text":
        return {"id": index + 1, "type": "text", "title": spec["title"], "gridPos": grid,
                "options": {"mode": "markdown", "content": spec["content"]}}
    buckets = spec["kind"] == "bargauge"          # a distribution now: one instant query, buckets in le order
    targets = [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": t["expr"],
                "legendFormat": t["legend"] or "__auto", "range": not buckets, "instant": buckets,
                **({"format": "heatmap"} if buckets else {})} for i, t in enumerate(spec["queries"])]
    return {"id": index + 1, "type": spec["kind"], "title": spec["title"], "description": spec["description"],
            "datasource": DATASOURCE, "gridPos": grid, "targets": targets,
            "fieldConfig": {"defaults": {"unit": spec["unit"]}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}}


def render(name: str) -> dict:
    title, variables, panels = DASHBOARDS[name]
    return {"uid": f"exchange-{name}", "title": title, "tags": ["exchange"], "editable": True,
            "schemaVersion": 39, "version": 1, "refresh": "5s", "time": {"from": "now-15m", "to": "now"},
            "timezone": "utc", "templating": {"list": variables},
            "panels": [render_panel(p, i) for i, p in enumerate(panels)]}


def dump(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        (OUT / f"{name}.json").write_text(dump(render(name)))
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
