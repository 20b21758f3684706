"""The hash-chained audit trail (``exchange.risk.audit``): operator and automatic actions
are recorded with who, when, what, why, before/after and rule; any alteration, removal or
reordering is detected; refused commands leave nothing."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exchange.messages.records import FreezeAccount, RestrictAccount, SetMarketMode, SetRiskRule
from exchange.risk.audit import GENESIS, AuditLog, verify
from tests.exchange.risk.test_gate import ALICE, BTC_USDT, HOUSE, LADDER, churn, harness


def filled_log(n: int, entries_max: int = 1_000) -> AuditLog:
    log = AuditLog("test", entries_max)
    for i in range(n):
        log.append(i * 10, f"op{i % 3}", "freeze-account", str(i % 5), "none", "trading", f"why {i}", "R-x")
    return log


def test_a_clean_chain_verifies():
    log = filled_log(20)
    assert verify(list(log.entries)) == (True, None, "ok")


def test_an_altered_removed_or_reordered_entry_is_named():
    entries = list(filled_log(10).entries)
    altered = entries[:4] + [entries[4]._replace(after="none")] + entries[5:]
    assert verify(altered)[:2] == (False, 5)
    assert verify(entries[:3] + entries[4:])[:2] == (False, 5)
    swapped = entries[:2] + [entries[3], entries[2]] + entries[4:]
    assert verify(swapped)[:2] == (False, 4)
    forged = entries[:6] + [entries[6]._replace(why="x", hash="f" * 64)] + entries[7:]
    assert not verify(forged)[0]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 15), st.data())
def test_any_single_field_change_breaks_the_chain(n, keep, data):
    log = filled_log(n, entries_max=keep)
    entries = list(log.entries)
    assert verify(entries, log.base)[0]
    i = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["ts_ns", "who", "what", "target", "before", "after", "why", "rule"]))
    value = getattr(entries[i], field)
    changed = value + 1 if type(value) is int else value + "!"
    entries[i] = entries[i]._replace(**{field: changed})
    ok, seq, _ = verify(entries, log.base)
    assert not ok and seq == entries[i].seq


def test_a_bounded_log_still_verifies_from_its_base_and_counts_what_it_dropped():
    log = filled_log(30, entries_max=10)
    assert len(log.entries) == 10 and log.dropped == 20 and log.base != GENESIS
    assert verify(list(log.entries), log.base)[0]
    assert not verify(list(log.entries))[0]              # not from the genesis: the drop is visible


def test_operator_and_automatic_actions_land_in_the_shards_chain_and_refusals_do_not():
    h = harness({LADDER: {"count": 4}})
    audit = h.engine.shard.risk.audit
    h.apply(h.op(FreezeAccount, ALICE, 1, reason="call from compliance"))
    h.apply(h.op(FreezeAccount, ALICE, 0, operator="mallory"))               # refused: unknown operator
    h.apply(h.op(FreezeAccount, ALICE, 0))
    churn(h, 4)                                                              # the ladder's warning
    h.apply(h.op(SetRiskRule, HOUSE, LADDER, "count", "8", operator="treasury-tom"))   # refused: role
    h.apply(h.op(RestrictAccount, ALICE, BTC_USDT, 2, 0, LADDER, reason="manual"))
    kinds = [(e.who, e.what, e.target, e.before, e.after, e.rule) for e in audit.entries]
    assert kinds == [
        ("risk-ann", "freeze-account", "1", "none", "trading", "R-5.2.2.3-freeze"),
        ("risk-ann", "freeze-account", "1", "trading", "none", "R-5.2.2.3-freeze"),
        ("auto", "rule-alert", f"1/{BTC_USDT}", "", "", LADDER),
        ("risk-ann", "restrict-account", f"1/{BTC_USDT}", "none", "restrict-open until lifted", LADDER)]
    assert audit.entries[0].why == "call from compliance"
    assert verify(list(audit.entries))[0]
    assert [e.what for e in audit.query(target="1", who="risk-ann")] == ["freeze-account"] * 2 + ["restrict-account"]
    assert [e.what for e in audit.query(rule=LADDER)] == ["rule-alert", "restrict-account"]
    first = audit.entries[0].ts_ns
    assert [e.seq for e in audit.query(since_ns=first + 1, until_ns=audit.entries[1].ts_ns)] == [2]


def test_market_modes_land_in_the_markets_chain():
    h = harness()
    h.apply(h.op(SetMarketMode, BTC_USDT, 2, 0, reason="exchange-wide incident"))
    h.apply(h.op(SetMarketMode, BTC_USDT, 0, 0, reason="resolved"))
    audit = h.engine.markets[BTC_USDT].guard.audit
    assert [(e.who, e.before, e.after, e.why) for e in audit.entries] == \
        [("risk-ann", "open", "halted", "exchange-wide incident"), ("risk-ann", "halted", "open", "resolved")]
    assert verify(list(audit.entries))[0]
