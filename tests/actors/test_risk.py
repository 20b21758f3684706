"""The risk rulebook on real Ray actors: operator actions through the risk desk, refusals
citing their rule, the cancel ladder end to end after a run-time threshold change, market
modes, bad operator input leaving no audit entry, and the audit chains verifying (and
failing once altered: ``exchange audit verify --file``)."""
from __future__ import annotations

import json

from exchange.core.reasons import Reason
from exchange.messages.records import RequestWithdrawal, WithdrawalUpdated
from exchange.risk.withdrawals import WithdrawalState
from exchange.risk.rulebook import Action
from ops.cli import main as cli
from tests.actors.conftest import eventually, funded, settle

LADDER, LARGE = "R-4.2.5-cancel-ladder", "R-4.4.2-large-withdrawal"
A, B = 7_101, 7_102


def test_freeze_and_lock_refuse_with_their_rule_and_are_audited(operator, client):
    funded(client, A, B)
    desk = operator.risk_desk("demo-risk")
    resting = client.place_order(A, "BTC-USDT", "buy", "0.01", price="40000.00")
    assert resting.ok
    acted, = desk.freeze_account(A, "trading", "phishing report #42")
    assert (acted.operator, acted.after, acted.rule) == ("demo-risk", "trading", "R-5.2.2.3-freeze")
    refused = client.place_order(A, "BTC-USDT", "buy", "0.01", price="40000.00")
    assert (refused.reason, refused.rule) == (Reason.ACCOUNT_FROZEN, "R-5.2.2.3-freeze")
    assert client.cancel_order(A, "BTC-USDT", resting.order_id).status == "cancelled"    # cancels still work
    desk.freeze_account(A, "none", "cleared by compliance")
    assert desk.lock_account(B, True, "credential stuffing from new devices")[0].after == "locked"
    locked = client.withdraw(B, "USDT", "1")
    assert (locked.reason, locked.rule) == (Reason.ACCOUNT_LOCKED, "R-4.1.4-account-lock")
    desk.lock_account(B, False, "identity confirmed by video call")
    assert client.withdraw(B, "USDT", "1").ok
    entries = desk.audit(account=A)
    assert [(e["what"], e["after"], e["why"]) for e in entries] == [
        ("freeze-account", "trading", "phishing report #42"), ("freeze-account", "none", "cleared by compliance")]


def test_a_halted_market_refuses_orders_then_resumes(operator, client):
    desk = operator.risk_desk("demo-risk")
    assert desk.set_market_mode("ETH-USDT", "halted", "main-net upgrade")[0].after == "halted"
    refused = client.place_order(A, "ETH-USDT", "buy", "0.1", price="2000.00")
    assert (refused.reason, refused.rule) == (Reason.MARKET_HALTED, "R-5.2.2.2-market-mode")
    desk.set_market_mode("ETH-USDT", "open", "upgrade done")
    assert client.place_order(A, "ETH-USDT", "buy", "0.1", price="2000.00").ok
    assert desk.market_view("ETH-USDT")["mode"] == "open"


def test_the_cancel_ladder_end_to_end_after_a_run_time_threshold_change(operator, client):
    desk = operator.risk_desk("demo-risk")
    before = desk.rulebook()["digest"]
    answers = desk.set_rule(LADDER, "count", "6", "tight threshold for the test")
    assert answers.pop("surveillance") == {"ok": True}
    assert all(type(events[0]).__name__ == "OperatorActed" for events in answers.values())
    assert desk.rulebook()["digest"] != before

    def churn(times: int) -> list:
        actions = []
        for _ in range(times):
            placed = client.place_order(B, "BTC-USDT", "buy", "0.01", price="40000.00")
            actions += placed.risk_actions
            actions += client.cancel_order(B, "BTC-USDT", placed.order_id).risk_actions
        return actions
    assert [a.action for a in churn(3)] == [Action.ALERT]
    assert [a.action for a in churn(3)] == [Action.RESTRICT_OPEN]
    refused = client.place_order(B, "BTC-USDT", "buy", "0.01", price="40000.00")
    assert (refused.reason, refused.rule) == (Reason.OPENING_RESTRICTED, LADDER)
    assert client.place_order(B, "ETH-USDT", "buy", "0.1", price="2000.00").ok      # another market is free
    view = desk.risk_view(B)
    assert [(r["market"], r["rule"], r["action"]) for r in view["restrictions"]] == \
        [("BTC-USDT", LADDER, "restrict-open")]
    auto = [e for e in desk.audit(account=B, rule=LADDER) if e["who"] == "auto"]
    assert [e["what"] for e in auto] == ["rule-alert", "rule-restrict-open"]
    desk.set_rule(LADDER, "count", "500", "back to the rulebook's value")


