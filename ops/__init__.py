"""Operator tooling: the ``exchange`` CLI, load test, chaos harness, benchmarks."""
