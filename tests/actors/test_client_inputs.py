"""Client-side input parsing: names, numbers and clear refusals (no Ray needed)."""
from __future__ import annotations

import pytest

from actors.client.exchange_client import _enum
from exchange.matching.orders import Side, TimeInForce


def test_enum_with_names_numbers_or_members_gives_the_member():
    assert _enum(Side, "buy") is Side.BUY and _enum(Side, 2) is Side.SELL
    assert _enum(TimeInForce, "post_only") is TimeInForce.POST_ONLY and _enum(Side, Side.BUY) is Side.BUY


@pytest.mark.parametrize("value", ["sideways", 7, ""])
def test_enum_with_an_unknown_value_is_refused_naming_the_choices(value):
    with pytest.raises(ValueError, match="one of: buy, sell"):
        _enum(Side, value)
