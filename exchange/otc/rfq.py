"""One request for quote and the desk that answers it (seed 000: 询价, 报价, 锁定).

Every RFQ is one record whose ``state`` moves one way:

    QUOTED --accept before expiry--> ACCEPTED --paid--> PAID --delivered--> DELIVERED --> SETTLED
       \\--its time to live ran out--> EXPIRED      \\--its payment window ran out--> CANCELLED

(DELIVERED and SETTLED, the delivery, are not built yet: ``docs/OTC.md``.) The
desk (``OtcDesk``):

- **inquire**: a client asks for a pair, a side and a base quantity or a quote
  notional, with a payment method. The desk prices it (``exchange.otc.pricing``)
  and quotes only what it could honour now (its free inventory of what it would
  deliver: OTC_INVENTORY_SHORT otherwise), firm until ``expires_ns`` (``[otc]
  quote_ttl_s``), signed (``exchange.otc.signing``): the quote carries its spread's
  breakdown by component.
- **accept**: the quote's owner only (UNKNOWN_QUOTE), before expiry (QUOTE_EXPIRED:
  at ``expires_ns`` or later, or once ``expire`` ran), once (QUOTE_ALREADY_ACCEPTED);
  it locks what the desk delivers (the base a buyer gets, the quote a seller gets)
  until the trade settles or is cancelled (OTC_INVENTORY_SHORT if that is gone).
  Acceptance and expiry race on ``ts_ns`` alone, in the order the desk applies
  them: one of them wins, the other is refused or finds nothing to do.
- **bank payment** (fiat, seed 000's 合规审查): only the bank feed reports one (the
  actor's operator door: a client's own "receipt" changes nothing), for an accepted
  fiat-paid trade (OTC_NOT_AWAITING_PAYMENT otherwise), from the client's verified
  name (``[otc.clients]``, compared without case or spacing: THIRD_PARTY_PAYMENT
  otherwise). Amounts are in the pair's quote asset's minor units (fiat methods
  are for pairs quoted in a stablecoin of their currency). A partial payment
  waits; the trade is PAID once the notional is in, and what came beyond it is
  refunded. Money the desk refuses is never kept: each refusal with an amount
  records a **refund** (``refunds``: what to send back, to whom, why), as does a
  cancelled trade's partial payment.
- **expire**: at a time, every quote past its time to live is EXPIRED and every
  accepted trade past its payment window is CANCELLED, its lock released and what
  it received refunded.

Fiat-paid trades are quoted only to verified clients (OTC_CLIENT_NOT_VERIFIED) and
only for buying (FIAT_PAYS_BUYS_ONLY: the desk pays a seller in the quote asset).

The desk's inventory is what it holds to deliver (``set_inventory``: the desk's own
account's balances, as the actor reads them); ``free`` is that less what accepted
trades locked. Time is the commands' ``ts_ns``; nothing reads a clock.

**Inputs** (``INPUTS``): everything that changes the desk is one of ``index``,
``inventory``, ``inquire``, ``accept``, ``expire``, a plain list ``[kind, *args]``
that ``apply`` takes: what a journal keeps and a replay feeds back. Signatures are
deterministic, so a replay rebuilds the same quotes, signatures included;
``to_plain``/``restore`` are the snapshot.
"""
from __future__ import annotations

from collections import deque
from enum import IntEnum

from exchange.core.reasons import Reason
from exchange.matching.orders import BUY
from exchange.otc.pricing import IndexHistory, Terms, terms
from exchange.otc.rules import OtcRules
from exchange.otc.signing import Signer


class RfqState(IntEnum):
    QUOTED = 1
    ACCEPTED = 2
    PAID = 3
    DELIVERED = 4
    SETTLED = 5
    EXPIRED = 6
    CANCELLED = 7


OPEN = (RfqState.QUOTED, RfqState.ACCEPTED, RfqState.PAID)      # PAID: the lock held until delivery
INPUTS = {"index": "set_index", "inventory": "set_inventory", "inquire": "inquire", "accept": "accept",
          "expire": "expire", "bank": "bank_payment"}


class Rfq:
    __slots__ = ("rfq_id", "account_id", "pair", "side", "lots", "price_ticks", "notional", "method", "spread_bps",
                 "breakdown", "index_ticks", "quoted_ns", "expires_ns", "state", "accepted_ns", "pay_by_ns",
                 "signature", "paid")

    def __init__(self, rfq_id: str, account_id: int, pair: str, side: int, method: str, quoted_ns: int,
                 expires_ns: int, t) -> None:
        self.rfq_id, self.account_id, self.pair, self.side, self.method = rfq_id, account_id, pair, side, method
        self.lots, self.price_ticks, self.notional = t.lots, t.price_ticks, t.notional
        self.spread_bps, self.breakdown, self.index_ticks = t.spread_bps, t.breakdown, t.index_ticks
        self.quoted_ns, self.expires_ns = quoted_ns, expires_ns
        self.state = RfqState.QUOTED
        self.accepted_ns = self.pay_by_ns = 0
        self.signature = ""
        self.paid = 0                             # fiat received so far (quote asset minor units)

    def quote(self, spec) -> dict:
        """The firm quote as signed and handed to the client: amounts in minor units."""
        return {"id": self.rfq_id, "account": self.account_id, "pair": self.pair,
                "side": "buy" if self.side == BUY else "sell", "price": self.price_ticks * spec.tick_minor,
                "quantity": self.lots * spec.lot_minor, "notional": self.notional, "method": self.method,
                "index": self.index_ticks * spec.tick_minor, "spread_bps": self.spread_bps,
                "breakdown": {name: bps for name, bps in self.breakdown}, "expires_ns": self.expires_ns}

    def canonical(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)


