"""An accepted OTC trade's money, over real shards (``tests/exchange/otc/ledger.py``): the
inventory locked, the payment taken (crypto) or reported by the bank (fiat), the delivery
(at once, or after an operator's approval above the threshold), the settlement into the
private blotter with its spread income; refusals that cancel and give back; T+1 credit
within its limit, beyond it, and overdue; the crossings exactly once; the hedge orders;
conservation of every asset (shards + the desk's transit) after each step."""
from __future__ import annotations

import orjson
from hypothesis import given, settings, strategies as st

from exchange.accounts.access import Role
from exchange.core.reasons import Reason
from exchange.matching.orders import BUY, SELL
from exchange.messages.records import OrderRejected, OtcCross, OtcCrossed, Withdraw
from exchange.otc.rfq import OtcDesk, RfqState
from exchange.otc.rules import otc_rules
from tests.exchange.otc.ledger import Ledger
from tests.exchange.otc.test_rfq import OTC, PAIR, S
from tests.exchange.support import btc, custom_config, usdt

DESK, ADA, BOB = 9_000_001, 7, 8
SETTINGS = {**OTC, "desk_account": DESK, "retain_s": 60,
            "delivery_approval": {"BTC": "5"},
            "credit": {"asset": "USDT", "term_s": 86_400, "limits": {"7": "250000"}},
            "inventory": {"BTC": {"min": "2", "max": "12"}}}


def venue(**changes):
    config = custom_config(lambda raw: raw.update(otc={**SETTINGS, **changes}))
    desk = OtcDesk(otc_rules(config))
    ledger = Ledger(config, desk)
    ledger.fund(DESK, BTC=btc("10"), USDT=usdt("1000000"))
    ledger.fund(ADA, USDT=usdt("500000"), BTC=btc("5"))
    ledger.fund(BOB, USDT=usdt("1000"))
    ledger.read_inventory()
    desk.set_index(PAIR, 0, 5_000_000)
    desk.set_index(PAIR, 100 * S, 5_025_000)
    return desk, ledger


def balances(ledger, account):
    shard = ledger.shard(account)
    a = shard.ledger.accounts[account]
    return {name: a.available[spec.index] for name, spec in ledger.config.assets.items()}


def quote(desk, ledger, account=ADA, side=BUY, quantity="2", method="crypto", credit=False, ts=101 * S):
    return desk.inquire(account, PAIR, side, btc(quantity), 0, method, ts, credit, balances(ledger, account))


def test_a_crypto_purchase_locks_collects_delivers_and_settles_into_the_blotter():
    desk, ledger = venue()
    rfq = quote(desk, ledger)
    assert desk.accept(ADA, rfq.rfq_id, 102 * S) is rfq
    assert desk.free("BTC") == btc("8") and desk.outbox.pending() == 2      # the lock and the payment on their way
    ledger.pump(103 * S)
    assert rfq.state == RfqState.SETTLED
    assert ledger.available(ADA, "BTC") == btc("7")
    assert ledger.available(ADA, "USDT") == usdt("500000") - rfq.notional
    assert ledger.available(DESK, "BTC") == btc("8")
    assert ledger.available(DESK, "USDT") == usdt("1000000") + rfq.notional
    assert desk.outbox.transit == {"BTC": 0, "USDT": 0}
    ledger.assert_conserved()
    (row,) = desk.blotter
    assert row[10] == rfq.notional - usdt("100500") == desk.income["USDT"]     # 2 BTC at the 50,250 index
    steps = [e["what"] for e in desk.trail(rfq.rfq_id)]
    assert steps[:2] == ["quoted", "accepted"] and set(steps[2:4]) == {"lock", "collect"}
    assert steps[4:6] == ["paid", steps[5]] and steps[-1] == "settled"
    assert sorted(steps[5:-1]) == ["deliver", "delivered", "pay desk"]


def test_a_crypto_sale_pays_the_client_the_notional_for_its_base():
    desk, ledger = venue()
    rfq = quote(desk, ledger, side=SELL)
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert rfq.state == RfqState.SETTLED
    assert ledger.available(ADA, "BTC") == btc("3")
    assert ledger.available(ADA, "USDT") == usdt("500000") + rfq.notional
    ledger.assert_conserved()


def test_a_fiat_purchase_is_delivered_once_the_bank_reports_it_paid():
    desk, ledger = venue()
    rfq = quote(desk, ledger, method="bank-usd")
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert rfq.state == RfqState.ACCEPTED and ledger.available(DESK, "BTC") == btc("8")     # locked
    desk.bank_payment(rfq.rfq_id, rfq.notional, "Ada Lovelace", "wire-1", 104 * S)
    ledger.pump(105 * S)
    assert rfq.state == RfqState.SETTLED and ledger.available(ADA, "BTC") == btc("7")
    assert ledger.available(ADA, "USDT") == usdt("500000")            # paid from the bank, not the ledger
    assert desk.fiat_in == {"USD": rfq.notional}
    ledger.assert_conserved()


