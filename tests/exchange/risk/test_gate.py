"""The pre-trade gate through the Engine's door (``exchange.risk.gate``): each rule crossing
its threshold takes the configured action and cites its rule id, the same input under
``none`` is only recorded, refusals change nothing, operators need a role and a reason."""
from __future__ import annotations

import orjson
import pytest

from exchange.core.reasons import Reason
from exchange.engine import Engine
from exchange.messages.codec import encode_shallow
from exchange.messages.records import (Deposit, FreezeAccount, FreezeAsset, LockAccount, OperatorActed, OrderRejected,
                                       RestrictAccount, RiskAction, SetMarketMode, SetRiskRule, Withdraw)
from exchange.risk.rulebook import Action
from exchange.snapshot import restore_shard, shard_state
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, ETH_USDT, MAKER, SELL, Harness, assert_rejected, btc,
                                    custom_config, eth, usdt)

P, Q = usdt("50000"), btc("0.01")
S = 1_000_000_000
HOUSE = -1


def rules_config(rules: dict | None = None, operators: dict | None = None):
    ops = {"risk-ann": {"roles": ["risk"]}, "treasury-tom": {"roles": ["treasury"]}} if operators is None else operators
    return custom_config(lambda raw: raw.update(risk={"rules": rules or {}, "operators": ops}))


