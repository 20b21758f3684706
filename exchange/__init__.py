"""The pure, deterministic domain core of the exchange.

Nothing in this package imports Ray, LMDB, Prometheus, asyncio, a clock or a
random source: time arrives as ``ts_ns`` on every command, so a replay of the
same commands reaches the same state and the same ``state_hash``.
"""