def test_bad_operator_input_is_refused_and_leaves_no_audit_entry(operator, client):
    desk = operator.risk_desk("demo-risk")
    count = len(desk.audit())
    assert operator.risk_desk("mallory").freeze_account(A, "both", "x")[0].reason == Reason.UNKNOWN_OPERATOR
    assert operator.risk_desk("demo-treasury").freeze_account(A, "both", "x")[0].reason == \
        Reason.OPERATOR_NOT_PERMITTED
    assert desk.freeze_account(A, "both", "")[0].reason == Reason.REASON_REQUIRED
    assert desk.restrict_account(A, "restrict-open", "x", market="DOGE-USDT")[0].reason == Reason.UNKNOWN_MARKET
    assert desk.set_market_mode("BTC-USDT", "halted", " ")[0].reason == Reason.REASON_REQUIRED
    digest = desk.rulebook()["digest"]
    refused = operator.risk_desk("demo-treasury").set_rule(LADDER, "count", "7", "not my role")
    assert list(refused) == ["admin"] and refused["admin"][0].reason == Reason.OPERATOR_NOT_PERMITTED  # no actor
    assert desk.rulebook()["digest"] == digest                                                       # reached
    blocked = desk.block_address("bc1q-scam", True, "scam report #9")             # a risk operator's, on every shard
    assert [events[0].command for events in blocked.values()] == ["block-address"] * desk.shards
    assert {events[0].after for events in desk.block_address("bc1q-scam", False, "cleared").values()} == {"allowed"}
    count = len(desk.audit())
    assert len(desk.audit()) == count
    assert client.place_order(A, "BTC-USDT", "buy", "0.01", price="40000.00").ok


def test_a_compensation_from_the_insurance_fund_lands_once_on_the_record(operator, client):
    account, perp = 7_103, "BTC-USDT-PERP"
    funded(client, account)
    unit = 10 ** client.config.assets["USDT"].scale
    before, fund = client.balances(account)["USDT"][0], client.perp_fund()["balances"][perp]
    assert operator.risk_desk("demo-risk").compensate(account, perp, unit, "wrong role")["refused"] == \
        "OPERATOR_NOT_PERMITTED"
    assert operator.risk_desk("demo-treasury").compensate(99_999, perp, unit, "no such account")["refused"] == \
        "UNKNOWN_ACCOUNT"
    paid = operator.risk_desk("demo-treasury").compensate(account, perp, 250 * unit, "wrong index fill, incident 7")
    assert (paid["refused"], paid["delivered"], paid["fund"]["balances"][perp]) == (None, True, fund - 250 * unit)
    assert client.balances(account)["USDT"][0] - before == 250 * unit
    kind, amount, details = client.perp_fund_entries()[-1][1], client.perp_fund_entries()[-1][3], \
        dict(map(tuple, client.perp_fund_entries()[-1][5]))
    assert (kind, amount, details["account"], details["operator"]) == (7, -250 * unit, account, "demo-treasury")
    audited = operator.risk_desk("demo-risk").audit(account=account, rule="R-5.2.2.5-compensation")
    assert [(e["who"], e["what"], e["why"]) for e in audited] == [
        ("demo-treasury", "compensation", "wrong index fill, incident 7")]
    assert settle(client)["ok"]                              # the fund's loss is the account's gain


def test_raising_a_perpetual_market_s_maintenance_rate_reaches_every_shard(operator):
    desk, perp = operator.risk_desk("demo-risk"), "BTC-USDT-PERP"
    answers = desk.raise_maintenance_margin(perp, "0.02", "one-sided market after a listing")
    assert len(answers) == desk.shards
    assert {events[0].after for events in answers.values()} == {"maintenance 0.02 initial 0.025"}
    assert {Reason(events[0].reason) for events in desk.raise_maintenance_margin(perp, "0.001", "lower").values()} == \
        {Reason.INVALID_MAINTENANCE_RATE}
    assert {events[0].after for events in desk.raise_maintenance_margin(perp, "0", "calm again").values()} == \
        {"maintenance 0.005 initial 0.01"}
    assert len(desk.audit(rule="R-5.2.2.3-maintenance-margin")) == 2 * desk.shards


def test_every_audit_chain_verifies_and_an_altered_export_fails(operator, tmp_path, capsys):
    desk = operator.risk_desk("demo-risk")
    assert all(ok for ok, _, _ in desk.verify_audit().values())
    chains = desk.chains()
    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"chains": chains}))
    assert cli(["audit", "verify", "--file", str(path)]) == 0
    chain = next(c for c in chains if c["entries"])
    chain["entries"][0][7] = "nothing happened"                # the reason of the first entry
    path.write_text(json.dumps({"chains": chains}))
    assert cli(["audit", "verify", "--file", str(path)]) == 1
    assert "altered" in capsys.readouterr().out


def cross(client, seller: int, buyer: int, quantity: str = "0.3") -> None:
    assert client.place_order(seller, "BTC-USDT", "sell", quantity, price="50000.00").ok
    assert client.place_order(buyer, "BTC-USDT", "buy", quantity, price="50000.00").status == "filled"


