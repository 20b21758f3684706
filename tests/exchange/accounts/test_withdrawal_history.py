"""The withdrawal history (``exchange.accounts.withdrawal_history``, through ``History``)
against the cashier it follows: after any run of requests (small, large and queued,
refused by a rule), reviews, broadcasts, confirmations and failures through the real
Engine, the history holds exactly the withdrawals the cashier's desk has on file, each in
the desk's state with its destination, transaction, request time, last move, end time
(once final) and the request id it was asked with. Then the bound and a snapshot round trip."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from exchange.accounts.history import History
from exchange.accounts.withdrawal_history import FINAL, WithdrawalHistory
from exchange.messages.records import CredentialChanged, WithdrawalUpdated
from exchange.risk import withdrawals
from exchange.risk.cashier import REASONS
from tests.exchange.risk.test_cashier import ALICE, DAY, request, review, settle, setup
from tests.exchange.support import btc, usdt

SENT, CONFIRMED, FAILED = 1, 2, 3

ops = st.lists(st.one_of(
    st.tuples(st.just("request"), st.sampled_from((usdt("100"), btc("1500"))), st.sampled_from(("bc1q-a", "bc1q-b"))),
    st.tuples(st.sampled_from(("approve", "reject", "send", "confirm", "fail")), st.integers(0, 7)),
    st.tuples(st.just("advance"), st.just(0)),
    st.tuples(st.just("credential"), st.just(0))), min_size=1, max_size=30)


def run(steps: list):
    h, events, ids = setup(), [], []
    for step in steps:
        kind = step[0]
        if kind == "request":
            asset = "USDT" if step[1] == usdt("100") else "BTC"
            out = request(h, asset, step[1], step[2])
            ids += [e.withdrawal for e in out if type(e) is WithdrawalUpdated]
        elif kind == "advance":
            h.advance(DAY)
            continue
        elif kind == "credential":
            rid, ts = h.next_ids()
            out = h.apply(CredentialChanged(rid, ts, ALICE))
        elif not ids:
            continue
        else:
            wid = ids[step[1] % len(ids)]
            if kind in ("approve", "reject"):
                out = review(h, wid, kind == "approve")
            else:
                out = settle(h, wid, {"send": SENT, "confirm": CONFIRMED, "fail": FAILED}[kind], f"tx-{wid}")
        events += out
    return h, events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_the_history_holds_what_the_cashier_has_on_file_after_any_run(steps):
    h, events = run(steps)
    history = History(10, 10, {}.__getitem__)
    history.record(events, lambda account: True)
    desk = h.engine.shard.cashier.desk
    asked = {}
    for e in events:
        if type(e) is WithdrawalUpdated:
            asked.setdefault(e.withdrawal, e.request_id)
    kept = history.withdrawals.account(ALICE)
    assert [w["withdrawal_id"] for w in kept] == sorted(desk.withdrawals)          # ids grow with each request
    for row in kept:
        record = desk.get(row["withdrawal_id"])
        last_ns = record.history[-1][0]
        assert (row["asset"], row["amount"], row["destination"], row["state"], row["txid"]) == \
            (record.asset, record.amount, record.destination, int(record.state), record.txid or "")
        assert row["reason"] == (int(REASONS[record.reason]) if record.reason is not None else 0)
        assert (row["requested_ns"], row["updated_ns"], row["final_ns"]) == \
            (record.requested_ns, last_ns, last_ns if record.final else 0)
        assert row["request_id"] == asked[row["withdrawal_id"]]
        assert row["review_until_ns"] == (record.review_until_ns or 0)
    assert history.withdrawals.account(ALICE, "ETH") == [] and history.withdrawals.account(ALICE + 1) == []
    assert [w["asset"] for w in history.withdrawals.account(ALICE, "BTC")] == \
        ["BTC"] * sum(1 for w in desk.withdrawals.values() if w.asset == "BTC")
    again = History(10, 10, {}.__getitem__)
    again.restore(history.state())
    assert again.withdrawals.account(ALICE) == kept and again.state() == history.state()


def updated(withdrawal: int, account: int, ts_ns: int, state: int = 4, request_id="r") -> WithdrawalUpdated:
    return WithdrawalUpdated(request_id, ts_ns, account, withdrawal, "USDT", 10, state, 0, "", 0, "", "addr")


def test_the_oldest_requests_go_first_whoever_they_belong_to_and_moves_keep_their_place():
    history = WithdrawalHistory(3)
    for n in range(1, 6):
        history.record(updated(n, 1 + n % 2, n))
    history.record(updated(4, 1, 9, state=6))                     # confirmed: moves, keeps its place
    assert [w["withdrawal_id"] for w in history.account(1)] == [4] and history.account(1)[0]["final_ns"] == 9
    assert [w["withdrawal_id"] for w in history.account(2)] == [3, 5] and sorted(history.withdrawals) == [3, 4, 5]
    history.record(updated(6, 3, 10))
    assert sorted(history.withdrawals) == [4, 5, 6] and 2 in history.by_account


def test_a_tuple_request_id_comes_back_a_tuple_from_a_snapshot():
    import orjson
    history = WithdrawalHistory(10)
    history.record(updated(1, 1, 1, request_id=("client", 7)))
    again = WithdrawalHistory(10)
    again.restore(orjson.loads(orjson.dumps(history.state())))
    assert again.account(1) == history.account(1) and again.account(1)[0]["request_id"] == ("client", 7)


def test_the_final_states_are_the_cashiers():
    assert FINAL == {int(state) for state in withdrawals.FINAL}