def test_an_underpaid_fiat_trade_times_out_its_lock_returns_and_its_part_is_refunded():
    desk, ledger = venue()
    rfq = quote(desk, ledger, method="bank-usd")
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    desk.bank_payment(rfq.rfq_id, usdt("1000"), "Ada Lovelace", "wire-1", 104 * S)
    assert desk.expire(102 * S + 600 * S) == [rfq] and rfq.state == RfqState.CANCELLED
    ledger.pump(703 * S)
    assert ledger.available(DESK, "BTC") == btc("10") and desk.free("BTC") == btc("10")
    assert desk.refunds == [[rfq.rfq_id, usdt("1000"), "", "payment window ran out"]]
    ledger.assert_conserved()


def test_the_client_s_balance_is_checked_at_the_quote_and_a_short_payment_cancels_and_returns_the_lock():
    desk, ledger = venue()
    assert quote(desk, ledger, account=BOB) == Reason.OTC_CLIENT_BALANCE_SHORT
    rfq = quote(desk, ledger)
    ledger.run(ledger.shard(ADA), Withdraw("spend", 1, ADA, "USDT", usdt("499000")))   # gone before acceptance
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert (rfq.state, rfq.why) == (RfqState.CANCELLED, Reason.OTC_CLIENT_BALANCE_SHORT)
    assert ledger.available(DESK, "BTC") == btc("10") and ledger.available(ADA, "BTC") == btc("5")
    ledger.deposited["USDT"] -= usdt("499000")
    ledger.assert_conserved()


def test_a_lock_the_desk_account_cannot_cover_cancels_and_returns_the_payment():
    desk, ledger = venue()
    rfq = quote(desk, ledger)
    ledger.run(ledger.shard(DESK), Withdraw("drain", 1, DESK, "BTC", btc("9")))       # the desk's books lag
    ledger.deposited["BTC"] -= btc("9")
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert (rfq.state, rfq.why) == (RfqState.CANCELLED, Reason.OTC_INVENTORY_SHORT)
    assert ledger.available(ADA, "USDT") == usdt("500000")
    ledger.assert_conserved()


def test_a_delivery_above_the_threshold_waits_for_an_operator():
    desk, ledger = venue()
    rfq = quote(desk, ledger, quantity="6")
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert rfq.state == RfqState.PAID and ledger.available(ADA, "BTC") == btc("5")   # paid, held back
    ledger.assert_conserved()
    small = quote(desk, ledger, quantity="1")
    assert desk.approve(small.rfq_id, "tina", "ok", 104 * S) == Reason.OTC_NOT_AWAITING_APPROVAL
    assert desk.approve(rfq.rfq_id, "tina", "cold wallet signed", 104 * S) is rfq
    assert desk.approve(rfq.rfq_id, "tina", "again", 104 * S) == Reason.OTC_NOT_AWAITING_APPROVAL
    ledger.pump(105 * S)
    assert rfq.state == RfqState.SETTLED and ledger.available(ADA, "BTC") == btc("11")
    assert any(e["who"] == "tina" for e in desk.trail(rfq.rfq_id))
    ledger.assert_conserved()


def test_a_delivery_no_operator_approves_in_time_is_cancelled_and_given_back():
    desk, ledger = venue(approval_window_s=120)
    rfq = quote(desk, ledger, quantity="6")
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert rfq.state == RfqState.PAID and rfq.approve_by_ns == 223 * S
    assert not desk.expiring(222 * S) and desk.expire(223 * S) == [rfq] and rfq.state == RfqState.CANCELLED
    ledger.pump(224 * S)
    assert ledger.available(ADA, "USDT") == usdt("500000") and ledger.available(DESK, "BTC") == btc("10")
    assert desk.approve(rfq.rfq_id, "tina", "too late", 225 * S) == Reason.OTC_NOT_AWAITING_APPROVAL
    ledger.assert_conserved()


def test_credit_delivers_before_payment_within_the_limit_and_refuses_beyond_it():
    desk, ledger = venue()
    assert quote(desk, ledger, account=BOB, credit=True) == Reason.OTC_CREDIT_NOT_APPROVED
    rfq = quote(desk, ledger, quantity="4", credit=True)            # ~201,000 of a 250,000 limit
    assert rfq.quote(desk.rules.pairs[PAIR].spec)["settlement"] == "t+1"
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert rfq.state == RfqState.DELIVERED and ledger.available(ADA, "BTC") == btc("9")
    assert ledger.available(ADA, "USDT") == usdt("500000")            # not paid yet
    assert quote(desk, ledger, quantity="1", credit=True) == Reason.OTC_CREDIT_LIMIT
    assert desk.pay(BOB, rfq.rfq_id, 104 * S) == Reason.OTC_NOT_YOURS_TO_PAY
    desk.pay(ADA, rfq.rfq_id, 104 * S)
    ledger.pump(105 * S)
    assert rfq.state == RfqState.SETTLED and ledger.available(ADA, "USDT") == usdt("500000") - rfq.notional
    assert quote(desk, ledger, quantity="1", credit=True).state == RfqState.QUOTED    # the limit is free again
    ledger.assert_conserved()


