"""Every reason code answers as a Binance error: a known code, the HTTP status Binance
uses for it, and our reason's name kept in the message."""
from __future__ import annotations

import pytest

from exchange.core.reasons import Reason
from gateway.errors import error

BINANCE_CODES = {-1003, -1008, -1013, -1100, -1102, -1115, -1116, -1117, -1121, -2010, -2011, -2013, -2015}
BINANCE_CODES |= {-1130, -2022, -2027, -3003, -3006, -3008, -3015, -3020, -3027, -3044, -3045, -4028, -4048}  # products


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_maps_to_a_binance_code_keeping_its_name(reason):
    for cancel in (False, True):
        status, body = error(reason, cancel)
        assert body["code"] in BINANCE_CODES and body["msg"].endswith(f"({reason.name})")
        assert status in (400, 401, 429, 503)


def test_the_codes_bots_act_on_are_binances():
    assert error(Reason.UNKNOWN_MARKET) == (400, {"code": -1121, "msg": "Invalid symbol. (UNKNOWN_MARKET)"})
    assert error(Reason.RATE_LIMITED)[0] == 429 and error(Reason.OVERLOADED)[0] == 503
    assert error(Reason.INSUFFICIENT_BALANCE)[1]["code"] == -2010
    assert error(Reason.ORDER_NOT_FOUND)[1]["code"] == -2013
    assert error(Reason.ORDER_NOT_FOUND, cancel=True)[1] == {"code": -2011, "msg": "Unknown order sent. (ORDER_NOT_FOUND)"}
    assert error(Reason.OFF_TICK_PRICE)[1]["msg"] == "Filter failure: PRICE_FILTER (OFF_TICK_PRICE)"
