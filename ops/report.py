"""The load test's PNG report (issue 17): one picture a person reads at a glance.

``write_report(path, result)`` draws, from a load test's result (``ops/loadtest.py``):

1. **latency distribution**: the HDR percentile curve, latency (ms, log) against
   the percentile on a 1/(1-p) scale, p50/p99/p99.9 marked;
2. **throughput and p99 over time**: orders acknowledged per second (bars) and
   that second's p99 (line, right axis);
3. **per market**: orders/s and p99 of each market;
4. **the sweep** (``--sweep``): p99 against the offered rate, the knee's bound and
   the knee; without a sweep, the workload's commands by role (sent, and acknowledged
   when the result has it) with the refusals by reason.

A header line gives the run (mode, orders, orders/s, percentiles, Ray's own rate
beside it) and a footer the conservation audit and, when kills were on, the chaos
counters. matplotlib, headless (Agg): no screen needed.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: E402

NINES = (0.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def write_report(path: str, result: dict) -> str:
    """Draw ``result`` into ``path`` (PNG); return the path."""
    fig, axes = plt.subplots(2, 2, figsize=(14, 9), dpi=110)
    fig.suptitle(_title(result), fontsize=11, fontweight="bold")
    _distribution(axes[0][0], result.get("distribution") or [], result)
    _over_time(axes[0][1], result.get("timeline") or [])
    _per_market(axes[1][0], result.get("per_market") or {})
    if result.get("steps"):
        _sweep(axes[1][1], result)
    else:
        _mix(axes[1][1], result.get("workload") or {})
    fig.text(0.5, 0.01, _footer(result), ha="center", fontsize=10,
             color="darkgreen" if result.get("conservation_ok") else "darkred")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)
    return path


def _title(r: dict) -> str:
    rate = r.get("orders_per_s") or r.get("capacity_orders_per_s")
    parts = [f"exchange loadtest ({r.get('mode', '?')})", f"{r.get('orders', 0):,} orders" if r.get("orders") else "",
             f"{rate:,} orders/s" if rate else "",
             f"p50 {r.get('p50_ms', 0)} ms  p99 {r.get('p99_ms', 0)} ms  p99.9 {r.get('p999_ms', 0)} ms"
             if "p99_ms" in r else "",
             f"Ray alone {r['ray_batched_msgs_per_s']:,} msgs/s" if r.get("ray_batched_msgs_per_s") else ""]
    parts = [p for p in parts if p]
    return "   |   ".join(parts[:3]) + "\n" + "   |   ".join(parts[3:])


def _footer(r: dict) -> str:
    text = "conservation: " + ("OK, every asset to the smallest unit" if r.get("conservation_ok")
                               else f"BROKEN {r.get('imbalance')}")
    chaos = r.get("chaos")
    if chaos:
        text += "   |   chaos: " + ", ".join(f"{k} {v}" for k, v in chaos.items())
    return text


def _x(p: float) -> float:
    """Percentile on the 1/(1-p) scale."""
    return 1 / max(1e-6, 1 - p / 100)


def _distribution(ax, curve: list, r: dict) -> None:
    ax.set_title("Latency distribution (HDR histogram)")
    if not curve:
        ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
        return
    ax.plot([_x(p) for p, _ in curve], [max(ms, 1e-3) for _, ms in curve], color="tab:blue", lw=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator([_x(p) for p in NINES]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * (1 - 1 / x):g}%"))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    for key, label, color in (("p50_ms", "p50", "tab:green"), ("p99_ms", "p99", "tab:orange"),
                              ("p999_ms", "p99.9", "tab:red")):
        if r.get(key):
            ax.axhline(r[key], color=color, ls="--", lw=1, label=f"{label} {r[key]} ms")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")


def _over_time(ax, rows: list) -> None:
    ax.set_title("Throughput and p99 over time")
    if not rows:
        ax.text(0.5, 0.5, "no timeline", ha="center", transform=ax.transAxes)
        return
    t = [row["t"] for row in rows]
    ax.bar(t, [row["orders"] for row in rows], color="tab:blue", alpha=0.6, label="orders/s")
    ax.set_xlabel("second of the run")
    ax.set_ylabel("orders acknowledged per second", color="tab:blue")
    right = ax.twinx()
    right.plot(t, [row["p99_ms"] for row in rows], color="tab:red", marker="o", ms=3, label="p99")
    right.set_ylabel("p99 (ms)", color="tab:red")
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, ["orders/s", "p99 (ms)"], loc="lower right")
    ax.grid(True, alpha=0.3)


def _per_market(ax, markets: dict) -> None:
    ax.set_title("Per market")
    if not markets:
        ax.text(0.5, 0.5, "no markets", ha="center", transform=ax.transAxes)
        return
    names = list(markets)
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [markets[n]["orders_per_s"] for n in names], width=0.4, color="tab:blue",
           label="orders/s")
    ax.set_xticks(list(x), [n.replace(" ", "\n") for n in names],    # "OTC BTC-USDT" on two lines
                  fontsize=9 if len(names) > 3 else None)
    ax.set_ylabel("orders/s", color="tab:blue")
    ax.set_ylim(top=1.3 * max(markets[n]["orders_per_s"] for n in names) or 1)     # room for the legend
    right = ax.twinx()
    right.bar([i + 0.2 for i in x], [markets[n]["p99_ms"] for n in names], width=0.4, color="tab:red",
              alpha=0.7, label="p99")
    right.set_ylim(top=1.3 * max(markets[n]["p99_ms"] for n in names) or 1)
    right.set_ylabel("p99 (ms)", color="tab:red")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, ["orders/s", "p99 (ms)"], loc="upper right")
    for i, n in enumerate(names):
        ax.annotate(f"{markets[n]['orders']:,} orders", (i - 0.2, markets[n]["orders_per_s"]), ha="center",
                    va="bottom", fontsize=8)


def _sweep(ax, r: dict) -> None:
    steps = r["steps"]
    ax.set_title("Sweep: p99 against the offered rate")
    offered = [s["offered_per_s"] for s in steps]
    ax.plot(offered, [s["p99_ms"] for s in steps], marker="o", color="tab:red", label="p99")
    ax.plot(offered, [s["p50_ms"] for s in steps], marker="o", color="tab:green", label="p50")
    ax.axhline(r["knee_p99_ms_bound"], color="gray", ls="--", lw=1, label=f"bound {r['knee_p99_ms_bound']} ms")
    if r.get("knee_orders_per_s"):
        ax.axvline(r["knee_orders_per_s"], color="tab:purple", ls=":", lw=2,
                   label=f"knee {r['knee_orders_per_s']:,}/s")
    ax.set_xlabel(f"offered orders/s (capacity {r['capacity_orders_per_s']:,}/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")


def _mix(ax, workload: dict) -> None:
    ax.set_title("Workload: commands by role")
    sent = workload.get("sent") or {}
    if not sent:
        ax.text(0.5, 0.5, "no workload", ha="center", transform=ax.transAxes)
        return
    ax.barh(list(sent), list(sent.values()), color="tab:gray", label="sent")
    acknowledged = workload.get("acknowledged") or {}
    if acknowledged:
        ax.barh(list(sent), [acknowledged.get(role, 0) for role in sent], height=0.4, color="tab:green",
                label="acknowledged")
        ax.legend(loc="center right")
    ax.set_xlabel(f"commands (Zipf s={workload.get('zipf')})")
    ax.set_xlim(right=1.2 * max(sent.values()))
    for i, v in enumerate(sent.values()):
        ax.annotate(f"{v:,}", (v, i), va="center", fontsize=9)
    refused = workload.get("refused") or {}
    if refused:
        ax.text(0.98, 0.98, "refused:\n" + "\n".join(f"{k} {v:,}" for k, v in sorted(refused.items())),
                transform=ax.transAxes, ha="right", va="top", fontsize=8, color="darkred")
