"""How an accepted OTC trade's money moves: lock, payment, delivery, settlement (seed 000:
锁定, 付款核验, 放币, 结算), each leg a numbered crossing (``exchange.otc.crossing``).

The desk **gives** what the client buys (the base to a buyer, the quote notional to a
seller) and **takes** what the client pays (the notional from a buyer, the base from a
seller). The steps, each a crossing between an account and the desk's transit:

==============  ===================================  =====================================
step            leg                                  when
==============  ===================================  =====================================
LOCK            desk account -gives                  at acceptance: the inventory locked
COLLECT         client -takes                        at acceptance (crypto, T+0); when the
                                                     client pays (crypto, T+1)
DELIVER         client +gives                        paid (or T+1), locked, and approved
                                                     when above ``[otc.delivery_approval]``
                                                     (within ``approval_window_s``, or the
                                                     trade is cancelled and given back)
PAY_DESK        desk account +takes                  the client's payment in transit and
                                                     the delivery on its way
RETURN_LOCK     desk account +gives                  the trade cancelled after its lock
RETURN_COLLECT  client +takes                        the trade cancelled after its payment
==============  ===================================  =====================================

A fiat payment never touches the ledger: the bank feed reports it (``OtcDesk.bank_payment``)
and the desk's fiat books count it (``fiat_in``). A debit the shard refuses cancels the
trade (LOCK: OTC_INVENTORY_SHORT; COLLECT at T+0: OTC_CLIENT_BALANCE_SHORT; a T+1
payment refused just waits for the next one); a credit is never refused for money,
and one refused all the same (an account gone) stays in transit, listed in
``problems`` for the operators. The trade is DELIVERED when the delivery landed and
SETTLED when, besides, the client's payment is the desk's: it enters the **blotter**
(private: OTC trades never reach a market's public trade feed) with its spread income,
``notional - the notional at the index`` for a buyer (the reverse for a seller).
"""
from __future__ import annotations

from exchange.core.reasons import Reason
from exchange.matching.orders import BUY
from exchange.otc.states import FINAL, RfqState

LOCK, COLLECT, DELIVER, PAY_DESK, RETURN_LOCK, RETURN_COLLECT = 1, 2, 4, 8, 16, 32
STEPS = {LOCK: "lock", COLLECT: "collect", DELIVER: "deliver", PAY_DESK: "pay desk", RETURN_LOCK: "return lock",
         RETURN_COLLECT: "return payment"}
BY_NAME = {name: step for step, name in STEPS.items()}
BLOTTER_FIELDS = ("rfq", "account", "pair", "side", "quantity", "price", "notional", "method", "index",
                  "spread_bps", "income", "settlement", "accepted_ns", "settled_ns")


def gives(spec, side: int, lots: int, notional: int) -> tuple[str, int]:
    """What the desk delivers: the base a buying client gets, or the quote a selling client gets."""
    return (spec.base.name, lots * spec.lot_minor) if side == BUY else (spec.quote.name, notional)


def takes(spec, side: int, lots: int, notional: int) -> tuple[str, int]:
    """What the client pays: the notional a buyer pays, or the base a seller hands over."""
    return (spec.quote.name, notional) if side == BUY else (spec.base.name, lots * spec.lot_minor)


def leg(desk, rfq, step: int) -> tuple[int, str, int]:
    """(account, asset, signed amount) of ``step`` of ``rfq``."""
    spec = desk.rules.pairs[rfq.pair].spec
    give_asset, give = gives(spec, rfq.side, rfq.lots, rfq.notional)
    take_asset, take = takes(spec, rfq.side, rfq.lots, rfq.notional)
    desk_account = desk.rules.desk_account
    return {LOCK: (desk_account, give_asset, -give), COLLECT: (rfq.account_id, take_asset, -take),
            DELIVER: (rfq.account_id, give_asset, give), PAY_DESK: (desk_account, take_asset, take),
            RETURN_LOCK: (desk_account, give_asset, give), RETURN_COLLECT: (rfq.account_id, take_asset, take)}[step]


def fiat(desk, rfq) -> bool:
    return desk.rules.methods[rfq.method].kind == "fiat"


def paid_in(desk, rfq) -> bool:
    """Has the client's payment reached the desk's hands (fiat in full, or crypto in transit)?"""
    return rfq.paid >= rfq.notional if fiat(desk, rfq) else bool(rfq.done & COLLECT)