def test_an_overdue_credit_trade_blocks_the_next_until_paid():
    desk, ledger = venue()
    rfq = quote(desk, ledger, quantity="1", credit=True)
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert desk.expire(102 * S + 86_400 * S) == [rfq] and rfq.overdue
    assert quote(desk, ledger, quantity="1", credit=True, ts=102 * S + 86_401 * S) == Reason.OTC_CREDIT_OVERDUE
    assert quote(desk, ledger, quantity="1", ts=102 * S + 86_401 * S).state == RfqState.QUOTED    # T+0 still
    ledger.run(ledger.shard(ADA), Withdraw("spend", 1, ADA, "USDT", usdt("500000")))
    ledger.deposited["USDT"] -= usdt("500000")
    desk.pay(ADA, rfq.rfq_id, 102 * S + 86_402 * S)
    ledger.pump(102 * S + 86_403 * S)
    assert rfq.state == RfqState.DELIVERED and rfq.overdue                      # refused: still owed
    ledger.fund(ADA, USDT=usdt("100000"))
    desk.pay(ADA, rfq.rfq_id, 102 * S + 86_404 * S)
    ledger.pump(102 * S + 86_405 * S)
    assert rfq.state == RfqState.SETTLED
    assert quote(desk, ledger, quantity="1", credit=True, ts=102 * S + 86_406 * S).state == RfqState.QUOTED
    ledger.assert_conserved()


def test_a_fiat_credit_trade_is_settled_by_the_bank():
    desk, ledger = venue()
    rfq = quote(desk, ledger, quantity="1", method="bank-usd", credit=True)
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert rfq.state == RfqState.DELIVERED
    desk.bank_payment(rfq.rfq_id, rfq.notional, "Ada Lovelace", "wire-7", 104 * S)
    assert rfq.state == RfqState.SETTLED and desk.fiat_in == {"USD": rfq.notional}
    ledger.assert_conserved()


def test_each_crossing_lands_once_across_lost_answers_and_in_order_only():
    desk, ledger = venue()
    rfq = quote(desk, ledger)
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.held_back = {0, 1}                       # every answer lost
    first = ledger.pump(103 * S)
    again = ledger.pump(103 * S)                    # the desk sends them again
    assert [e.moved for e in first] == [True, True] and [e.moved for e in again] == [False, False]
    assert [e.reason for e in again] == [e.reason for e in first]
    ledger.held_back = set()
    ledger.pump(104 * S)
    ledger.pump(105 * S)
    assert rfq.state == RfqState.SETTLED
    ledger.assert_conserved()
    shard = ledger.shard(DESK)
    ahead = OtcCross("otc:x", 1, DESK, "BTC", -1, shard.otc.seq + 2, "q1")
    before = shard.canonical()
    (refused,) = ledger.run(shard, ahead, Role.OTC)
    assert type(refused) is OrderRejected and refused.reason == Reason.OTC_CROSSING_OUT_OF_ORDER
    assert shard.canonical() == before
    (not_yours,) = ledger.run(shard, OtcCross("otc:y", 1, DESK, "BTC", 1, shard.otc.seq + 1, "q1"), Role.CLIENT)
    assert not_yours.reason == Reason.NOT_PERMITTED and shard.canonical() == before


def test_a_refused_crossing_keeps_its_number_and_its_answer():
    desk, ledger = venue()
    shard = ledger.shard(BOB)
    seq = shard.otc.seq + 1
    (answer,) = ledger.run(shard, OtcCross("otc:z", 1, BOB, "USDT", -usdt("5000"), seq, "q9"), Role.OTC)
    assert type(answer) is OtcCrossed and answer.reason == Reason.INSUFFICIENT_BALANCE and answer.moved
    (again,) = ledger.run(shard, OtcCross("otc:z2", 1, BOB, "USDT", -usdt("5000"), seq, "q9"), Role.OTC)
    assert (again.moved, again.reason) == (False, Reason.INSUFFICIENT_BALANCE)
    assert ledger.available(BOB, "USDT") == usdt("1000")