def test_a_wash_trade_alert_between_linked_accounts(operator, client):
    desk = operator.risk_desk("demo-risk")
    c, d = 7_201, 7_202
    funded(client, c, d)
    assert desk.link_accounts(c, d, "suspected", "same device fingerprint")["ok"]
    assert not operator.risk_desk("demo-treasury").link_accounts(c, d, "suspected", "x")["ok"]
    desk.set_rule("R-4.2.1-wash-trade", "volume_btc", "0.5", "a low threshold for the test")
    cross(client, c, d)
    cross(client, d, c)
    alert, = eventually(lambda: desk.alerts(rule="R-4.2.1-wash-trade", account=c))
    assert (alert["accounts"], alert["action"]) == ([c, d], "none")       # the rulebook's start: record only
    assert alert["figures"]["volume_btc"] == 60_000_000 and alert["figures"]["threshold_btc"] == 50_000_000
    whats = [e["what"] for e in desk.audit(account=c) if e["chain"] == "surveillance"]
    assert whats == ["link-accounts", "alert-none"]
    assert client.place_order(c, "BTC-USDT", "buy", "0.01", price="40000.00").ok    # none: nothing restricted
    desk.set_rule("R-4.2.1-wash-trade", "volume_btc", "1000", "back to the rulebook's value")


def test_over_trading_past_the_block_level_restricts_the_account_on_its_shard(operator, client):
    desk = operator.risk_desk("demo-risk")
    e, f = 7_301, 7_302
    funded(client, e, f)
    rule = "R-4.2.4-over-trading-block"
    desk.set_rule(rule, "volume_btc", "0.5", "a low threshold for the test")
    desk.set_rule(rule, "restrict_s", "600", "ten minutes")
    cross(client, e, f)
    cross(client, f, e)
    restricted = eventually(lambda: desk.risk_view(e)["restrictions"])
    assert [(r["rule"], r["action"]) for r in restricted] == [(rule, "restrict-open-close")]
    refused = client.place_order(e, "BTC-USDT", "buy", "0.01", price="40000.00")
    assert (refused.reason, refused.rule) == (Reason.TRADING_RESTRICTED, rule)
    assert desk.surveillance_stats()["restrictions_sent"] >= 2
    desk.restrict_account(e, "none", "reviewed: a market maker's hedge", rule=rule)
    assert client.place_order(e, "BTC-USDT", "buy", "0.01", price="40000.00").ok
    desk.set_rule(rule, "volume_btc", "5000", "back to the rulebook's value")


def test_a_large_withdrawal_is_queued_approved_and_paid_by_the_treasury_from_cold_through_hot(operator, client):
    desk, treasury = operator.risk_desk("demo-risk"), operator.risk_desk("demo-treasury")
    whale = 7_401
    funded(client, whale, btc="0.00000001")
    desk.set_rule(LARGE, "queue_s", "2", "a 2 s review for the test")
    desk.receive_on_chain(whale, "BTC", 1_500 * 10**8)                # on chain: credited at 3 confirmations
    assert eventually(lambda: client.balances(whale)["BTC"][0] == 1_500 * 10**8 + 1, 20)
    view = treasury.treasury_view()
    assert view["hot"]["BTC"] == 100 * 10**8 and view["cold"]["BTC"] == 1_400 * 10**8      # swept over the ceiling
    [events] = client.execute([RequestWithdrawal(client.next_request_id(), 0, whale, "BTC", 1_200 * 10**8,
                                                 "bc1q-whale")])
    queued = next(e for e in events if type(e) is WithdrawalUpdated)
    assert (WithdrawalState(queued.state), queued.rule) == (WithdrawalState.QUEUED, LARGE)
    early = treasury.review_withdrawal(whale, queued.withdrawal, True, "called the customer")
    assert Reason(early[0].reason) == Reason.REVIEW_NOT_DUE
    assert eventually(lambda: _approved(treasury, whale, queued.withdrawal), 10)
    refills = eventually(lambda: treasury.treasury_view()["refills"], 10)    # hot holds 100: cold must refill
    [(refill, (_, amount))] = refills.items()
    assert amount == 1_100 * 10**8
    assert not operator.risk_desk("demo-risk").approve_refill(int(refill), "x")["ok"]     # the treasury role only
    assert treasury.approve_refill(int(refill), "signed by two keyholders")["ok"]
    assert eventually(lambda: [w["state"] for w in treasury.withdrawals(whale)] == [], 20)  # confirmed: final
    view = treasury.treasury_view()
    assert view["paid"]["BTC"] == 1_200 * 10**8 and view["discrepancies"] == []
    assert client.balances(whale)["BTC"] == (300 * 10**8 + 1, 0)
    desk.set_rule(LARGE, "queue_s", "86400", "back to the rulebook's 24 h")


def _approved(treasury, account: int, withdrawal: int) -> bool:
    events = treasury.review_withdrawal(account, withdrawal, True, "called back: approved")
    return any(type(e) is WithdrawalUpdated and WithdrawalState(e.state) == WithdrawalState.APPROVED for e in events)