def awaits_payment(rfq) -> bool:
    """Is ``rfq`` a trade still to be paid: accepted (T+0) or accepted or delivered (T+1)?"""
    if rfq.state == RfqState.ACCEPTED:
        return not rfq.sent & COLLECT
    return rfq.credit and rfq.state == RfqState.DELIVERED and not rfq.sent & COLLECT and not rfq.paid >= rfq.notional


def awaits_approval(desk, rfq) -> bool:
    """Is ``rfq``'s delivery held for an operator (its approval window running)?"""
    return bool(rfq.approve_by_ns) and not rfq.approved and not rfq.sent & DELIVER and rfq.state not in FINAL


def needs_approval(desk, rfq) -> bool:
    asset, amount = gives(desk.rules.pairs[rfq.pair].spec, rfq.side, rfq.lots, rfq.notional)
    limit = (desk.rules.approval_above or {}).get(asset)
    return limit is not None and amount > limit


def moving(rfq) -> bool:
    """Has ``rfq`` a crossing on its way (sent, not answered)?"""
    return bool(rfq.sent & ~(rfq.done | rfq.refused))


def send(desk, rfq, step: int, ts: int) -> None:
    account, asset, amount = leg(desk, rfq, step)
    desk.outbox.add(desk.shard_of(account), account, asset, amount, rfq.rfq_id, STEPS[step], ts)
    rfq.sent |= step
    if step == LOCK:
        desk.locked[asset] = desk.locked.get(asset, 0) - amount


def start(desk, rfq, ts: int) -> None:
    """An accepted trade: lock the inventory; take a crypto payment now unless on credit."""
    send(desk, rfq, LOCK, ts)
    if not fiat(desk, rfq) and not rfq.credit:
        send(desk, rfq, COLLECT, ts)


def collect(desk, rfq, ts: int) -> None:
    """A credit trade's client pays from its balance."""
    send(desk, rfq, COLLECT, ts)
    desk.note(rfq, ts, str(rfq.account_id), "payment asked", "", "", "from the account's balance")


def crossed(desk, shard: int, seq: int, reason: int, ts: int):
    """A shard's answer for crossing ``seq``: record it on its RFQ and move the RFQ on."""
    crossing = desk.outbox.ack(shard, seq, reason)
    if crossing is None:
        return None
    rfq = desk.rfqs[crossing.rfq]
    step = BY_NAME[crossing.purpose]
    if step == LOCK:
        desk.locked[crossing.asset] += crossing.amount
    if reason:
        rfq.refused |= step
        desk.note(rfq, ts, f"shard:{shard}", f"{STEPS[step]} refused", "", "", Reason(reason).name)
    else:
        rfq.done |= step
        if crossing.account_id == desk.rules.desk_account:
            desk.inventory[crossing.asset] = desk.inventory.get(crossing.asset, 0) + crossing.amount
        desk.note(rfq, ts, f"shard:{shard}", STEPS[step], "", f"{crossing.amount} {crossing.asset}",
                  f"crossing {shard}:{seq}")
    if reason and step == COLLECT and rfq.credit and rfq.state != RfqState.CANCELLED:
        rfq.sent &= ~COLLECT          # a T+1 payment refused: the client may pay again
        rfq.refused &= ~COLLECT
    elif reason and step in (LOCK, COLLECT) and rfq.state in (RfqState.ACCEPTED, RfqState.PAID):
        if rfq.paid:
            desk.refunds.append([rfq.rfq_id, rfq.paid, "", "the trade was refused"])
        why = Reason.OTC_INVENTORY_SHORT if step == LOCK else Reason.OTC_CLIENT_BALANCE_SHORT
        desk.close(rfq, RfqState.CANCELLED, ts, int(why), why.name)
        return rfq
    elif reason and step not in (LOCK, COLLECT):
        desk.problems.append([rfq.rfq_id, STEPS[step], reason])
    advance(desk, rfq, ts)
    return rfq


