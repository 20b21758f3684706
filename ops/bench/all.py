"""Every benchmark of the project, one after the other on a quiet machine, so that
``docs/PERFORMANCE.md``'s summary table is one consistent run (issue 17).

Each benchmark runs as its own process with the command the table names; its JSON
answer is saved as ``<out>/<name>.json`` (stderr beside it as ``<name>.log``), and a
line per benchmark says how long it took. Nothing else may load the machine meanwhile
(``docs/PERFORMANCE.md``: machines of this kind differ by 3x, so each figure stands
beside the baseline its own run measured).

Usage: python ops/bench/all.py [--out bench-results] [--only book,otc] [--quick]
``--quick`` shrinks the longest runs (liquidation 20,000 positions, margin 100,000
accounts) and says so in each saved file's name.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY, EXCHANGE = sys.executable, str(Path(sys.executable).parent / "exchange")

BENCHMARKS = {
    "book": [PY, "ops/bench/book.py", "--json", "--commands", "300000", "--runs", "3"],
    "ray_rate": [PY, "ops/bench/ray_rate.py", "--json"],
    "roundtrip": [PY, "ops/bench/roundtrip.py", "--json", "--orders", "300"],
    "loadtest": [EXCHANGE, "loadtest", "--markets", "2", "--accounts", "2000", "--orders", "60000", "--json",
                 "--no-progress", "--report", "", "--mix", "maker=0.55,taker=0.2,sweeper=0.05,canceller=0.2"],
    "loadtest_venue": [EXCHANGE, "loadtest", "--markets", "2", "--accounts", "2000", "--orders", "60000", "--json",
                       "--no-progress", "--report", ""],
    "sweep": [EXCHANGE, "loadtest", "--markets", "2", "--accounts", "2000", "--orders", "40000", "--sweep",
              "--step-seconds", "4", "--json", "--no-progress", "--report", ""],
    "journal": [PY, "ops/bench/journal.py", "--skip-snapshots", "--e2e-orders", "100000", "--append-seconds", "1",
                "--json"],
    "metrics": [PY, "ops/bench/metrics.py", "--orders", "60000", "--runs", "3", "--json"],
    "margin": [PY, "ops/bench/margin.py", "--json"],
    "liquidation": [PY, "ops/bench/liquidation.py", "--json"],
    "otc": [PY, "ops/bench/otc.py", "--json"],
    "gateway": [PY, "ops/bench/gateway.py", "--json"],
    "scaling": [PY, "ops/bench/scaling.py", "--json"],
}
QUICK = {"margin": ["--accounts", "100000"], "liquidation": ["--positions", "20000"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results", help="folder for each benchmark's JSON (default bench-results)")
    parser.add_argument("--only", default="", help="comma-separated names (default: all): " + ",".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="smaller liquidation and margin runs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    failed = 0
    for name in names:
        command = BENCHMARKS[name] + (QUICK.get(name, []) if args.quick else [])
        tag = f"{name}-quick" if args.quick and name in QUICK else name
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        (out / f"{tag}.log").write_text(done.stderr)
        if done.returncode != 0 or not lines:
            failed += 1
            print(f"{name}: FAILED ({done.returncode}) after {time.monotonic() - started:.0f} s; see {tag}.log",
                  flush=True)
            continue
        result = json.loads(lines[-1])
        (out / f"{tag}.json").write_text(json.dumps({"command": " ".join(command[1:] if command[0] == PY else
                                                                         ["exchange", *command[1:]]),
                                                     "seconds": round(time.monotonic() - started, 1),
                                                     "result": result}, indent=1))
        print(f"{name}: {time.monotonic() - started:.0f} s -> {out / (tag + '.json')}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