def test_the_desk_hedges_inventory_past_its_limits_on_the_book():
    desk, ledger = venue()
    desk.set_inventory("BTC", btc("15"))
    number, market, side, quantity, price = desk.hedge(200 * S)
    assert (market, side, quantity) == (PAIR, SELL, btc("3"))                  # back to the 12 BTC limit
    assert price == usdt("50250") * 9_950 // 10_000                              # the index less 50 bps
    assert desk.hedge(201 * S) is None                                          # one at a time
    desk.hedged(number, btc("3"), 202 * S)
    desk.set_inventory("BTC", btc("12"))
    assert desk.hedge(300 * S) is None                                          # inside its limits
    desk.set_inventory("BTC", btc("1"))
    assert desk.hedge(205 * S) is None                                          # not again so soon
    _, _, side, quantity, price = desk.hedge(300 * S)
    assert (side, quantity, price) == (BUY, btc("1"), usdt("50250") * 10_050 // 10_000)
    assert [o[6] for o in desk.hedges.orders] == [btc("3"), -1]


def test_finished_rfqs_are_let_go_after_their_retention_and_the_blotter_keeps_them():
    desk, ledger = venue()
    rfq = quote(desk, ledger)
    desk.accept(ADA, rfq.rfq_id, 102 * S)
    ledger.pump(103 * S)
    assert desk.expiring(103 * S + 60 * S) and desk.expire(103 * S + 60 * S) == []
    assert rfq.rfq_id not in desk.rfqs and desk.blotter[0][0] == rfq.rfq_id
    assert desk.trail(rfq.rfq_id)[-1]["what"] == "settled"
    desk.check_invariants()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("inquire"), st.sampled_from([ADA, BOB]), st.sampled_from([BUY, SELL]), st.integers(1, 70),
              st.sampled_from(["crypto", "bank-usd"]), st.booleans()),
    st.tuples(st.just("accept"), st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("bank"), st.integers(0, 3), st.integers(1, 2 * 10**11)),
    st.tuples(st.just("pay"), st.integers(0, 3)),
    st.tuples(st.just("approve"), st.integers(0, 3)),
    st.tuples(st.just("pump"), st.booleans()),
    st.tuples(st.just("expire"), st.sampled_from([1, 5, 700, 90_000]))), max_size=40))
def test_any_trades_conserve_every_asset_and_replay_to_the_same_desk(moves):
    desk, ledger = venue(approval_window_s=600)
    journal = [["inventory", a, v] for a, v in sorted(desk.inventory.items())] + \
        [["index", PAIR, 0, 5_000_000], ["index", PAIR, 100 * S, 5_025_000]]
    ts = 101 * S

    def recent(back):          # one of the last few quotes (an unknown id when there is none)
        return f"q{desk.seq - back}"

    def do(entry):
        journal.append(orjson.loads(orjson.dumps(entry)))
        return desk.apply(entry)

    for move in moves:
        ts += S
        kind = move[0]
        if kind == "inquire":
            _, account, side, tenths, method, credit = move
            do(["inquire", account, PAIR, side, btc("0.1") * tenths, 0, method, ts, credit, balances(ledger, account)])
        elif kind == "accept":
            rfq = desk.rfqs.get(recent(move[2]))
            owner = rfq.account_id if rfq is not None else ADA
            do(["accept", owner if move[1] else BOB + ADA - owner, recent(move[2]), ts])
        elif kind == "bank":
            do(["bank", recent(move[1]), move[2], "Ada Lovelace", f"w{ts}", ts])
        elif kind == "pay":
            do(["pay", ADA, recent(move[1]), ts])
        elif kind == "approve":
            do(["approve", recent(move[1]), "tina", "signed", ts])
        elif kind == "expire":
            ts += move[1] * S           # within a quote's life, past it, past a payment window, past T+1
            do(["expire", ts])
        else:
            ledger.held_back = {0} if move[1] else set()
            for shard_index, crossings in sorted(desk.outbox.unacked.items()):
                for crossing in list(crossings):
                    (event,) = ledger.run(ledger.shards[shard_index], crossing.command(), Role.OTC)
                    if shard_index not in ledger.held_back:
                        do(["crossed", shard_index, event.seq, event.reason, ts])
        desk.check_invariants()
        for shard in ledger.shards:
            shard.check_invariants()
        ledger.assert_conserved()
    replayed = OtcDesk(desk.rules, desk.shards)
    for entry in journal:
        replayed.apply(entry)
    assert replayed.canonical() == desk.canonical()
    restored = OtcDesk(desk.rules, desk.shards)
    restored.restore(orjson.loads(orjson.dumps(desk.to_plain())))
    assert restored.canonical() == desk.canonical()


COVERED = {Reason.OTC_CLIENT_BALANCE_SHORT, Reason.OTC_CROSSING_OUT_OF_ORDER, Reason.OTC_CREDIT_NOT_APPROVED,
           Reason.OTC_CREDIT_LIMIT, Reason.OTC_CREDIT_OVERDUE, Reason.OTC_NOT_YOURS_TO_PAY,
           Reason.OTC_NOT_AWAITING_APPROVAL}
