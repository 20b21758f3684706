"""The tiered position limit and hedge exemptions of rulebook 4.3.1 on a perpetual market
(``RiskGate.position_limit``, ``PerpDesk._position_limit``): the market's limit grows with the
wallet's collateral up to the rule's maximum, an operator's hedge exemption lifts it, and
under ``none`` the order passes with a record."""
from __future__ import annotations

from exchange.core.reasons import Reason
from exchange.messages.records import GrantHedgeExemption, OrderRejected, RiskAction
from tests.exchange.perp.test_desk import PERP, PerpHarness, harness, perp_config
from tests.exchange.support import ALICE, BUY, SELL, btc, custom_config, usdt

RULE = "R-4.3.1-position-limit"


def limited(rules: dict | None = None, wallet: str = "400000") -> PerpHarness:
    config = perp_config()
    if rules is not None:
        raw_rules = {RULE: rules}
        config = custom_config(lambda raw: (raw.setdefault("perp", {}).update(
            {PERP: {"base": "BTC", "quote": "USDT", "tick_size": "0.1", "lot_size": "0.001", "min_qty": "0.001",
                    "max_qty": "1000", "step_notional": "1000000", "position_limit": "50"}}),
            raw.update(risk={"rules": raw_rules, "operators": {"risk-ann": {"roles": ["risk"]}}})))
    ex = harness(config, wallet=wallet)
    ex.apply(ex.risk_cmd(ALICE, 5))
    ex.apply(ex.leverage_cmd(ALICE, 10))
    return ex


def first(events):
    return events[0]


def test_the_limit_grows_with_collateral_in_steps_up_to_the_maximum():
    # 50 BTC market limit; +10 BTC per 100,000 USDT of collateral, at most 65 BTC
    ex = limited({"step_equity": "100000", "step_btc": "10", "max_btc": "65"})
    refused = first(ex.perp(ALICE, BUY, usdt("40000"), btc("70.001")))
    assert (type(refused), Reason(refused.reason), refused.rule) == (OrderRejected, Reason.POSITION_LIMIT_EXCEEDED,
                                                                     RULE)
    # 400,000 USDT: four steps, 50 + 40 = 90, capped at 65
    assert type(first(ex.perp(ALICE, BUY, usdt("40000"), btc("65")))).__name__ == "OrderAccepted"
    assert Reason(first(ex.perp(ALICE, BUY, usdt("40000"), btc("0.001"))).reason) == Reason.POSITION_LIMIT_EXCEEDED


def test_a_hedge_exemption_lifts_the_limit_and_only_a_risk_operator_grants_it():
    ex = limited({})
    assert Reason(first(ex.perp(ALICE, BUY, usdt("40000"), btc("50.001"))).reason) == Reason.POSITION_LIMIT_EXCEEDED
    rid, ts = ex.next_ids()
    refused = ex.apply(GrantHedgeExemption(rid, ts, ALICE, PERP, True, "mallory", "hedging spot"))
    assert Reason(refused[0].reason) == Reason.UNKNOWN_OPERATOR
    rid, ts = ex.next_ids()
    acted, = ex.apply(GrantHedgeExemption(rid, ts, ALICE, PERP, True, "risk-ann", "approved spot hedge, 4.3.1(三)"))
    assert (acted.command, acted.before, acted.after, acted.rule) == ("hedge-exemption", "limited", "exempt", RULE)
    assert type(first(ex.perp(ALICE, BUY, usdt("40000"), btc("50.001")))).__name__ == "OrderAccepted"
    ex.engine.check_invariants()


def test_the_position_limit_under_none_lets_the_order_through_with_a_record():
    ex = limited({"action": "none"})
    events = ex.perp(ALICE, BUY, usdt("40000"), btc("50.001"))
    notice = next(e for e in events if type(e) is RiskAction)
    assert (notice.rule, notice.action, notice.value, notice.limit) == (RULE, 0, 50_001, 50_000)
    assert any(type(e).__name__ == "OrderAccepted" for e in events)
    assert ex.engine.shard.risk.audit.entries[-1].rule == RULE


def test_the_desk_lists_the_positions_large_enough_for_the_large_trader_report():
    ex = limited({})
    ex.perp(ALICE, BUY, usdt("40000"), btc("2"))
    ex.perp(2, SELL, usdt("40000"), btc("2"))                  # BOB takes it: a long and a short of 2 BTC
    rows = ex.engine.shard.perp.large_positions({PERP: 1_000})  # at least 1 BTC (1,000 lots)
    assert [(a, m, size) for a, m, size, _, _ in rows] == [(ALICE, PERP, btc("2")), (2, PERP, -btc("2"))]
    assert ex.engine.shard.perp.large_positions({PERP: 3_000}) == []
