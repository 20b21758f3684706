"""The benchmarks (``docs/PERFORMANCE.md``); ``report`` prints a result the way each does."""
from __future__ import annotations

import json
import sys


def report(result: dict, as_json: bool, file=None) -> None:
    """One JSON object (``--json``, for machines) or one aligned ``key: value`` line a figure."""
    out = file or sys.stdout
    if as_json:
        print(json.dumps(result), file=out)
        return
    width = max(map(len, result), default=0)
    for key, value in result.items():
        print(f"{key:>{width}}: {value}", file=out)
