"""The kinds of journal record, one stable number each, for every actor.

A journal record is a list whose first element says what it is; the rest is
that kind's fields (messages inside are ``codec`` encoded). Numbers are
stable and never reused (they are on disk); a store written before these
existed (format 2, letter tags) is refused by the store, never misread.
Replay dispatches on the tag: an unknown one is a ``ValueError``, never
skipped.

| tag | written by | fields |
|---|---|---|
| ``CLIENT_BATCH`` | shard | the batch's ``COMMAND`` records (one group commit, one put) |
| ``COMMAND`` | shard | a stamped, admitted command; the ``PriceContext`` it was priced in |
| ``PUSH`` | shard | a market's or the pool's push: link, entries, best bid/ask |
| ``SHARD_BATCH`` | market, pool | a shard's requests: origin shard, ``[rseq, tag, request]`` |
| ``ACCRUAL`` | pool | an interest accrual at ``ts_ns`` |
| ``FUND_DEPOSITED`` ... ``LIQUIDATION_ENDED`` | liquidator | its domain facts (``exchange/margin/liquidator.py``) |
| ``PERP_FUND_ENTRY`` ... ``PERP_ACCOUNTS_LINKED`` | liquidator | the perpetual liquidator's facts (``exchange/perp/liquidator.py``) |
| ``OTC_INPUT`` | OTC desk | one input of the desk (``exchange/otc/rfq.py: OtcDesk.apply``) |
"""
from __future__ import annotations

from enum import IntEnum


class RecordTag(IntEnum):
    CLIENT_BATCH = 1
    COMMAND = 2
    PUSH = 3
    SHARD_BATCH = 10
    ACCRUAL = 11
    INDEX_UPDATE = 12           # a perpetual market priced at an index update: [tag, ts_ns, index ticks]
    MARKET_OPERATOR = 13        # an operator's command a market applied (its mode, a threshold): [tag, command]
    SURVEILLANCE_LINK = 14      # an operator linked two accounts: [tag, a, b, kind, operator, reason, ts_ns]
    SURVEILLANCE_RULE = 15      # an operator changed a threshold: [tag, rule, key, value, operator, reason, ts_ns]
    TREASURY_INPUT = 16         # a chain transfer received, a refill approved, deposits suspended: [tag, kind, ...]
    OTC_INPUT = 17              # an input of the OTC desk (``OtcDesk.apply``): [tag, kind, *args]
    FUND_DEPOSITED = 20
    LIQUIDATION_BEGUN = 21
    COVER_DRAWN = 22
    COVER_SETTLED = 23
    LIQUIDATION_ENDED = 24
    PERP_FUND_ENTRY = 25        # a perpetual insurance-fund entry: [tag, entry as plain data]
    PERP_LIQUIDATION_OPENED = 26    # [tag, n, account, market ("" cross)]
    PERP_LIQUIDATION_TAKEN = 27     # [tag, n, equity taken over]
    PERP_FUND_RESERVED = 28         # [tag, n, market, amount]: what the liquidation's orders may draw
    PERP_ADL_PLANNED = 29           # [tag, n, market, plan (its ADL_START entry), price, lots wanted, [[account, lots]]]
    PERP_ADL_DONE = 30              # [tag, n, market]
    PERP_LIQUIDATION_ENDED = 31     # [tag, n, public record or None]
    PERP_ACCOUNTS_LINKED = 32       # [tag, account, account]


def tag_of(record: list) -> RecordTag:
    """The record's tag; ``ValueError`` naming it if it is not one."""
    try:
        return RecordTag(record[0])
    except (ValueError, IndexError, TypeError, KeyError):
        raise ValueError(f"unknown journal record {record[:1]!r:.80}") from None
