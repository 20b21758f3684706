"""Latency bookkeeping for the demo and load test: percentiles in milliseconds."""
from __future__ import annotations


class LatencyRecorder:
    """Collect latencies (seconds) and report percentiles (ms)."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def add(self, seconds: float, count: int = 1) -> None:
        if count == 1:
            self.samples.append(seconds)
        else:
            self.samples.extend([seconds] * count)

    def extend(self, values: list[float]) -> None:
        self.samples.extend(values)

    def drain(self) -> "LatencyRecorder":
        """Return a recorder holding the samples so far and start empty."""
        out = LatencyRecorder()
        out.samples, self.samples = self.samples, []
        return out

    def percentiles(self, points=(0.5, 0.9, 0.99, 0.999)) -> dict[str, float]:
        if not self.samples:
            return {**{_name(p): 0.0 for p in points}, "max_ms": 0.0}
        data = sorted(self.samples)
        n = len(data)
        out = {_name(p): round(data[min(n - 1, int(p * n))] * 1000, 3) for p in points}
        out["max_ms"] = round(data[-1] * 1000, 3)
        return out


def _name(point: float) -> str:
    text = f"{point * 100:g}".replace(".", "")
    return f"p{text}_ms"
