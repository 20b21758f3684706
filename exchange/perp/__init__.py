"""Linear (USDT-margined) perpetual futures: the domain (issue 14, in progress).

One concept per module: ``tiers`` (tiered risk limits, rulebook 4.3.2),
``position`` (a position's size, cost basis and PnL), ``prices`` (bankruptcy
and liquidation prices, isolated and cross), ``mark`` (the fair-price mark,
rulebook 5.2.2.5), ``funding`` (premium index, rate, payments). Pure and
deterministic like the rest of ``exchange/``: no clock (times are ``ts_ns``
given by the caller), no I/O. ``docs/PERPETUALS.md`` says what is built and
what is not yet.
"""
