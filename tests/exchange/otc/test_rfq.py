"""The OTC desk's domain (issue 16, first part): the quote formula against hand-computed
figures for each spread component, the desk's signature (a tampered quote fails), and an
RFQ's life up to acceptance: firm until expiry, accepted once, a race with expiry won by
one side, the desk quoting only what it could deliver, and every refusal's reason."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from exchange.core.reasons import Reason
from exchange.matching.orders import BUY, SELL
from exchange.otc.rfq import OtcDesk, RfqState
from exchange.otc.rules import otc_rules
from exchange.otc.signing import verify
from tests.exchange.support import btc, custom_config, usdt

S = 10**9
PAIR = "BTC-USDT"
OTC = {"quote_ttl_s": 10, "payment_window_s": 600, "volatility_window_s": 300,
       "liquidity_classes": {"major": 5, "minor": 60},
       "payment_methods": {"crypto": {"kind": "crypto", "surcharge_bps": 0},
                           "bank-usd": {"kind": "fiat", "currency": "USD", "surcharge_bps": 5},
                           "bank-usd-intl": {"kind": "fiat", "currency": "USD", "surcharge_bps": 20}},
       "clients": {"7": {"name": "Ada Lovelace"}},
       "pairs": {PAIR: {"min_notional": "50000", "max_notional": "5000000", "liquidity": "major",
                        "size_tiers": [["0", 40], ["100000", 25], ["1000000", 15]], "volatility_factor": "0.5"}}}


def desk(**changes) -> OtcDesk:
    otc = {**OTC, **changes}
    rules = otc_rules(custom_config(lambda raw: raw.update(otc=otc)))
    d = OtcDesk(rules)
    d.set_index(PAIR, 0, 5_000_000)               # 50,000.00 USDT (0.01 ticks)
    d.set_index(PAIR, 100 * S, 5_025_000)         # 50,250.00: a 50 bps range over the window
    d.set_inventory("BTC", btc("10"))
    d.set_inventory("USDT", usdt("1000000"))
    return d


def test_the_quote_is_the_index_plus_each_component_as_computed_by_hand():
    d = desk()
    rfq = d.inquire(7, PAIR, BUY, btc("2"), 0, "bank-usd-intl", 101 * S)
    # at the index 2 BTC is 100,500 USDT: the 100,000 tier, 25 bps; the range 50 bps x 0.5 = 25;
    # major liquidity 5; cross-border bank transfer 20: 75 bps
    assert dict(rfq.breakdown) == {"size": 25, "volatility": 25, "liquidity": 5, "payment": 20}
    assert rfq.spread_bps == 75
    assert rfq.price_ticks == 5_062_688                  # ceil(5,025,000 x 1.0075): 50,626.88, up for a buyer
    assert rfq.notional == usdt("101253.76")
    sell = d.inquire(7, PAIR, SELL, btc("2"), 0, "crypto", 101 * S)      # 55 bps: no payment surcharge
    assert sell.price_ticks == 4_997_362                 # floor(5,025,000 x 0.9945): down for a seller
    by_notional = d.inquire(7, PAIR, BUY, 0, usdt("100000"), "bank-usd-intl", 101 * S)
    assert (by_notional.lots, by_notional.notional) == (19_752, 99_998_213_376)   # never more than asked
    quote = rfq.quote(d.rules.pairs[PAIR].spec)
    assert (quote["price"], quote["quantity"], quote["expires_ns"]) == (usdt("50626.88"), btc("2"), 111 * S)


def test_each_component_moves_the_spread_as_configured():
    calm = desk()
    calm.history[PAIR] = type(calm.history[PAIR])(300 * S)
    calm.set_index(PAIR, 0, 5_000_000)
    calm.set_inventory("BTC", btc("50"))
    small = calm.inquire(7, PAIR, BUY, btc("1.2"), 0, "crypto", 1 * S)      # 60,000 USDT: the first tier
    assert dict(small.breakdown) == {"size": 40, "volatility": 0, "liquidity": 5, "payment": 0}
    large = calm.inquire(7, PAIR, BUY, btc("21"), 0, "crypto", 1 * S)       # 1,050,000 USDT: 15 bps
    assert dict(large.breakdown)["size"] == 15
    domestic = calm.inquire(7, PAIR, BUY, btc("1.2"), 0, "bank-usd", 1 * S)
    assert dict(domestic.breakdown)["payment"] == 5
    old = desk()
    assert dict(old.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 301 * S).breakdown)["volatility"] == 0   # window
    minor = desk(liquidity_classes={"major": 60, "minor": 60})
    assert dict(minor.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 101 * S).breakdown)["liquidity"] == 60


def test_the_desk_signs_each_quote_and_a_tampered_quote_fails():
    d = desk()
    rfq = d.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 101 * S)
    quote = rfq.quote(d.rules.pairs[PAIR].spec)
    assert verify(d.signer.public_key, quote, rfq.signature)
    for field, value in (("price", quote["price"] - 1), ("quantity", quote["quantity"] + 1),
                         ("expires_ns", quote["expires_ns"] + S), ("account", 8)):
        assert not verify(d.signer.public_key, {**quote, field: value}, rfq.signature), field
    other = desk(signing_seed="11" * 32)
    assert not verify(other.signer.public_key, quote, rfq.signature)


def test_a_quote_is_accepted_once_before_its_expiry_and_not_by_another_account():
    d = desk()
    rfq = d.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 101 * S)
    assert d.accept(8, rfq.rfq_id, 102 * S) == Reason.UNKNOWN_QUOTE
    assert d.accept(7, rfq.rfq_id, 110 * S) is rfq and rfq.state == RfqState.ACCEPTED   # 9 s into its 10
    assert d.free("BTC") == btc("8")                                                   # locked for delivery
    assert d.accept(7, rfq.rfq_id, 110 * S) == Reason.QUOTE_ALREADY_ACCEPTED
    assert d.expire(111 * S) == []                    # accepted: the quote's expiry no longer applies
    d.check_invariants()


def test_acceptance_and_expiry_race_on_the_timestamp_and_one_wins():
    d = desk()
    late = d.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 101 * S)
    assert d.accept(7, late.rfq_id, 111 * S) == Reason.QUOTE_EXPIRED                 # at its expiry: too late
    expired = d.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 101 * S)
    assert [r.rfq_id for r in d.expire(111 * S)] == [late.rfq_id, expired.rfq_id]
    assert d.accept(7, expired.rfq_id, 105 * S) == Reason.QUOTE_EXPIRED              # expiry ran first: it won
    assert d.free("BTC") == btc("10")
    d.check_invariants()


def test_an_accepted_trade_unpaid_in_its_window_is_cancelled_and_its_lock_released():
    d = desk()
    rfq = d.inquire(7, PAIR, SELL, btc("2"), 0, "crypto", 101 * S)
    d.accept(7, rfq.rfq_id, 102 * S)
    assert d.free("USDT") == usdt("1000000") - rfq.notional        # a seller is paid in USDT
    assert d.expire(701 * S) == []
    assert d.expire(702 * S) == [rfq] and rfq.state == RfqState.CANCELLED
    assert d.free("USDT") == usdt("1000000") - rfq.notional       # until the shard answers the lock
    (lock, payment) = d.outbox.unacked[0]
    d.crossed(0, lock.seq, Reason.INSUFFICIENT_BALANCE, 703 * S)    # refused: nothing was locked
    assert d.free("USDT") == usdt("1000000")
    d.check_invariants()


def test_the_desk_quotes_only_what_it_could_deliver_now():
    d = desk()
    first = d.inquire(7, PAIR, BUY, btc("6"), 0, "crypto", 101 * S)
    second = d.inquire(8, PAIR, BUY, btc("6"), 0, "crypto", 101 * S)      # both quotable: nothing locked yet
    d.accept(7, first.rfq_id, 102 * S)
    assert d.accept(8, second.rfq_id, 102 * S) == Reason.OTC_INVENTORY_SHORT         # 4 BTC left
    assert d.inquire(8, PAIR, BUY, btc("4.0001"), 0, "crypto", 102 * S) == Reason.OTC_INVENTORY_SHORT


REFUSALS = {
    "unknown_pair": (dict(pair="ETH-USDT"), Reason.OTC_UNKNOWN_PAIR),
    "unknown_method": (dict(method="cash"), Reason.UNKNOWN_PAYMENT_METHOD),
    "below_minimum": (dict(quantity=btc("0.9")), Reason.OTC_BELOW_MINIMUM),     # 45,225 USDT: the order book
    "above_maximum": (dict(quantity=btc("100")), Reason.OTC_ABOVE_MAXIMUM),
    "off_lot": (dict(quantity=btc("2") + 1), Reason.OFF_LOT_QUANTITY),
    "nothing": (dict(quantity=0, notional=0), Reason.NON_POSITIVE_QUANTITY),
    "negative": (dict(quantity=-btc("2")), Reason.NON_POSITIVE_QUANTITY),
}
COVERED = {reason for _, reason in REFUSALS.values()} | {
    Reason.UNKNOWN_QUOTE, Reason.QUOTE_EXPIRED, Reason.QUOTE_ALREADY_ACCEPTED, Reason.OTC_INVENTORY_SHORT}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_an_inquiry_refused_gives_its_reason_and_records_nothing(case):
    d = desk()
    fields, reason = REFUSALS[case]
    asked = {"pair": PAIR, "side": BUY, "quantity": btc("2"), "notional": 0, "method": "crypto", **fields}
    before = d.canonical()
    assert d.inquire(7, asked["pair"], asked["side"], asked["quantity"], asked["notional"], asked["method"],
                     101 * S) == reason
    assert d.canonical() == before


def test_no_index_yet_is_no_quote():
    d = desk()
    d.history[PAIR] = type(d.history[PAIR])(300 * S)
    assert d.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", S) == Reason.NO_INDEX_PRICE


# ---- inputs as a journal keeps them: replay and snapshot ------------------------------------

def _rules():
    return desk().rules


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("index"), st.integers(4_900_000, 5_100_000)),
    st.tuples(st.just("inquire"), st.sampled_from([7, 8]), st.sampled_from([BUY, SELL]), st.integers(1, 60),
              st.sampled_from(["crypto", "bank-usd", "cash"])),
    st.tuples(st.just("accept"), st.sampled_from([7, 8]), st.integers(1, 12)),
    st.tuples(st.just("bank"), st.integers(1, 12), st.integers(1, 10**11), st.sampled_from(["Ada Lovelace", "Eve"])),
    st.tuples(st.just("expire"),)), max_size=40))
def test_any_inputs_replayed_or_restored_from_a_snapshot_give_the_same_desk(moves):
    rules = _rules()
    live, journal, ts = OtcDesk(rules), [], 0
    for move in [("inventory_btc",), *moves]:
        ts += S
        if move[0] == "inventory_btc":
            entries = [["inventory", "BTC", btc("10")], ["inventory", "USDT", usdt("1000000")],
                       ["index", PAIR, ts, 5_000_000]]
        elif move[0] == "index":
            entries = [["index", PAIR, ts, move[1]]]
        elif move[0] == "inquire":
            _, account, side, tenths, method = move
            entries = [["inquire", account, PAIR, side, btc("0.1") * tenths, 0, method, ts]]
        elif move[0] == "accept":
            entries = [["accept", move[1], f"q{move[2]}", ts]]
        elif move[0] == "bank":
            entries = [["bank", f"q{move[1]}", move[2], move[3], f"wire-{ts}", ts]]
        else:
            entries = [["expire", ts]]
        for entry in entries:
            live.apply(entry)
            journal.append(orjson.loads(orjson.dumps(entry)))
        live.check_invariants()
    replayed = OtcDesk(rules)
    for entry in journal:
        replayed.apply(entry)
    assert replayed.canonical() == live.canonical()
    restored = OtcDesk(rules)
    restored.restore(orjson.loads(orjson.dumps(live.to_plain())))
    assert restored.canonical() == live.canonical()
    restored.check_invariants()


# ---- fiat payment, as the bank feed reports it ---------------------------------------------

def fiat_trade(d, notional_btc="2"):
    rfq = d.inquire(7, PAIR, BUY, btc(notional_btc), 0, "bank-usd", 101 * S)
    assert d.accept(7, rfq.rfq_id, 102 * S) is rfq
    return rfq


def test_a_fiat_trade_is_paid_by_the_client_s_own_name_in_parts_and_the_excess_refunded():
    d = desk()
    rfq = fiat_trade(d)
    half = rfq.notional // 2
    assert d.bank_payment(rfq.rfq_id, half, "ADA  lovelace", "wire-1", 200 * S) is rfq     # case and spacing
    assert rfq.state == RfqState.ACCEPTED and rfq.paid == half                           # waits for the rest
    assert d.bank_payment(rfq.rfq_id, rfq.notional - half + 500, "Ada Lovelace", "wire-2", 300 * S) is rfq
    assert (rfq.state, rfq.paid) == (RfqState.PAID, rfq.notional)
    assert d.refunds == [[rfq.rfq_id, 500, "wire-2", "paid beyond the notional"]]
    assert d.expire(10_000 * S) == [] and d.free("BTC") == btc("8")   # paid: its window no longer applies
    d.check_invariants()


def test_a_third_party_payment_is_refused_and_refunded_and_changes_nothing_else():
    d = desk()
    rfq = fiat_trade(d)
    assert d.bank_payment(rfq.rfq_id, rfq.notional, "Mallory Shell Co", "wire-9", 200 * S) == \
        Reason.THIRD_PARTY_PAYMENT
    assert (rfq.state, rfq.paid) == (RfqState.ACCEPTED, 0)
    assert d.refunds == [[rfq.rfq_id, rfq.notional, "wire-9", "third-party payer"]]


def test_an_underpaid_trade_is_cancelled_at_its_deadline_and_the_part_paid_refunded():
    d = desk()
    rfq = fiat_trade(d)
    d.bank_payment(rfq.rfq_id, usdt("1000"), "Ada Lovelace", "wire-1", 200 * S)
    assert d.expire(102 * S + 600 * S) == [rfq] and rfq.state == RfqState.CANCELLED
    assert d.refunds == [[rfq.rfq_id, usdt("1000"), "", "payment window ran out"]]
    d.crossed(0, 1, 0, 703 * S)                                     # the lock landed: it goes back
    assert d.free("BTC") == btc("8") and [c.purpose for c in d.outbox.unacked[0]] == ["return lock"]
    d.crossed(0, 2, 0, 704 * S)
    assert d.free("BTC") == btc("10")
    d.check_invariants()


def test_money_for_no_trade_waiting_for_it_is_refunded():
    d = desk()
    quoted = d.inquire(7, PAIR, BUY, btc("2"), 0, "bank-usd", 101 * S)           # not accepted
    crypto = d.inquire(7, PAIR, BUY, btc("2"), 0, "crypto", 101 * S)
    d.accept(7, crypto.rfq_id, 102 * S)                                          # paid in crypto, not by bank
    for rfq_id in (quoted.rfq_id, crypto.rfq_id, "q999"):
        assert d.bank_payment(rfq_id, usdt("10"), "Ada Lovelace", f"w-{rfq_id}", 200 * S) == \
            Reason.OTC_NOT_AWAITING_PAYMENT
    assert [r[0] for r in d.refunds] == [quoted.rfq_id, crypto.rfq_id, "q999"]
    before = d.canonical()
    assert d.bank_payment(quoted.rfq_id, 0, "Ada Lovelace", "w-0", 200 * S) == Reason.NON_POSITIVE_AMOUNT
    assert d.canonical() == before


def test_fiat_is_for_verified_clients_buying():
    d = desk()
    assert d.inquire(8, PAIR, BUY, btc("2"), 0, "bank-usd", 101 * S) == Reason.OTC_CLIENT_NOT_VERIFIED
    assert d.inquire(7, PAIR, SELL, btc("2"), 0, "bank-usd", 101 * S) == Reason.FIAT_PAYS_BUYS_ONLY
    assert d.inquire(8, PAIR, BUY, btc("2"), 0, "crypto", 101 * S).state == RfqState.QUOTED


COVERED |= {Reason.THIRD_PARTY_PAYMENT, Reason.OTC_NOT_AWAITING_PAYMENT, Reason.OTC_CLIENT_NOT_VERIFIED,
            Reason.FIAT_PAYS_BUYS_ONLY, Reason.NON_POSITIVE_AMOUNT}
