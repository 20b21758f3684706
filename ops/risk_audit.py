"""``exchange audit verify``: check the risk audit trail's hash chains (``exchange.risk.audit``).

The chains come from an export (``--file``: ``{"chains": [{name, base, entries}]}``,
what ``RiskDesk.chains()`` returns and ``--export`` writes) or from the stored
state under ``--data`` (the exchange stopped): every shard and market is rebuilt
from its LMDB store the way a restart would (``ops.verify``) and its chain read.
Each chain is checked entry by entry; the report names the first entry that was
altered, removed or reordered. Exit code 1 if any chain fails.
"""
from __future__ import annotations

import json

from exchange.risk.audit import verify


def chains_from_file(path: str) -> list[dict]:
    with open(path) as f:
        return json.load(f)["chains"]


def chains_from_data(data_dir: str, config_path: str | None = None) -> list[dict]:
    from ops.verify import _close, _rebuild
    config, shards, markets, liquidator = _rebuild(config_path, data_dir)
    try:
        chains = [s.shard.risk.audit.snapshot() for s in shards if s.shard.risk is not None]
        chains += [m.engine.guard.audit.snapshot() for m in markets.values()
                   if getattr(getattr(m, "engine", None), "guard", None) is not None]
    finally:
        _close(shards, markets, liquidator)
    return chains


def report(chains: list[dict]) -> dict:
    results = []
    for chain in chains:
        ok, seq, why = verify(chain["entries"], chain["base"])
        results.append({"chain": chain["name"], "entries": len(chain["entries"]), "dropped": chain.get("dropped", 0),
                        "ok": ok, "first_bad_seq": seq, "why": why,
                        "head": chain["entries"][-1][-1] if chain["entries"] else chain["base"]})
    return {"ok": all(r["ok"] for r in results), "chains": results}


def format_report(result: dict) -> str:
    lines = []
    for r in result["chains"]:
        state = "ok" if r["ok"] else f"FAILED at entry {r['first_bad_seq']}: {r['why']}"
        lines.append(f"{r['chain']:<24} {r['entries']:>7} entries  head {r['head'][:16]}  {state}")
    lines.append("audit trail: " + ("every chain verifies" if result["ok"] else "TAMPERED"))
    return "\n".join(lines)
