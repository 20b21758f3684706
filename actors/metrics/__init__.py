"""Prometheus metrics: recorders, per-role metrics, the margin distribution, the scrape actor."""