class OtcDesk:
    def __init__(self, rules: OtcRules):
        self.rules = rules
        self.signer = Signer(rules.signing_seed)
        self.history = {name: IndexHistory(rules.volatility_window_ns) for name in rules.pairs}
        self.rfqs: dict[str, Rfq] = {}
        self.open: dict[str, Rfq] = {}              # quoted or accepted: what ``expire`` looks at (derived)
        self.seq = 0
        self.inventory: dict[str, int] = {}          # asset -> what the desk holds to deliver (minor units)
        self.locked: dict[str, int] = {}             # asset -> of which accepted trades hold
        self.refunds: list[list] = []                # [rfq id, amount, reference, why]: money to send back

    # ---- inputs ---------------------------------------------------------------------------
    def set_index(self, pair: str, ts: int, ticks: int) -> None:
        self.history[pair].add(ts, ticks)

    def set_inventory(self, asset: str, amount: int) -> None:
        self.inventory[asset] = amount

    def free(self, asset: str) -> int:
        return self.inventory.get(asset, 0) - self.locked.get(asset, 0)

    # ---- the client's steps ------------------------------------------------------------------
    def inquire(self, account_id: int, pair: str, side: int, quantity: int, notional: int, method: str,
                ts: int) -> Rfq | Reason:
        """A firm, signed quote, or why none (``exchange.otc.pricing`` for the pricing's reasons)."""
        rules = self.rules
        otc_pair = rules.pairs.get(pair)
        if otc_pair is None:
            return Reason.OTC_UNKNOWN_PAIR
        payment = rules.methods.get(method)
        if payment is not None and payment.kind == "fiat":
            if side != BUY:
                return Reason.FIAT_PAYS_BUYS_ONLY
            if account_id not in (rules.clients or {}):
                return Reason.OTC_CLIENT_NOT_VERIFIED
        t = terms(rules, otc_pair, side, quantity, notional, method, self.history[pair], ts)
        if type(t) is Reason:
            return t
        asset, amount = self._delivers(otc_pair.spec, side, t.lots, t.notional)
        if self.free(asset) < amount:
            return Reason.OTC_INVENTORY_SHORT
        self.seq += 1
        rfq = Rfq(f"q{self.seq}", account_id, pair, side, method, ts, ts + rules.quote_ttl_ns, t)
        rfq.signature = self.signer.sign(rfq.quote(otc_pair.spec))
        self.rfqs[rfq.rfq_id] = self.open[rfq.rfq_id] = rfq
        return rfq

    def accept(self, account_id: int, rfq_id: str, ts: int) -> Rfq | Reason:
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or rfq.account_id != account_id:
            return Reason.UNKNOWN_QUOTE
        if rfq.state != RfqState.QUOTED:
            return Reason.QUOTE_EXPIRED if rfq.state == RfqState.EXPIRED else Reason.QUOTE_ALREADY_ACCEPTED
        if ts >= rfq.expires_ns:
            return Reason.QUOTE_EXPIRED
        asset, amount = self._delivers(self.rules.pairs[rfq.pair].spec, rfq.side, rfq.lots, rfq.notional)
        if self.free(asset) < amount:
            return Reason.OTC_INVENTORY_SHORT
        self.locked[asset] = self.locked.get(asset, 0) + amount
        rfq.state, rfq.accepted_ns, rfq.pay_by_ns = RfqState.ACCEPTED, ts, ts + self.rules.payment_window_ns
        return rfq

    def bank_payment(self, rfq_id: str, amount: int, payer_name: str, reference: str, ts: int) -> Rfq | Reason:
        """The bank feed's report of a transfer for ``rfq_id``: taken, or refused and refunded."""
        if amount <= 0:
            return Reason.NON_POSITIVE_AMOUNT
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or rfq.state != RfqState.ACCEPTED or self.rules.methods[rfq.method].kind != "fiat":
            self.refunds.append([rfq_id, amount, reference, "not awaiting payment"])
            return Reason.OTC_NOT_AWAITING_PAYMENT
        if _name_key(payer_name) != _name_key((self.rules.clients or {}).get(rfq.account_id, "")):
            self.refunds.append([rfq_id, amount, reference, "third-party payer"])
            return Reason.THIRD_PARTY_PAYMENT
        rfq.paid += amount
        if rfq.paid >= rfq.notional:
            if rfq.paid > rfq.notional:
                self.refunds.append([rfq_id, rfq.paid - rfq.notional, reference, "paid beyond the notional"])
                rfq.paid = rfq.notional
            rfq.state = RfqState.PAID
        return rfq

    def expiring(self, ts: int) -> bool:
        """Would ``expire(ts)`` move anything?"""
        return any((rfq.state == RfqState.QUOTED and ts >= rfq.expires_ns) or
                   (rfq.state == RfqState.ACCEPTED and ts >= rfq.pay_by_ns) for rfq in self.open.values())

    def expire(self, ts: int) -> list[Rfq]:
        """Quotes past their time to live and accepted trades past their payment window, moved
        to EXPIRED and CANCELLED (their locks released); in id order."""
        moved = []
        for rfq in list(self.open.values()):
            if rfq.state == RfqState.QUOTED and ts >= rfq.expires_ns:
                rfq.state = RfqState.EXPIRED
                moved.append(rfq)
            elif rfq.state == RfqState.ACCEPTED and ts >= rfq.pay_by_ns:
                asset, amount = self._delivers(self.rules.pairs[rfq.pair].spec, rfq.side, rfq.lots, rfq.notional)
                self.locked[asset] -= amount
                rfq.state = RfqState.CANCELLED
                if rfq.paid:
                    self.refunds.append([rfq.rfq_id, rfq.paid, "", "payment window ran out"])
                moved.append(rfq)
        for rfq in moved:
            del self.open[rfq.rfq_id]
        return sorted(moved, key=lambda r: int(r.rfq_id[1:]))

    @staticmethod
    def _delivers(spec, side: int, lots: int, notional: int) -> tuple[str, int]:
        """What the desk delivers on a trade: the base a buying client gets, or the quote a
        selling client gets."""
        return (spec.base.name, lots * spec.lot_minor) if side == BUY else (spec.quote.name, notional)

    # ---- inputs, as a journal keeps them ---------------------------------------------------
    def apply(self, entry: list):
        """Apply one input ``[kind, *args]`` (live or replayed): what the method it names answers."""
        kind, *args = entry
        if kind not in INPUTS:
            raise ValueError(f"not an OTC desk input: {kind!r}")
        return getattr(self, INPUTS[kind])(*args)

    def to_plain(self) -> dict:
        return {"seq": self.seq, "inventory": sorted(self.inventory.items()), "refunds": list(self.refunds),
                "locked": sorted(self.locked.items()),
                "history": {pair: [list(h.low), list(h.high), h.last] for pair, h in sorted(self.history.items())},
                "rfqs": [[r.rfq_id, r.account_id, r.pair, r.side, r.method, r.quoted_ns, r.expires_ns, r.lots,
                          r.price_ticks, r.notional, r.spread_bps, [list(b) for b in r.breakdown], r.index_ticks,
                          int(r.state), r.accepted_ns, r.pay_by_ns, r.signature, r.paid]
                         for _, r in sorted(self.rfqs.items())]}

    def restore(self, state: dict) -> None:
        self.seq = state["seq"]
        self.inventory = dict((a, v) for a, v in state["inventory"])
        self.locked = dict((a, v) for a, v in state["locked"])
        for pair, (low, high, last) in state["history"].items():
            history = self.history[pair]
            history.low, history.high, history.last = (deque(tuple(x) for x in low), deque(tuple(x) for x in high),
                                                       last)
        self.rfqs = {}
        self.refunds = [list(r) for r in state.get("refunds", ())]
        for (rfq_id, account, pair, side, method, quoted, expires, lots, price, notional, spread, breakdown, index,
             state_, accepted, pay_by, signature, paid) in state["rfqs"]:
            rfq = Rfq(rfq_id, account, pair, side, method, quoted, expires,
                      Terms(price, lots, notional, spread, tuple(tuple(b) for b in breakdown), index))
            rfq.state, rfq.accepted_ns, rfq.pay_by_ns, rfq.signature = RfqState(state_), accepted, pay_by, signature
            rfq.paid = paid
            self.rfqs[rfq_id] = rfq
        self.open = {i: r for i, r in self.rfqs.items() if r.state in OPEN}

    # ---- state ---------------------------------------------------------------------------
    def check_invariants(self) -> None:
        held: dict[str, int] = {}
        for rfq in self.rfqs.values():
            if rfq.state in (RfqState.ACCEPTED, RfqState.PAID):
                asset, amount = self._delivers(self.rules.pairs[rfq.pair].spec, rfq.side, rfq.lots, rfq.notional)
                held[asset] = held.get(asset, 0) + amount
        assert {a: v for a, v in self.locked.items() if v} == held, "OTC locks"
        assert self.open == {i: r for i, r in self.rfqs.items() if r.state in OPEN}, "OTC open index"

    def canonical(self) -> tuple:
        return (self.seq, tuple(r.canonical() for _, r in sorted(self.rfqs.items())),
                tuple((p, tuple(h.low), tuple(h.high), h.last) for p, h in sorted(self.history.items())),
                tuple(sorted(self.inventory.items())), tuple(sorted((a, v) for a, v in self.locked.items() if v)),
                tuple(tuple(r) for r in self.refunds))


def _name_key(name: str) -> str:
    """A payer's name as compared: case and spacing do not count."""
    return " ".join(name.casefold().split())
