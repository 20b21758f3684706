"""Latency bookkeeping for the demo, the load test and the benchmarks: an HDR histogram
(``hdrhistogram``, replacing a sorted list of every sample), percentiles in milliseconds.

Values are recorded in microseconds from 1 us to 10 minutes with 3 significant digits
(0.1% of each value), so memory stays a few tens of KB however many orders a run sends,
and recorders merge (``merge``) without losing precision: per second, per market, in
total. ``TimeSeries`` keeps one recorder and a count per second of a run, for the
report's throughput and p99 over time.
"""
from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 600_000_000, 3
POINTS = (0.5, 0.9, 0.99, 0.999)


class LatencyRecorder:
    """Collect latencies (seconds) and report percentiles (ms)."""

    def __init__(self) -> None:
        self.histogram = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    @property
    def count(self) -> int:
        return self.histogram.get_total_count()

    def add(self, seconds: float, count: int = 1) -> None:
        self.histogram.record_value(_us(seconds), count)

    def extend(self, values) -> None:
        record = self.histogram.record_value
        for seconds in values:
            record(_us(seconds))

    def merge(self, other: "LatencyRecorder") -> None:
        self.histogram.add(other.histogram)

    def drain(self) -> "LatencyRecorder":
        """Return a recorder holding the samples so far and start empty."""
        out = LatencyRecorder()
        out.histogram, self.histogram = self.histogram, HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        return out

    def percentiles(self, points=POINTS) -> dict[str, float]:
        if not self.count:
            return {**{_name(p): 0.0 for p in points}, "max_ms": 0.0}
        out = {_name(p): round(self.histogram.get_value_at_percentile(p * 100) / 1000, 3) for p in points}
        out["max_ms"] = round(self.histogram.get_max_value() / 1000, 3)
        return out

    def distribution(self, points: int = 60) -> list[tuple[float, float]]:
        """(percentile, ms) from 0 to 99.999 on a log scale of 1 / (1 - p): the curve of the report."""
        out = []
        for i in range(points + 1):
            p = 100 * (1 - 10 ** (-5 * i / points))
            out.append((round(p, 4), self.histogram.get_value_at_percentile(p) / 1000))
        return out


class TimeSeries:
    """Per second of a run (from ``start``): how many were acknowledged and their latencies."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.seconds: dict[int, LatencyRecorder] = {}

    def add(self, at: float, seconds: float, count: int = 1) -> None:
        second = int(at - self.start)
        recorder = self.seconds.get(second)
        if recorder is None:
            recorder = self.seconds[second] = LatencyRecorder()
        recorder.add(seconds, count)

    def rows(self) -> list[dict]:
        """One row per second: ``{"t", "orders", "p50_ms", "p99_ms"}``."""
        return [{"t": t, "orders": r.count, **{k: v for k, v in r.percentiles((0.5, 0.99)).items() if k != "max_ms"}}
                for t, r in sorted(self.seconds.items())]


def _us(seconds: float) -> int:
    return min(HIGHEST_US, max(LOWEST_US, int(seconds * 1_000_000)))


def _name(point: float) -> str:
    text = f"{point * 100:g}".replace(".", "")
    return f"p{text}_ms"