def advance(desk, rfq, ts: int) -> None:
    """Send what ``rfq``'s state and finished steps call for next, and move its state on."""
    if rfq.state == RfqState.CANCELLED:
        for done, back in ((LOCK, RETURN_LOCK), (COLLECT, RETURN_COLLECT)):
            if rfq.done & done and not rfq.sent & back:
                send(desk, rfq, back, ts)
        _reindex(desk, rfq)
        return
    if rfq.state in FINAL or rfq.state == RfqState.QUOTED:
        _reindex(desk, rfq)
        return
    if rfq.state == RfqState.ACCEPTED and not rfq.credit and paid_in(desk, rfq):
        rfq.state = RfqState.PAID
        desk.note(rfq, ts, "desk", "paid", "accepted", "paid", "")
    if rfq.state == RfqState.PAID or (rfq.credit and rfq.state == RfqState.ACCEPTED):
        if rfq.done & LOCK and not rfq.sent & DELIVER:
            if rfq.approved or not needs_approval(desk, rfq):
                send(desk, rfq, DELIVER, ts)
            elif not rfq.approve_by_ns:
                rfq.approve_by_ns = ts + desk.rules.approval_window_ns
                desk.note(rfq, ts, "desk", "delivery held", "", "awaiting approval",
                          "above the hot wallet's threshold")
    if rfq.done & COLLECT and rfq.sent & DELIVER and not rfq.sent & PAY_DESK:
        send(desk, rfq, PAY_DESK, ts)          # (the desk is paid once it delivers: until then the
                                               # payment can still go back)
    if rfq.done & DELIVER and rfq.state != RfqState.DELIVERED:
        rfq.state = RfqState.DELIVERED
        desk.note(rfq, ts, "desk", "delivered", "", "delivered", "")
    if rfq.state == RfqState.DELIVERED and (rfq.done & PAY_DESK or (fiat(desk, rfq) and paid_in(desk, rfq))):
        _settle(desk, rfq, ts)
    _reindex(desk, rfq)


def _settle(desk, rfq, ts: int) -> None:
    spec = desk.rules.pairs[rfq.pair].spec
    at_index = spec.notional(rfq.index_ticks, rfq.lots)
    income = rfq.notional - at_index if rfq.side == BUY else at_index - rfq.notional
    desk.income[spec.quote.name] = desk.income.get(spec.quote.name, 0) + income
    if fiat(desk, rfq):
        currency = desk.rules.methods[rfq.method].currency
        desk.fiat_in[currency] = desk.fiat_in.get(currency, 0) + rfq.paid
    desk.blotter.append([rfq.rfq_id, rfq.account_id, rfq.pair, "buy" if rfq.side == BUY else "sell",
                         rfq.lots * spec.lot_minor, rfq.price_ticks * spec.tick_minor, rfq.notional, rfq.method,
                         rfq.index_ticks * spec.tick_minor, rfq.spread_bps, income, "t+1" if rfq.credit else "t+0",
                         rfq.accepted_ns, ts])
    desk.close(rfq, RfqState.SETTLED, ts, 0, f"spread income {income} {spec.quote.name}")


def _reindex(desk, rfq) -> None:
    """``open`` holds the RFQs not final or with money still moving."""
    if rfq.state in FINAL and not moving(rfq):
        desk.open.pop(rfq.rfq_id, None)
    else:
        desk.open[rfq.rfq_id] = rfq


def check_invariants(desk) -> None:
    """The desk's locks are exactly the LOCK crossings on their way; transit holds exactly what
    the acknowledged steps moved into it and not out (a finished RFQ let go moved nothing net)."""
    locking: dict[str, int] = {}
    transit: dict[str, int] = {}
    for rfq in desk.rfqs.values():
        for step in STEPS:
            _, asset, amount = leg(desk, rfq, step)
            if step == LOCK and rfq.sent & LOCK and not rfq.done & LOCK and not rfq.refused & LOCK:
                locking[asset] = locking.get(asset, 0) - amount
            if rfq.done & step:
                transit[asset] = transit.get(asset, 0) - amount
        assert not rfq.done & rfq.refused, f"{rfq.rfq_id}: a step both done and refused"
        assert (rfq.done | rfq.refused) & ~rfq.sent == 0, f"{rfq.rfq_id}: a step answered and never sent"
    assert {a: v for a, v in desk.locked.items() if v} == {a: v for a, v in locking.items() if v}, "OTC locks"
    assert {a: v for a, v in desk.outbox.transit.items() if v} == {a: v for a, v in transit.items() if v}, \
            "OTC transit"
    assert all(v >= 0 for v in desk.outbox.transit.values()), "OTC transit below zero"
