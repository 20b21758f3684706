"""The withdrawal state machine (rulebook 4.4.2, 4.4.3, 5.2.2.3, 5.2.2.4): every state,
every refusal, each rule enforced, alerted or only recorded, and the funds held from
request to a final state."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from exchange.risk.rulebook import Action, RulebookError, default_rulebook
from exchange.risk.withdrawals import (BLOCKLIST_RULE, CREDENTIAL_RULE, FREEZE_RULE, LARGE_RULE, MARGIN_RULE,
                                       Firing, WithdrawalDesk, WithdrawalFacts, WithdrawalReason as R,
                                       WithdrawalState as S)

S_NS = 1_000_000_000
DAY_NS = 86_400 * S_NS
BTC = 100_000_000                       # satoshis
LARGE = 1_000 * BTC                     # the rulebook's 1,000 BTC line
T0 = 10 * DAY_NS
OK = WithdrawalFacts()
ADDRESS = "bc1q-customer"
BAD = "bc1q-scam"


def a_desk(rulebook=None, **limits) -> WithdrawalDesk:
    desk = WithdrawalDesk(rulebook or default_rulebook(), **limits)
    assert desk.block_address(BAD) is None
    return desk


def ask(desk, wid=1, ts=T0, amount=5 * BTC, value=5 * BTC, destination=ADDRESS, facts=OK, asset="BTC", account=7):
    return desk.request(ts, wid, account, asset, amount, destination, value, facts)


def states(outcome) -> list:
    return [state for _, state in outcome.withdrawal.history]


def test_request_with_a_small_value_is_approved_at_once_and_holds_its_amount():
    desk = a_desk()
    out = ask(desk)
    assert (out.refused, out.state, out.hold, out.fired, out.alert) == (None, S.APPROVED, 5 * BTC, (), False)
    assert states(out) == [S.REQUESTED, S.CHECKED, S.APPROVED]
    assert desk.held == {"BTC": 5 * BTC} and desk.pending() == [out.withdrawal]
    desk.check_invariants()


def test_approved_withdrawal_sent_then_confirmed_spends_its_hold():
    desk = a_desk()
    ask(desk)
    sent = desk.mark_sent(T0 + 5, 1, "tx-1")
    assert (sent.state, sent.withdrawal.txid, sent.hold, sent.release, sent.spent) == (S.SENT, "tx-1", 0, 0, 0)
    done = desk.confirm(T0 + 9, 1)
    assert (done.state, done.spent, done.release) == (S.CONFIRMED, 5 * BTC, 0)
    assert states(done) == [S.REQUESTED, S.CHECKED, S.APPROVED, S.SENT, S.CONFIRMED]
    assert desk.withdrawals[1].history[-1] == (T0 + 9, S.CONFIRMED)
    assert desk.held == {} and desk.pending() == []
    desk.check_invariants()


def test_large_withdrawal_is_queued_refused_before_24h_accepted_after_sent_and_confirmed():
    desk = a_desk()
    out = ask(desk, amount=1_001 * BTC, value=LARGE + 1)
    assert (out.state, out.withdrawal.review_until_ns, out.hold) == (S.QUEUED, T0 + DAY_NS, 1_001 * BTC)
    assert out.fired == (Firing(LARGE_RULE, Action.RESTRICT_OPEN, True),) and not out.alert
    assert states(out) == [S.REQUESTED, S.CHECKED, S.QUEUED]
    assert desk.due(T0 + DAY_NS - 1) == [] and desk.due(T0 + DAY_NS) == [out.withdrawal]
    before = desk.state_hash()
    early = desk.approve(T0 + DAY_NS - 1, 1, "ops-ann")
    assert (early.refused, early.state) == (R.REVIEW_NOT_DUE, S.QUEUED) and desk.state_hash() == before
    assert desk.mark_sent(T0 + 1, 1, "tx").refused == R.NOT_APPROVED
    approved = desk.approve(T0 + DAY_NS, 1, "ops-ann")
    assert (approved.refused, approved.state, approved.withdrawal.approver) == (None, S.APPROVED, "ops-ann")
    assert desk.mark_sent(T0 + DAY_NS + 1, 1, "tx-9").state == S.SENT
    done = desk.confirm(T0 + DAY_NS + 2, 1)
    assert (done.state, done.spent) == (S.CONFIRMED, 1_001 * BTC)
    assert states(done) == [S.REQUESTED, S.CHECKED, S.QUEUED, S.APPROVED, S.SENT, S.CONFIRMED]
    desk.check_invariants()


def test_withdrawal_worth_exactly_the_line_is_not_queued():
    assert ask(a_desk(), value=LARGE).state == S.APPROVED


def test_thresholds_come_from_the_rulebook_in_force():
    rulebook = default_rulebook().replace(LARGE_RULE, "value_btc", "10").replace(LARGE_RULE, "queue_s", 60)
    desk = a_desk(rulebook)
    out = ask(desk, value=10 * BTC + 1)
    assert (out.state, out.withdrawal.review_until_ns) == (S.QUEUED, T0 + 60 * S_NS)
    desk.rulebook = default_rulebook()                      # a later change does not move a queued review
    assert desk.approve(T0 + 60 * S_NS, 1, "ops").state == S.APPROVED


def test_withdrawal_inside_the_credential_lock_is_rejected_and_holds_nothing():
    desk = a_desk()
    changed = T0 - DAY_NS + 1
    out = ask(desk, facts=WithdrawalFacts(last_credential_change_ns=changed))
    assert (out.refused, out.state, out.reason, out.rule_id) == (None, S.REJECTED, R.CREDENTIAL_CHANGED,
                                                                 CREDENTIAL_RULE)
    assert (out.hold, out.release) == (0, 0) and desk.held == {}
    assert states(out) == [S.REQUESTED, S.REJECTED]
    assert desk.get(1) == out.withdrawal                     # on file for support (4.4.3)
    later = ask(desk, wid=2, ts=changed + DAY_NS, facts=WithdrawalFacts(last_credential_change_ns=changed))
    assert later.state == S.APPROVED
    desk.check_invariants()


@pytest.mark.parametrize("facts,reason,rule_id", [
    (WithdrawalFacts(account_frozen_withdrawal=True), R.WITHDRAWALS_FROZEN, FREEZE_RULE),
    (WithdrawalFacts(asset_withdrawals_suspended=True), R.WITHDRAWALS_FROZEN, FREEZE_RULE),
    (WithdrawalFacts(below_initial_margin=True), R.BELOW_INITIAL_MARGIN, MARGIN_RULE),
])
def test_request_with_a_blocking_fact_is_rejected_with_its_rule(facts, reason, rule_id):
    desk = a_desk()
    out = ask(desk, facts=facts)
    assert (out.state, out.reason, out.rule_id, out.hold, out.alert) == (S.REJECTED, reason, rule_id, 0, False)
    assert desk.held == {}


def test_blocklisted_destination_is_rejected_and_alerted_until_unblocked():
    desk = a_desk()
    out = ask(desk, destination=BAD)
    assert (out.state, out.reason, out.rule_id, out.alert) == (S.REJECTED, R.BLOCKLISTED_DESTINATION,
                                                               BLOCKLIST_RULE, True)
    assert out.fired == (Firing(BLOCKLIST_RULE, Action.FREEZE, True),)
    desk.unblock_address(BAD)
    assert (ask(desk, wid=2, destination=BAD).state, desk.blocklist) == (S.APPROVED, set())


def test_first_rule_in_order_decides_and_every_firing_is_recorded():
    desk = a_desk()
    facts = WithdrawalFacts(account_frozen_withdrawal=True, last_credential_change_ns=T0, below_initial_margin=True)
    out = ask(desk, destination=BAD, value=LARGE + 1, facts=facts)
    assert (out.reason, out.rule_id, out.alert) == (R.WITHDRAWALS_FROZEN, FREEZE_RULE, True)
    assert [f.rule_id for f in out.fired] == [FREEZE_RULE, CREDENTIAL_RULE, MARGIN_RULE, BLOCKLIST_RULE, LARGE_RULE]
    assert out.withdrawal.fired == out.fired


RULE_CASES = [
    (FREEZE_RULE, dict(facts=WithdrawalFacts(account_frozen_withdrawal=True))),
    (CREDENTIAL_RULE, dict(facts=WithdrawalFacts(last_credential_change_ns=T0 - 1))),
    (BLOCKLIST_RULE, dict(destination=BAD)),
    (LARGE_RULE, dict(value=LARGE + 1)),
]


@pytest.mark.parametrize("rule_id,args", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_under_action_none_only_records(rule_id, args):
    desk = a_desk(default_rulebook().replace(rule_id, "action", "none"))
    out = ask(desk, **args)
    assert (out.state, out.reason, out.rule_id, out.alert, out.hold) == (S.APPROVED, None, None, False, 5 * BTC)
    assert out.fired == (Firing(rule_id, Action.NONE, False),)
    assert out.withdrawal.review_until_ns is None


@pytest.mark.parametrize("rule_id,args", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_under_action_alert_proceeds_and_alerts(rule_id, args):
    desk = a_desk(default_rulebook().replace(rule_id, "action", "alert"))
    out = ask(desk, **args)
    assert (out.state, out.alert, out.fired) == (S.APPROVED, True, (Firing(rule_id, Action.ALERT, False),))


def test_margin_line_is_no_rulebook_entry_so_it_is_always_enforced():
    with pytest.raises(RulebookError):
        default_rulebook().replace(MARGIN_RULE, "action", "none")
    assert ask(a_desk(), facts=WithdrawalFacts(below_initial_margin=True)).fired == (
        Firing(MARGIN_RULE, Action.FREEZE, True),)


@pytest.mark.parametrize("state", ["queued", "approved"])
def test_operator_reject_before_sending_releases_the_hold(state):
    desk = a_desk()
    ask(desk, value=LARGE + 1 if state == "queued" else 1)
    out = desk.reject(T0 + 3, 1, "ops-bob", "customer could not be reached by phone")
    assert (out.state, out.reason, out.release, out.spent) == (S.REJECTED, R.OPERATOR_REJECTED, 5 * BTC, 0)
    assert (out.withdrawal.note, out.withdrawal.approver, out.rule_id) == ("customer could not be reached by phone",
                                                                           "ops-bob", None)
    assert desk.held == {}
    desk.check_invariants()


@pytest.mark.parametrize("sent", [False, True])
def test_failed_broadcast_returns_the_funds(sent):
    desk = a_desk()
    ask(desk)
    if sent:
        desk.mark_sent(T0 + 1, 1, "tx-1")
    out = desk.fail(T0 + 2, 1, "dropped from the mempool")
    assert (out.state, out.reason, out.release) == (S.REJECTED, R.BROADCAST_FAILED, 5 * BTC)
    assert desk.held == {}


def _queued_sent_final(desk):
    """1: queued, 2: approved, 3: sent, 4: confirmed, 5: rejected."""
    ask(desk, wid=1, value=LARGE + 1)
    for wid in (2, 3, 4):
        ask(desk, wid=wid)
    desk.mark_sent(T0, 3, "tx-3")
    desk.mark_sent(T0, 4, "tx-4")
    desk.confirm(T0, 4)
    ask(desk, wid=5, destination=BAD)


LONG = "x" * 257
COMMAND_REFUSALS = [
    ("approve", (T0 + DAY_NS, 99, "ops"), R.UNKNOWN_WITHDRAWAL),
    ("approve", (T0 + DAY_NS, 1, ""), R.INVALID_OPERATOR),
    ("approve", (T0 + DAY_NS, 1, "o" * 33), R.INVALID_OPERATOR),
    ("approve", (T0 + DAY_NS, 4, "ops"), R.ALREADY_FINAL),
    ("approve", (T0 + DAY_NS, 5, "ops"), R.ALREADY_FINAL),
    ("approve", (T0 + DAY_NS, 2, "ops"), R.NOT_QUEUED),
    ("approve", (T0 + DAY_NS, 3, "ops"), R.NOT_QUEUED),
    ("approve", (T0 + DAY_NS - 1, 1, "ops"), R.REVIEW_NOT_DUE),
    ("reject", (T0, 99, "ops", "no"), R.UNKNOWN_WITHDRAWAL),
    ("reject", (T0, 1, None, "no"), R.INVALID_OPERATOR),
    ("reject", (T0, 1, "ops", LONG), R.NOTE_TOO_LONG),
    ("reject", (T0, 4, "ops", "no"), R.ALREADY_FINAL),
    ("reject", (T0, 3, "ops", "no"), R.ALREADY_SENT),
    ("mark_sent", (T0, 99, "tx"), R.UNKNOWN_WITHDRAWAL),
    ("mark_sent", (T0, 2, ""), R.INVALID_TXID),
    ("mark_sent", (T0, 5, "tx"), R.ALREADY_FINAL),
    ("mark_sent", (T0, 3, "tx"), R.ALREADY_SENT),
    ("mark_sent", (T0, 1, "tx"), R.NOT_APPROVED),
    ("confirm", (T0, 99), R.UNKNOWN_WITHDRAWAL),
    ("confirm", (T0, 4), R.ALREADY_FINAL),
    ("confirm", (T0, 2), R.NOT_SENT),
    ("confirm", (T0, 1), R.NOT_SENT),
    ("fail", (T0, "1", "x"), R.UNKNOWN_WITHDRAWAL),
    ("fail", (T0, 2, LONG), R.NOTE_TOO_LONG),
    ("fail", (T0, 5, "x"), R.ALREADY_FINAL),
    ("fail", (T0, 1, "x"), R.NOT_APPROVED),
]


@pytest.mark.parametrize("command,args,reason", COMMAND_REFUSALS,
                         ids=[f"{c}-{r.name}-{i}" for i, (c, _, r) in enumerate(COMMAND_REFUSALS)])
def test_illegal_command_is_refused_with_its_reason_and_changes_nothing(command, args, reason):
    desk = a_desk()
    _queued_sent_final(desk)
    before = (desk.state_hash(), dict(desk.held))
    out = getattr(desk, command)(*args)
    assert (out.refused, out.reason, out.hold, out.release, out.spent) == (reason, reason, 0, 0, 0)
    assert out.withdrawal == desk.get(args[1]) if type(args[1]) is int else out.withdrawal is None
    assert (desk.state_hash(), desk.held) == before


REQUEST_REFUSALS = [
    (dict(wid=0), R.INVALID_WITHDRAWAL_ID),
    (dict(wid=True), R.INVALID_WITHDRAWAL_ID),
    (dict(wid=2**63), R.INVALID_WITHDRAWAL_ID),
    (dict(wid=1), R.DUPLICATE_WITHDRAWAL),
    (dict(account=0), R.INVALID_ACCOUNT),
    (dict(asset=""), R.INVALID_ASSET),
    (dict(asset="A" * 33), R.INVALID_ASSET),
    (dict(amount=0), R.NON_POSITIVE_AMOUNT),
    (dict(amount=-5), R.NON_POSITIVE_AMOUNT),
    (dict(amount=1.5), R.NON_POSITIVE_AMOUNT),
    (dict(amount=2**63 - 1), R.VALUE_OUT_OF_RANGE),          # with the 5 BTC already held, beyond 64 bits
    (dict(value=-1), R.VALUE_OUT_OF_RANGE),
    (dict(ts=-1), R.VALUE_OUT_OF_RANGE),
    (dict(destination=""), R.INVALID_DESTINATION),
    (dict(destination="a" * 129), R.INVALID_DESTINATION),
]


@pytest.mark.parametrize("args,reason", REQUEST_REFUSALS, ids=[f"{r.name}-{i}" for i, (_, r) in
                                                                enumerate(REQUEST_REFUSALS)])
def test_malformed_request_is_refused_and_changes_nothing(args, reason):
    desk = a_desk()
    ask(desk, wid=1)
    before = desk.state_hash()
    out = ask(desk, **{"wid": 2, **args})
    assert (out.refused, out.hold, out.fired) == (reason, 0, ())
    assert desk.state_hash() == before


def test_a_full_desk_drops_its_earliest_final_record_and_refuses_only_when_all_are_open():
    desk = a_desk(records_max=3)
    ask(desk, wid=5)                                          # open (approved)
    ask(desk, wid=2, destination=BAD, ts=T0 + 1)              # final: rejected
    ask(desk, wid=9, destination=BAD, ts=T0 + 2)              # final
    assert ask(desk, wid=4).state == S.APPROVED               # the earliest requested final one made room
    assert sorted(desk.withdrawals) == [4, 5, 9]
    before = desk.state_hash()
    assert ask(desk, wid=7, destination=BAD).state == S.REJECTED and sorted(desk.withdrawals) == [4, 5, 7]
    assert ask(desk, wid=8).state == S.APPROVED               # 7 went: now every record is open
    assert desk.state_hash() != before
    full = desk.state_hash()
    assert ask(desk, wid=10).refused == R.DESK_FULL and desk.state_hash() == full
    desk.check_invariants()


def test_prune_drops_final_records_before_a_time():
    desk = a_desk(records_max=2)
    ask(desk, wid=1)
    ask(desk, wid=2, destination=BAD, ts=T0 + 1)
    assert desk.prune(T0 + 1) == []                          # rejected at T0 + 1: not before it
    assert [w.withdrawal_id for w in desk.prune(T0 + 2)] == [2]
    desk.check_invariants()


def test_a_restored_desk_drops_the_same_record_as_the_live_one():
    desk = a_desk(records_max=3)
    ask(desk, wid=9, destination=BAD)                         # requested first, the largest id
    ask(desk, wid=2, destination=BAD, ts=T0 + 1)
    ask(desk, wid=5)
    restored = WithdrawalDesk.restore(desk.snapshot(), default_rulebook(), records_max=3)
    for d in (desk, restored):
        ask(d, wid=11)
    assert sorted(desk.withdrawals) == sorted(restored.withdrawals) == [2, 5, 11]
    assert desk.state_hash() == restored.state_hash()


def test_blocklist_refuses_bad_addresses_and_has_a_limit():
    desk = WithdrawalDesk(default_rulebook(), blocklist_max=1)
    assert desk.block_address("") == R.INVALID_DESTINATION
    assert desk.block_address(3) == R.INVALID_DESTINATION
    assert desk.block_address("a") is None and desk.block_address("a") is None
    assert desk.block_address("b") == R.BLOCKLIST_FULL and desk.blocklist == {"a"}


def test_views_list_pending_withdrawals_by_account_and_destination():
    desk = a_desk()
    ask(desk, wid=3, account=8)
    ask(desk, wid=1, account=7, destination="elsewhere")
    ask(desk, wid=2, account=7, destination=BAD)
    assert [w.withdrawal_id for w in desk.pending()] == [1, 3]
    assert [w.withdrawal_id for w in desk.pending(account=7)] == [1]
    assert [w.withdrawal_id for w in desk.pending(destination="elsewhere")] == [1]
    assert desk.get(2).state == S.REJECTED and desk.get(42) is None


def test_snapshot_is_plain_json_and_restores_the_same_state():
    desk = a_desk()
    _queued_sent_final(desk)
    ask(desk, wid=6, asset="ETH", amount=3, facts=WithdrawalFacts(last_credential_change_ns=T0))
    ask(desk, wid=7, asset="ETH", amount=4, value=LARGE + 5)
    plain = json.loads(json.dumps(desk.snapshot()))
    restored = WithdrawalDesk.restore(plain, default_rulebook())
    assert restored.state_hash() == desk.state_hash() and restored.held == desk.held
    assert restored.get(1) == desk.get(1) and restored.get(6) == desk.get(6)
    assert restored.approve(T0 + DAY_NS, 1, "ops").state == S.APPROVED
    with pytest.raises(ValueError):
        WithdrawalDesk.restore({**plain, "format": 99}, default_rulebook())


# ---- conservation: a reference model over random sequences ---------------------------------
OPS = st.one_of(
    st.tuples(st.just("request"), st.integers(1, 6), st.sampled_from(["BTC", "ETH"]), st.integers(1, 10**6),
              st.booleans(), st.booleans()),
    st.tuples(st.just("approve"), st.integers(1, 7)),
    st.tuples(st.just("reject"), st.integers(1, 7)),
    st.tuples(st.just("mark_sent"), st.integers(1, 7)),
    st.tuples(st.just("confirm"), st.integers(1, 7)),
    st.tuples(st.just("fail"), st.integers(1, 7)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(OPS, st.integers(0, DAY_NS // 2)), max_size=40))
def test_funds_held_always_equal_the_pending_amounts(steps):
    desk = a_desk()
    model: dict[int, list] = {}            # id -> [state, asset, amount, review_until]
    tally: dict[str, int] = {}             # what the caller holds from the outcomes
    ts = T0
    for op, advance in steps:
        ts += advance
        kind, wid = op[0], op[1]
        known = model.get(wid)
        state = known[0] if known else None
        if kind == "request":
            _, _, asset, amount, large, blocked = op
            out = ask(desk, wid=wid, ts=ts, asset=asset, amount=amount, value=LARGE + 1 if large else 1,
                      destination=BAD if blocked else ADDRESS)
            expect = None if known else (S.REJECTED if blocked else S.QUEUED if large else S.APPROVED)
            if not known:
                model[wid] = [expect, asset, amount, ts + DAY_NS if large else None]
        elif kind == "approve":
            out = desk.approve(ts, wid, "ops")
            expect = S.APPROVED if state == S.QUEUED and ts >= known[3] else None
        elif kind == "reject":
            out = desk.reject(ts, wid, "ops", "no")
            expect = S.REJECTED if state in (S.QUEUED, S.APPROVED) else None
        elif kind == "mark_sent":
            out = desk.mark_sent(ts, wid, f"tx-{wid}")
            expect = S.SENT if state == S.APPROVED else None
        elif kind == "confirm":
            out = desk.confirm(ts, wid)
            expect = S.CONFIRMED if state == S.SENT else None
        else:
            out = desk.fail(ts, wid, "dropped")
            expect = S.REJECTED if state in (S.APPROVED, S.SENT) else None
        assert (out.refused is None) == (expect is not None), (op, state, out)
        if expect is not None:
            assert out.state == expect
            model[wid][0] = expect
            asset = model[wid][1]
            tally[asset] = tally.get(asset, 0) + out.hold - out.release - out.spent
        pending: dict[str, int] = {}
        for w_state, asset, amount, _ in model.values():
            if w_state not in (S.CONFIRMED, S.REJECTED):
                pending[asset] = pending.get(asset, 0) + amount
        assert desk.held == pending
        assert {a: v for a, v in tally.items() if v} == pending
        desk.check_invariants()
    restored = WithdrawalDesk.restore(json.loads(json.dumps(desk.snapshot())), default_rulebook())
    assert restored.state_hash() == desk.state_hash()
