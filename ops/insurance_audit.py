"""``exchange audit insurance``: recompute the perpetual insurance funds from their entries.

Reads the liquidator's LMDB store under a data directory (the exchange
stopped, as for ``exchange verify``): the fund's entries in its newest
verified snapshot and every ``PERP_FUND_ENTRY`` record journaled after it.
Then, from the entries alone, it recomputes the SHA-256 chain (each entry's
digest over the previous digest and its canonical content) and every
market's balance (``exchange/perp/fund.py: verify``): any entry altered,
removed or reordered, or a balance that would have gone negative, is a
problem, and so is a store that fails its own checksums. Exit code 0 when
the chain and the balances are sound, 1 otherwise, one line per problem.
"""
from __future__ import annotations

from pathlib import Path

import orjson

from actors.durability.storage import FormatError, LmdbStore, RecoveryError
from exchange.messages.tags import RecordTag
from exchange.perp.fund import verify


def audit_insurance(data_dir: str) -> dict:
    """The report: ``ok``, ``entries``, ``balances`` per market, ``head``, ``problems``."""
    path = Path(data_dir) / "liquidator"
    if not path.is_dir():
        return {"ok": False, "entries": 0, "balances": {}, "head": None,
                "problems": [f"no liquidator store under {data_dir}"]}
    try:
        entries = _entries(LmdbStore(path))
    except (RecoveryError, FormatError, ValueError) as exc:
        return {"ok": False, "entries": 0, "balances": {}, "head": None, "problems": [str(exc)]}
    problems = verify(entries)
    balances: dict[str, int] = {}
    for entry in entries:
        balances[entry[2]] = balances.get(entry[2], 0) + entry[3]
    return {"ok": not problems, "entries": len(entries), "balances": balances,
            "head": entries[-1][7] if entries else None, "problems": problems}


def _entries(store: LmdbStore) -> list[list]:
    try:
        position, payload = store.recovery_start()
        entries = list(orjson.loads(payload).get("perp_fund", [])) if payload is not None else []
        for _, record in store.read_after(position):
            data = orjson.loads(record)
            if data and data[0] == RecordTag.PERP_FUND_ENTRY:
                entries.append(data[1])
        return entries
    finally:
        store.close()


def format_report(data_dir: str, report: dict) -> str:
    lines = [f"audit insurance {data_dir}: {'OK' if report['ok'] else 'FAILED'} "
             f"({report['entries']} entries, head {report['head'] or '-'})"]
    lines += [f"  {market}: {balance} minor units" for market, balance in sorted(report["balances"].items())]
    lines += [f"  - {problem}" for problem in report["problems"]]
    return "\n".join(lines)
