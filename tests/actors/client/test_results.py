"""Typed client results (no Ray): a rejection shows its reason's name, number
and one-line explanation (Core v2 §4)."""
from __future__ import annotations

import pytest

from actors.client.results import command_result, order_result
from exchange.core.reasons import Reason
from exchange.messages.records import BalanceChanged, OrderClosed, OrderRejected


@pytest.mark.parametrize("reason", list(Reason))
def test_rejected_command_result_with_any_reason_shows_name_and_explanation(reason):
    result = command_result("r", [OrderRejected("r", 5, int(reason))])
    assert result.reason is reason and not result.ok
    assert result.explanation == reason.explanation
    assert str(result) == f"rejected {reason.name} ({int(reason)}): {reason.explanation}"
    assert repr(result).startswith("CommandResult(request_id='r', ok=False, reason=<Reason.")
    assert repr(result).endswith(f"explanation={reason.explanation!r})")


def test_rejected_order_result_shows_name_and_explanation():
    result = order_result("o", [OrderRejected("o", 5, int(Reason.NO_MARGIN_BOOK))], 5)
    assert result.status == "rejected" and result.explanation == Reason.NO_MARGIN_BOOK.explanation
    assert str(result).startswith("rejected NO_MARGIN_BOOK (413): ")
    assert "explanation=" in repr(result)


def test_market_rejected_order_result_explains_the_markets_reason():
    closed = OrderClosed("BTC-USDT", 1, 0, 1025, 5, 5, 10_000, int(Reason.POST_ONLY_WOULD_TAKE))
    result = order_result("o", [closed], 5)
    assert result.reason is Reason.POST_ONLY_WOULD_TAKE
    assert "POST_ONLY_WOULD_TAKE (300)" in str(result)


def test_accepted_result_has_no_explanation_and_a_plain_repr():
    result = command_result("d", [BalanceChanged("d", 0, 5, "USDT", 10, 10, 0)])
    assert result.ok and result.explanation == ""
    assert "explanation" not in repr(result) and str(result) == repr(result)