class Clocked(Harness):
    """A harness whose commands carry a clock the test moves (1 µs per command)."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.now = 1_000 * S

    def next_ids(self) -> tuple[str, int]:
        self.counter += 1
        self.now += 1_000
        return f"req-{self.counter}", self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * S)

    def op(self, kind, *fields, operator="risk-ann", reason="test"):
        rid, ts = self.next_ids()
        return kind(rid, ts, *fields, operator, reason)


def harness(rules=None, operators=None, index: bool = False) -> Clocked:
    h = Clocked(Engine(rules_config(rules, operators)))
    for account, tier in ((ALICE, "regular"), (BOB, "regular"), (MAKER, "market_maker")):
        h.open(account, tier)
        h.deposit(account, "USDT", usdt("1000000"))
        h.deposit(account, "BTC", btc("10"))
        h.deposit(account, "ETH", eth("100"))
    if index:
        h.engine.set_index_prices({"BTC": P, "ETH": usdt("3000"), "USDT": usdt("1")})
    return h


def rejected(events, reason: Reason, rule: str) -> None:
    assert type(events[0]) is OrderRejected, events
    assert (Reason(events[0].reason), events[0].rule) == (reason, rule)


def notices(events) -> list:
    return [e for e in events if type(e) is RiskAction]


# ---- the cancel ladder -------------------------------------------------------

LADDER = "R-4.2.5-cancel-ladder"


def churn(h: Clocked, n: int, market: str = BTC_USDT) -> list:
    """``n`` places and cancels (n even: n/2 of each); the RiskActions they produced."""
    out = []
    for _ in range(n // 2):
        events = h.place(ALICE, BUY, P - usdt("100") if market == BTC_USDT else usdt("2900"), Q if market ==
                         BTC_USDT else eth("0.1"), market=market)
        out += notices(events)
        out += notices(h.apply(h.cancel_cmd(ALICE, events[0].order_id, market=market)))
    return out


def test_cancel_ladder_warns_then_restricts_opening_then_trading_for_30_minutes_each():
    h = harness({LADDER: {"count": 10}})
    warning, = churn(h, 10)
    assert (warning.rule, warning.action, warning.market, warning.until_ns) == (LADDER, Action.ALERT, BTC_USDT, 0)
    second, = churn(h, 10)                                 # again within 24 h: opening restricted 30 min
    assert (second.action, second.until_ns) == (Action.RESTRICT_OPEN, h.now + 30 * 60 * S)
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.OPENING_RESTRICTED, LADDER)
    assert not churn(h, 2, ETH_USDT)                       # another market is not restricted
    h.advance(30 * 60)
    third, = churn(h, 10)                                  # a third reach: opening and closing, 30 minutes
    assert third.action == Action.RESTRICT_OPEN_CLOSE
    rejected(h.place(ALICE, SELL, P + usdt("100"), Q), Reason.TRADING_RESTRICTED, LADDER)
    h.advance(30 * 60 + 1)
    assert h.place(ALICE, BUY, P - usdt("100"), Q)[0].__class__.__name__ == "OrderAccepted"
    h.advance(25 * 3600)                                    # more than 24 h after the last reach: back to a warning
    first_again = [n for n in churn(h, 10) if n.rule == LADDER]
    assert [n.action for n in first_again] == [Action.ALERT]
    h.engine.check_invariants()


def test_cancel_ladder_counts_in_a_sliding_window_of_command_timestamps():
    h = harness({LADDER: {"count": 10, "window_s": 60}})
    assert not churn(h, 8)
    h.advance(61)                                           # the first eight slid out of the window
    assert not churn(h, 8)
    assert [n.action for n in churn(h, 2)] == [Action.ALERT]


def test_cancel_ladder_under_none_only_records_every_step():
    h = harness({LADDER: {"count": 4, "action": "none"}})
    steps = churn(h, 12)
    assert [(n.action, n.until_ns) for n in steps] == [(Action.NONE, 0)] * 3
    assert type(h.place(ALICE, BUY, P - usdt("100"), Q)[-1]).__name__ == "OrderBooked"


def test_cancel_ladder_exempts_market_makers():
    h = harness({LADDER: {"count": 2}})
    for _ in range(5):
        events = h.place(MAKER, BUY, P - usdt("100"), Q)
        assert not notices(events)
        assert not notices(h.apply(h.cancel_cmd(MAKER, events[0].order_id)))


# ---- R-5.2.2.1 rate limits and open orders ---------------------------------------------

ORDER_RATE, REQUEST_RATE, OPEN_ORDERS = "R-5.2.2.1-order-rate", "R-5.2.2.1-request-rate", "R-5.2.2.1-open-orders"


def test_unfilled_orders_empty_the_bucket_and_filled_ones_give_their_token_back():
    h = harness({ORDER_RATE: {"burst": 3, "refill_per_s": 1}})
    for _ in range(3):
        h.rest(ALICE, BUY, P - usdt("100"), Q)
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.RATE_LIMITED, ORDER_RATE)
    h.advance(1)                                            # one token back
    maker = h.rest(ALICE, SELL, P, Q)
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.RATE_LIMITED, ORDER_RATE)
    h.place(BOB, BUY, P, Q)                                 # BOB takes ALICE's ask: her order filled
    h.rest(ALICE, BUY, P - usdt("100"), Q)                  # ... and its token came back
    assert maker not in {o.order_id for o in h.engine.shard.open_orders(ALICE)}


def test_requests_are_rate_limited_and_a_refused_request_spends_nothing():
    h = harness({REQUEST_RATE: {"burst": 2, "refill_per_s": 1}})
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    command = h.place_cmd(ALICE, BUY, P - usdt("100"), Q)
    assert_rejected(h, command, Reason.RATE_LIMITED).rule == REQUEST_RATE


def test_rate_limit_under_alert_lets_the_order_through_and_records_it():
    h = harness({ORDER_RATE: {"burst": 1, "refill_per_s": 1, "action": "alert"}})
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    events = h.place(ALICE, BUY, P - usdt("100"), Q)          # the record comes first, then the order's events
    assert [type(e).__name__ for e in events] == ["RiskAction", "OrderAccepted", "OrderBooked"]
    assert [(n.rule, n.action) for n in notices(events)] == [(ORDER_RATE, Action.ALERT)]


def test_open_orders_are_capped_by_equity_at_the_index():
    h = harness({OPEN_ORDERS: {"base": 2, "step_equity": "2000000", "per_step": 1, "max": 3}}, index=True)
    # ALICE's equity: 1,000,000 + 10 BTC * 50,000 + 100 ETH * 3,000 = 1,800,000 USDT < one step
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    assert_rejected(h, h.place_cmd(ALICE, BUY, P - usdt("100"), Q), Reason.TOO_MANY_OPEN_ORDERS)
    h.deposit(ALICE, "USDT", usdt("200000"))                # 2,000,000: one step, one more order
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    h.deposit(ALICE, "USDT", usdt("5000000"))               # beyond max
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.TOO_MANY_OPEN_ORDERS, OPEN_ORDERS)


# ---- the price band ------------------------------------------------------------

BAND = "R-4.2.7-price-band"


def test_a_limit_order_beyond_the_band_around_the_index_is_refused():
    h = harness({BAND: {"band_bps": 1000}}, index=True)
    h.rest(ALICE, BUY, usdt("45000"), Q)                    # exactly 10% under: inside
    assert_rejected(h, h.place_cmd(ALICE, BUY, usdt("44999.99"), Q), Reason.PRICE_OUTSIDE_BAND).rule == BAND


def test_the_band_under_none_records_and_lets_the_order_in():
    h = harness({BAND: {"band_bps": 1000, "action": "none"}}, index=True)
    events = h.place(ALICE, BUY, usdt("40000"), Q)
    assert [type(e).__name__ for e in events] == ["RiskAction", "OrderAccepted", "OrderBooked"]
    assert [(n.rule, n.action, n.value, n.limit) for n in notices(events)] == \
        [(BAND, Action.NONE, usdt("40000") // 10_000, P // 10_000)]


# ---- freezes, locks and restrictions by operators -------------------------------------------

def test_a_trading_freeze_refuses_orders_but_not_cancels_and_is_audited():
    h = harness()
    order = h.rest(ALICE, BUY, P - usdt("100"), Q)
    acted, = h.apply(h.op(FreezeAccount, ALICE, 1))
    assert (acted.operator, acted.command, acted.before, acted.after, acted.rule) == \
        ("risk-ann", "freeze-account", "none", "trading", "R-5.2.2.3-freeze")
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.ACCOUNT_FROZEN, "R-5.2.2.3-freeze")
    assert type(h.apply(h.cancel_cmd(ALICE, order))[0]).__name__ == "OrderClosed"
    h.apply(h.op(FreezeAccount, ALICE, 2))                  # withdrawals only now
    rid, ts = h.next_ids()
    rejected(h.apply(Withdraw(rid, ts, ALICE, "USDT", 1)), Reason.ACCOUNT_FROZEN, "R-5.2.2.3-freeze")
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    h.apply(h.op(FreezeAccount, ALICE, 0))
    rid, ts = h.next_ids()
    assert type(h.apply(Withdraw(rid, ts, ALICE, "USDT", 1))[0]).__name__ == "BalanceChanged"


def test_a_locked_account_may_only_receive_deposits():
    h = harness()
    order = h.rest(ALICE, BUY, P - usdt("100"), Q)
    h.apply(h.op(LockAccount, ALICE, True))
    assert_rejected(h, h.cancel_cmd(ALICE, order), Reason.ACCOUNT_LOCKED).rule == "R-4.1.4-account-lock"
    assert type(h.deposit(ALICE, "USDT", 5)[0]).__name__ == "BalanceChanged"
    h.apply(h.op(LockAccount, ALICE, False))
    assert type(h.apply(h.cancel_cmd(ALICE, order))[0]).__name__ == "OrderClosed"


def test_an_asset_freeze_stops_its_markets_and_its_withdrawals():
    h = harness()
    h.apply(h.op(FreezeAsset, HOUSE, "ETH", 3))
    rejected(h.place(ALICE, BUY, usdt("2900"), eth("0.1"), market=ETH_USDT), Reason.ASSET_FROZEN,
             "R-5.2.2.3-freeze")
    rid, ts = h.next_ids()
    rejected(h.apply(Withdraw(rid, ts, ALICE, "ETH", 1)), Reason.ASSET_FROZEN, "R-5.2.2.3-freeze")
    h.rest(ALICE, BUY, P - usdt("100"), Q)                  # BTC-USDT trades on


def test_a_restriction_until_a_time_lifts_itself():
    h = harness()
    rule = "R-4.2.4-over-trading-block"
    h.apply(h.op(RestrictAccount, ALICE, "", 3, h.now + 10 * S, rule, operator="surveillance"))
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.TRADING_RESTRICTED, rule)
    h.advance(10)
    h.rest(ALICE, BUY, P - usdt("100"), Q)


def test_a_runtime_threshold_change_takes_effect_and_changes_the_published_hash():
    h = harness()
    before = h.engine.shard.risk.rulebook.digest()
    acted, = h.apply(h.op(SetRiskRule, HOUSE, ORDER_RATE, "burst", "1"))
    assert (acted.target, acted.before, acted.after) == (f"{ORDER_RATE}.burst", "100", "1")
    assert h.engine.shard.risk.rulebook.digest() != before
    h.rest(ALICE, BUY, P - usdt("100"), Q)
    rejected(h.place(ALICE, BUY, P - usdt("100"), Q), Reason.RATE_LIMITED, ORDER_RATE)


# ---- bad operator input changes nothing and leaves no OperatorActed -------------------------

def op_scenarios():
    return {
        "no_reason": (Reason.REASON_REQUIRED, lambda h: h.op(FreezeAccount, ALICE, 1, reason=" ")),
        "unknown_operator": (Reason.UNKNOWN_OPERATOR, lambda h: h.op(FreezeAccount, ALICE, 1, operator="mallory")),
        "wrong_role": (Reason.OPERATOR_NOT_PERMITTED,
                       lambda h: h.op(FreezeAccount, ALICE, 1, operator="treasury-tom")),
        "bad_scope": (Reason.INVALID_FREEZE_SCOPE, lambda h: h.op(FreezeAccount, ALICE, 7)),
        "bad_restriction": (Reason.INVALID_RESTRICTION,
                            lambda h: h.op(RestrictAccount, ALICE, "", 1, 0, LADDER)),
        "unknown_rule": (Reason.UNKNOWN_RULE, lambda h: h.op(SetRiskRule, HOUSE, "R-9.9-nothing", "count", "1")),
        "bad_value": (Reason.INVALID_RULE_VALUE, lambda h: h.op(SetRiskRule, HOUSE, LADDER, "count", "many")),
        "unknown_key": (Reason.INVALID_RULE_VALUE, lambda h: h.op(SetRiskRule, HOUSE, LADDER, "colour", "1")),
        "unknown_asset": (Reason.UNKNOWN_ASSET, lambda h: h.op(FreezeAsset, HOUSE, "DOGE", 1)),
        "control_char": (Reason.TEXT_NOT_PRINTABLE, lambda h: h.op(FreezeAccount, ALICE, 1, reason="a\x00b")),
    }


SCENARIOS = {name: (reason, build) for name, (reason, build) in op_scenarios().items()}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_bad_operator_input_is_refused_changes_nothing_and_claims_no_success(name):
    reason, build = SCENARIOS[name]
    h = harness()
    assert_rejected(h, build(h), reason)


# ---- market modes and the circuit breaker ------------------------------------------------

def mode(h: Clocked, market: str, value: int, until_ns: int = 0, **kw) -> list:
    return h.apply(h.op(SetMarketMode, market, value, until_ns, **kw))


def test_a_halted_market_refuses_orders_and_amends_but_takes_cancels_then_resumes():
    h = harness()
    order = h.rest(ALICE, BUY, P - usdt("100"), Q)
    acted, = mode(h, BTC_USDT, 2)
    assert (acted.command, acted.before, acted.after) == ("set-market-mode", "open", "halted")
    rejected(h.place(BOB, SELL, P, Q), Reason.MARKET_HALTED, "R-5.2.2.2-market-mode")
    rejected(h.apply(h.amend_cmd(ALICE, order, price=P - usdt("200"))), Reason.MARKET_HALTED,
             "R-5.2.2.2-market-mode")
    assert type(h.apply(h.cancel_cmd(ALICE, order))[0]).__name__ == "OrderClosed"
    mode(h, BTC_USDT, 0)
    h.rest(BOB, SELL, P, Q)
    h.engine.check_invariants()


def test_a_reduce_only_spot_market_takes_no_new_orders():
    h = harness()
    mode(h, BTC_USDT, 1)
    rejected(h.place(BOB, SELL, P, Q), Reason.MARKET_REDUCE_ONLY, "R-5.2.2.2-market-mode")


def test_bad_market_mode_commands_are_refused():
    h = harness()
    for command, reason in ((h.op(SetMarketMode, "DOGE-USDT", 2, 0), Reason.UNKNOWN_MARKET),
                            (h.op(SetMarketMode, BTC_USDT, 5, 0), Reason.INVALID_MARKET_MODE),
                            (h.op(SetMarketMode, BTC_USDT, 2, 0, operator="treasury-tom"),
                             Reason.OPERATOR_NOT_PERMITTED),
                            (h.op(SetMarketMode, BTC_USDT, 2, 0, reason=""), Reason.REASON_REQUIRED)):
        events = h.apply(command)
        assert [Reason(e.reason) for e in events] == [reason]
    assert h.engine.markets[BTC_USDT].guard.mode == 0


BREAKER = "R-5.2.2.2-circuit-breaker"


def test_the_circuit_breaker_halts_a_market_that_moves_too_fast_and_reopens_after_cooling():
    h = harness({BREAKER: {"action": "restrict-open-close", "move_bps": 500, "window_s": 60, "cool_s": 300}})
    h.rest(ALICE, SELL, P, Q)
    h.place(BOB, BUY, P, Q)                                  # a trade at 50,000
    h.rest(ALICE, SELL, usdt("53000"), Q)
    h.place(BOB, BUY, usdt("53000"), Q)                      # +6% within the minute: halted
    guard = h.engine.markets[BTC_USDT].guard
    change = guard.changes[-1]
    assert (change.mode, change.rule, change.value, change.limit) == (2, BREAKER, 600, 500)
    rejected(h.place(BOB, BUY, P, Q), Reason.CIRCUIT_BREAKER, BREAKER)
    h.advance(300)
    h.rest(BOB, BUY, P, Q)                                   # cooled: open again
    assert guard.mode == 0


def test_the_circuit_breaker_under_alert_only_records_the_move():
    h = harness({BREAKER: {"move_bps": 500, "window_s": 60}})
    h.rest(ALICE, SELL, P, Q)
    h.place(BOB, BUY, P, Q)
    h.rest(ALICE, SELL, usdt("53000"), Q)
    h.place(BOB, BUY, usdt("53000"), Q)
    guard = h.engine.markets[BTC_USDT].guard
    assert guard.mode == 0 and guard.changes[-1].action == Action.ALERT
    h.rest(BOB, BUY, P, Q)


# ---- state ---------------------------------------------------------------------------------

def test_the_gate_state_survives_a_snapshot():
    h = harness({LADDER: {"count": 4}})
    churn(h, 8)
    h.apply(h.op(FreezeAccount, BOB, 2))
    h.apply(h.op(SetRiskRule, HOUSE, ORDER_RATE, "burst", "7"))
    engine = h.engine
    restored = restore_shard(engine.config, orjson.loads(orjson.dumps(shard_state(engine.shard),
                                                                      default=encode_shallow)))
    assert restored.canonical() == engine.shard.canonical()
    assert restored.risk.rulebook.digest() == engine.shard.risk.rulebook.digest()


def test_a_venue_without_a_rulebook_has_no_gate():
    engine = Engine(custom_config(lambda raw: raw.pop("risk")))
    assert engine.shard.risk is None and engine.markets[BTC_USDT].guard is None


# every reason the gate, the operator door and the market modes produce, each asserted above
COVERED = {reason for reason, _ in SCENARIOS.values()} | {
    Reason.RATE_LIMITED, Reason.TOO_MANY_OPEN_ORDERS, Reason.OPENING_RESTRICTED, Reason.TRADING_RESTRICTED,
    Reason.ACCOUNT_FROZEN, Reason.ACCOUNT_LOCKED, Reason.ASSET_FROZEN, Reason.PRICE_OUTSIDE_BAND,
    Reason.MARKET_HALTED, Reason.MARKET_REDUCE_ONLY, Reason.CIRCUIT_BREAKER, Reason.INVALID_MARKET_MODE}


# ---- the fused path under tight rules ----------------------------------------------------

def test_the_fused_path_under_tight_rules_gives_the_pipelines_events_and_state():
    """The differential suite (``tests/exchange/test_fused.py``) with every gate rule close to
    its threshold: buckets run dry and refill, the ladder warns and restricts, the open-order
    cap binds, the band refuses; the fused path's quiet checks must agree with ``check``."""
    from tests.exchange.test_fused import run_both, seeded_commands
    config = rules_config({REQUEST_RATE: {"burst": 30, "refill_per_s": 2000},
                           ORDER_RATE: {"burst": 8, "refill_per_s": 1000},
                           OPEN_ORDERS: {"base": 4, "step_equity": "10000", "per_step": 1, "max": 6},
                           LADDER: {"count": 9, "window_s": 1, "restrict_s": 1},
                           BAND: {"band_bps": 20}})
    commands = seeded_commands(11, 2_500)
    fused, pipeline, taken = run_both(commands, config,
                                      setup=lambda e: e.set_index_prices({"BTC": usdt("50000"), "ETH": usdt("3000"),
                                                                          "USDT": usdt("1")}))
    gate = fused.shard.risk
    assert taken > 30                                                         # the quiet paths ran
    assert any(r.steps for r in gate.accounts.values())                      # the ladder reached its count
    assert fused.shard.risk.canonical() == pipeline.shard.risk.canonical()
