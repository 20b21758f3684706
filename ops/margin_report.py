"""``exchange margin``: the lending pools, the insurance fund and the latest
public liquidation records of a running exchange, as a readable page or JSON.

Amounts are shown as decimals at each asset's scale, rates as yearly
percentages; ``--json`` keeps the integers (minor units, ppm).
"""
from __future__ import annotations

from actors.client.exchange_client import ExchangeClient
from exchange.core.money import format_decimal


def margin_report(client: ExchangeClient, limit: int = 20) -> dict:
    """Pools, fund and the ``limit`` latest liquidations (integers: minor units and ppm)."""
    return {"pools": client.lending_pools(), "insurance_fund": client.insurance_fund(),
            "liquidations": client.liquidations(limit)}


def format_margin_report(client: ExchangeClient, report: dict) -> str:
    scale = {a.name: a.scale for a in client.config.asset_list}
    money = lambda asset, v: format_decimal(v, scale[asset])  # noqa: E731
    pct = lambda ppm: f"{ppm / 10_000:.2f}%"                   # noqa: E731
    lines = ["lending pools:",
             f"  {'asset':<6} {'supplied':>22} {'borrowed':>22} {'used':>8} {'borrow/yr':>10} {'supply/yr':>10}"]
    for asset, p in report["pools"].items():
        lines.append(f"  {asset:<6} {money(asset, p['supplied']):>22} {money(asset, p['borrowed']):>22} "
                     f"{pct(p['utilization_ppm']):>8} {pct(p['borrow_rate_ppm']):>10} {pct(p['supply_rate_ppm']):>10}")
    fund = report["insurance_fund"]
    covered = ", ".join(f"{money(a, v)} {a}" for a, v in fund["bad_debt"].items() if v) or "none"
    lines.append("insurance fund: " + ", ".join(f"{money(a, v)} {a}" for a, v in fund["balance"].items())
                 + f"  (bad debt covered so far: {covered})")
    lines.append(f"latest liquidations ({len(report['liquidations'])}):")
    for r in report["liquidations"]:
        before, after = r.get("level_before_ppm"), r.get("level_after_ppm")
        level = f"level {pct(before) if before else '-'} -> {pct(after) if after else 'no debt'}"
        shortfall = ", ".join(f"{money(a, v)} {a}" for a, v in r.get("shortfall", {}).items()) or "none"
        lines.append(f"  #{r['n']} {r['account_hash']} {r['mode']:<8} {r.get('market') or 'cross'} "
                     f"{r.get('outcome')}: {level}; fills {len(r.get('fills', []))}; shortfall {shortfall}")
    return "\n".join(lines)
