"""Journal record tags: stable numbers, and anything else (an old letter tag, an
unknown number, an empty record) refused by name, never skipped."""
from __future__ import annotations

import pytest

from exchange.margin.liquidator import FundDeposited, fact_from_record, fact_to_record
from exchange.messages.tags import RecordTag, tag_of

ON_DISK = {"CLIENT_BATCH": 1, "COMMAND": 2, "PUSH": 3, "SHARD_BATCH": 10, "ACCRUAL": 11, "INDEX_UPDATE": 12,
           "MARKET_OPERATOR": 13, "SURVEILLANCE_LINK": 14, "SURVEILLANCE_RULE": 15, "TREASURY_INPUT": 16,
           "OTC_INPUT": 17,
           "FUND_DEPOSITED": 20, "LIQUIDATION_BEGUN": 21, "COVER_DRAWN": 22, "COVER_SETTLED": 23, "LIQUIDATION_ENDED": 24,
           "PERP_FUND_ENTRY": 25, "PERP_LIQUIDATION_OPENED": 26, "PERP_LIQUIDATION_TAKEN": 27, "PERP_FUND_RESERVED": 28,
           "PERP_ADL_PLANNED": 29, "PERP_ADL_DONE": 30, "PERP_LIQUIDATION_ENDED": 31, "PERP_ACCOUNTS_LINKED": 32}


def test_tags_keep_their_numbers():
    assert {tag.name: int(tag) for tag in RecordTag} == ON_DISK


@pytest.mark.parametrize("record", [["b", []], ["x", None, []], ["fund", "USDT", 1], [99], [], [None], "b"])
def test_anything_but_a_known_tag_is_refused_by_name(record):
    with pytest.raises(ValueError, match="unknown journal record"):
        tag_of(record)


def test_a_liquidator_fact_round_trips_and_a_record_of_another_actor_is_refused():
    fact = FundDeposited("USDT", 5)
    assert fact_from_record(fact_to_record(fact)) == fact
    with pytest.raises(ValueError, match="not a liquidator record: PUSH"):
        fact_from_record([RecordTag.PUSH, "BTC-USDT", [], [None, None]])
