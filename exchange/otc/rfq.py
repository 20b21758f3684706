"""One request for quote and the desk that answers it (seed 000: 询价, 报价, 锁定, 付款, 放币, 结算).

Every RFQ is one record whose ``state`` moves one way:

    QUOTED --accept before expiry--> ACCEPTED --paid--> PAID --delivered--> DELIVERED --paid out--> SETTLED
       \\--its time to live ran out--> EXPIRED      \\--refused, or its payment window ran out--> CANCELLED

A credit trade (T+1, ``exchange.otc.credit``) is delivered before it is paid:
ACCEPTED --delivered--> DELIVERED --paid--> SETTLED. The desk (``OtcDesk``):

- **inquire**: a client asks for a pair, a side and a base quantity or a quote
  notional, with a payment method, for settlement now or T+1 (``credit``). The
  desk prices it (``exchange.otc.pricing``) and quotes only what it could honour
  now: its free inventory of what it would deliver (OTC_INVENTORY_SHORT), the
  client's available balance for a crypto-paid trade (``balances``, read by the
  actor: OTC_CLIENT_BALANCE_SHORT), the client's credit (``exchange.otc.credit``).
  The quote is firm until ``expires_ns`` (``[otc] quote_ttl_s``), signed
  (``exchange.otc.signing``), and carries its spread's breakdown by component.
- **accept**: the quote's owner only (UNKNOWN_QUOTE), before expiry (QUOTE_EXPIRED:
  at ``expires_ns`` or later, or once ``expire`` ran), once (QUOTE_ALREADY_ACCEPTED).
  Acceptance and expiry race on ``ts_ns`` alone, in the order the desk applies
  them: one of them wins. Acceptance starts the money moving
  (``exchange.otc.settlement``): the desk's inventory is locked out of its account
  and a crypto-paid trade's payment taken from the client's, each a numbered
  crossing a shard applies or refuses (``exchange.otc.crossing``); a refusal
  cancels the trade with its reason (OTC_INVENTORY_SHORT, OTC_CLIENT_BALANCE_SHORT).
- **bank payment** (fiat, seed 000's 合规审查): only the bank feed reports one (the
  actor's operator door: a client's own "receipt" changes nothing), for an accepted
  fiat-paid trade or a delivered fiat credit trade (OTC_NOT_AWAITING_PAYMENT
  otherwise), from the client's verified name (``[otc.clients]``, compared without
  case or spacing: THIRD_PARTY_PAYMENT otherwise). Amounts are in the pair's quote
  asset's minor units. A partial payment waits; the trade is paid once the notional
  is in, and what came beyond it is refunded. Money the desk refuses is never kept:
  each refusal with an amount records a **refund** (``refunds``), as does a
  cancelled trade's partial payment.
- **pay** (a crypto credit trade): its client pays from its balance, a crossing.
- **approve**: a delivery above ``[otc.delivery_approval]`` waits for an operator,
  ``approval_window_s`` at most.
- **expire**: at a time, quotes past their time to live are EXPIRED, accepted
  trades past their payment window and held deliveries past their approval window
  CANCELLED (what was locked or paid goes back),
  credit trades past their due time overdue, finished RFQs past ``retain_s`` let go.
- **hedge**: ``exchange.otc.hedge`` decides the orders that bring the inventory back
  inside its limits; the actor places them on the book from the desk's account.

Every transition is an entry in the desk's audit trail (``audit``: hash-chained,
``exchange.risk.audit``), which ``trail`` reads per RFQ. Fiat-paid trades are
quoted only to verified clients (OTC_CLIENT_NOT_VERIFIED) and only for buying
(FIAT_PAYS_BUYS_ONLY: the desk pays a seller in the quote asset).

The desk's inventory is what its account holds available (``set_inventory``, as the
actor reads it); ``free`` is that less what accepted trades are locking right now.
Time is the commands' ``ts_ns``; nothing reads a clock.

**Inputs** (``INPUTS``): everything that changes the desk is a plain list
``[kind, *args]`` that ``apply`` takes: what a journal keeps and a replay feeds back.
Signatures are deterministic, so a replay rebuilds the same quotes, signatures
included; ``to_plain``/``restore`` are the snapshot.
"""
from __future__ import annotations

from collections import deque

from exchange.core.reasons import Reason
from exchange.core.routing import ShardLayout, shard_for
from exchange.matching.orders import BUY
from exchange.otc import credit, hedge, settlement
from exchange.otc.crossing import Outbox
from exchange.otc.pricing import IndexHistory, Terms, terms
from exchange.otc.rules import OtcRules
from exchange.otc.signing import Signer
from exchange.otc.states import FINAL, RULE, RfqState
from exchange.risk.audit import AuditLog

__all__ = ["FINAL", "INPUTS", "OtcDesk", "Rfq", "RfqState"]


INPUTS = {"index": "set_index", "inventory": "set_inventory", "inquire": "inquire", "accept": "accept",
          "expire": "expire", "bank": "bank_payment", "crossed": "crossed", "pay": "pay", "approve": "approve",
          "hedge": "hedge", "hedged": "hedged"}


class Rfq:
    __slots__ = ("rfq_id", "account_id", "pair", "side", "lots", "price_ticks", "notional", "method", "spread_bps",
                 "breakdown", "index_ticks", "quoted_ns", "expires_ns", "state", "accepted_ns", "pay_by_ns",
                 "signature", "paid", "credit", "due_ns", "overdue", "sent", "done", "refused", "approved",
                 "approve_by_ns", "why", "closed_ns")

    def __init__(self, rfq_id: str, account_id: int, pair: str, side: int, method: str, quoted_ns: int,
                 expires_ns: int, t, credit: bool = False) -> None:
        self.rfq_id, self.account_id, self.pair, self.side, self.method = rfq_id, account_id, pair, side, method
        self.lots, self.price_ticks, self.notional = t.lots, t.price_ticks, t.notional
        self.spread_bps, self.breakdown, self.index_ticks = t.spread_bps, t.breakdown, t.index_ticks
        self.quoted_ns, self.expires_ns = quoted_ns, expires_ns
        self.state = RfqState.QUOTED
        self.accepted_ns = self.pay_by_ns = 0
        self.signature = ""
        self.paid = 0                             # fiat received so far (quote asset minor units)
        self.credit = credit                      # settles T+1 (exchange.otc.credit)
        self.due_ns = 0                           # a credit trade's payment is due then
        self.overdue = False
        self.sent = self.done = self.refused = 0  # settlement steps (exchange.otc.settlement) as bits
        self.approved = False                     # an operator released a delivery above the threshold
        self.approve_by_ns = 0                    # a held delivery is cancelled unless approved by then
        self.why = 0                              # the reason it was cancelled
        self.closed_ns = 0                        # when it reached a final state

    def quote(self, spec) -> dict:
        """The firm quote as signed and handed to the client: amounts in minor units."""
        body = {"id": self.rfq_id, "account": self.account_id, "pair": self.pair,
                "side": "buy" if self.side == BUY else "sell", "price": self.price_ticks * spec.tick_minor,
                "quantity": self.lots * spec.lot_minor, "notional": self.notional, "method": self.method,
                "index": self.index_ticks * spec.tick_minor, "spread_bps": self.spread_bps,
                "breakdown": {name: bps for name, bps in self.breakdown}, "expires_ns": self.expires_ns}
        if self.credit:
            body["settlement"] = "t+1"          # (a T+0 quote's body is what it was before credit existed)
        return body

    def to_plain(self) -> list:
        return [getattr(self, name) if name != "breakdown" else [list(b) for b in self.breakdown]
                for name in self.__slots__]

    @classmethod
    def from_plain(cls, values: list) -> Rfq:
        rfq = cls.__new__(cls)
        for name, value in zip(cls.__slots__, values):
            setattr(rfq, name, value)
        rfq.breakdown = tuple(tuple(b) for b in rfq.breakdown)
        rfq.state = RfqState(rfq.state)
        return rfq

    def canonical(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)


class OtcDesk:
    def __init__(self, rules: OtcRules, shards: int | ShardLayout = 1):
        self.rules = rules
        self.shards = shards
        self.signer = Signer(rules.signing_seed)
        self.history = {name: IndexHistory(rules.volatility_window_ns) for name in rules.pairs}
        self.rfqs: dict[str, Rfq] = {}
        self.open: dict[str, Rfq] = {}               # not final, or money still moving: what ``expire`` looks at
        self.closed: deque = deque()                 # (closed_ns, rfq id) in closing order: let go past retain_s
        self.seq = 0
        self.inventory: dict[str, int] = {}          # asset -> the desk account's available balance
        self.locked: dict[str, int] = {}             # asset -> of which locks are on their way out of it
        self.refunds: list[list] = []                # [rfq id, amount, reference, why]: money to send back
        self.outbox = Outbox()                       # crossings not acknowledged yet, and the transit
        self.blotter: list[list] = []                # settled trades (``settlement.BLOTTER_FIELDS``): private
        self.income: dict[str, int] = {}             # quote asset -> spread income of settled trades
        self.fiat_in: dict[str, int] = {}            # currency -> fiat received for settled trades (minor units)
        self.hedges = hedge.Hedger(rules)
        self.problems: list[list] = []               # [rfq id, step, reason]: a credit a shard refused
        self.audit = AuditLog("otc")

    # ---- inputs --------------------------------------------------------------------------------
    def set_index(self, pair: str, ts: int, ticks: int) -> None:
        self.history[pair].add(ts, ticks)

    def set_inventory(self, asset: str, amount: int) -> None:
        self.inventory[asset] = amount

    def free(self, asset: str) -> int:
        return self.inventory.get(asset, 0) - self.locked.get(asset, 0)

    def shard_of(self, account_id: int) -> int:
        return shard_for(account_id, self.shards)

    # ---- the client's steps ------------------------------------------------------------------
    def inquire(self, account_id: int, pair: str, side: int, quantity: int, notional: int, method: str,
                ts: int, credit_trade: bool = False, balances: dict | None = None) -> Rfq | Reason:
        """A firm, signed quote, or why none (``exchange.otc.pricing`` for the pricing's reasons).
        ``balances``: the client's available balances by asset, as its shard reported them
        (None: not checked)."""
        rules = self.rules
        otc_pair = rules.pairs.get(pair)
        if otc_pair is None:
            return Reason.OTC_UNKNOWN_PAIR
        payment = rules.methods.get(method)
        fiat = payment is not None and payment.kind == "fiat"
        if fiat:
            if side != BUY:
                return Reason.FIAT_PAYS_BUYS_ONLY
            if account_id not in (rules.clients or {}):
                return Reason.OTC_CLIENT_NOT_VERIFIED
        t = terms(rules, otc_pair, side, quantity, notional, method, self.history[pair], ts)
        if type(t) is Reason:
            return t
        gives, takes = settlement.gives(otc_pair.spec, side, t.lots, t.notional), \
            settlement.takes(otc_pair.spec, side, t.lots, t.notional)
        if self.free(gives[0]) < gives[1]:
            return Reason.OTC_INVENTORY_SHORT
        if credit_trade:
            refused = credit.refusal(self, account_id, otc_pair.spec, t.notional)
            if refused is not None:
                return refused
        elif not fiat and balances is not None and balances.get(takes[0], 0) < takes[1]:
            return Reason.OTC_CLIENT_BALANCE_SHORT
        self.seq += 1
        rfq = Rfq(f"q{self.seq}", account_id, pair, side, method, ts, ts + rules.quote_ttl_ns, t, credit_trade)
        rfq.signature = self.signer.sign(rfq.quote(otc_pair.spec))
        self.rfqs[rfq.rfq_id] = self.open[rfq.rfq_id] = rfq
        self.note(rfq, ts, str(account_id), "quoted", "", "quoted",
                  f"{rfq.spread_bps} bps over the index{' T+1' if credit_trade else ''}")
        return rfq

    def accept(self, account_id: int, rfq_id: str, ts: int) -> Rfq | Reason:
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or rfq.account_id != account_id:
            return Reason.UNKNOWN_QUOTE
        if rfq.state != RfqState.QUOTED:
            return Reason.QUOTE_EXPIRED if rfq.state == RfqState.EXPIRED else Reason.QUOTE_ALREADY_ACCEPTED
        if ts >= rfq.expires_ns:
            return Reason.QUOTE_EXPIRED
        spec = self.rules.pairs[rfq.pair].spec
        asset, amount = settlement.gives(spec, rfq.side, rfq.lots, rfq.notional)
        if self.free(asset) < amount:
            return Reason.OTC_INVENTORY_SHORT
        if rfq.credit:
            refused = credit.refusal(self, account_id, spec, rfq.notional)
            if refused is not None:
                return refused
        rfq.state, rfq.accepted_ns, rfq.pay_by_ns = RfqState.ACCEPTED, ts, ts + self.rules.payment_window_ns
        if rfq.credit:
            rfq.due_ns = ts + self.rules.credit_term_ns
        self.note(rfq, ts, str(account_id), "accepted", "quoted", "accepted", "")
        settlement.start(self, rfq, ts)
        return rfq

    def bank_payment(self, rfq_id: str, amount: int, payer_name: str, reference: str, ts: int) -> Rfq | Reason:
        """The bank feed's report of a transfer for ``rfq_id``: taken, or refused and refunded."""
        if amount <= 0:
            return Reason.NON_POSITIVE_AMOUNT
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or self.rules.methods[rfq.method].kind != "fiat" or not settlement.awaits_payment(rfq):
            self.refunds.append([rfq_id, amount, reference, "not awaiting payment"])
            return Reason.OTC_NOT_AWAITING_PAYMENT
        if _name_key(payer_name) != _name_key((self.rules.clients or {}).get(rfq.account_id, "")):
            self.refunds.append([rfq_id, amount, reference, "third-party payer"])
            self.note(rfq, ts, "bank", "payment refused", str(rfq.paid), str(rfq.paid), "third-party payer")
            return Reason.THIRD_PARTY_PAYMENT
        before = rfq.paid
        rfq.paid += amount
        if rfq.paid > rfq.notional:
            self.refunds.append([rfq_id, rfq.paid - rfq.notional, reference, "paid beyond the notional"])
            rfq.paid = rfq.notional
        self.note(rfq, ts, "bank", "paid", str(before), str(rfq.paid), reference)
        settlement.advance(self, rfq, ts)
        return rfq

    def pay(self, account_id: int, rfq_id: str, ts: int) -> Rfq | Reason:
        """A crypto credit trade's client pays it from its balance (a crossing; its result
        comes with the shard's answer)."""
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or rfq.account_id != account_id or not rfq.credit \
                or self.rules.methods[rfq.method].kind == "fiat" or not settlement.awaits_payment(rfq):
            return Reason.OTC_NOT_YOURS_TO_PAY
        settlement.collect(self, rfq, ts)
        return rfq

    def approve(self, rfq_id: str, operator: str, reason: str, ts: int) -> Rfq | Reason:
        """An operator releases a delivery above ``[otc.delivery_approval]``."""
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or rfq.approved or not settlement.needs_approval(self, rfq) \
                or rfq.state not in (RfqState.ACCEPTED, RfqState.PAID):
            return Reason.OTC_NOT_AWAITING_APPROVAL
        rfq.approved = True
        self.note(rfq, ts, operator, "delivery approved", "", "approved", reason)
        settlement.advance(self, rfq, ts)
        return rfq

    def crossed(self, shard: int, seq: int, reason: int, ts: int) -> Rfq | None:
        """A shard's answer for crossing ``seq``: the RFQ it moved on (None: answered before)."""
        return settlement.crossed(self, shard, seq, reason, ts)

    def hedge(self, ts: int) -> list | None:
        """The next hedge order, recorded (``exchange.otc.hedge``), or None."""
        return self.hedges.next(self, ts)

    def hedged(self, number: int, filled: int, ts: int) -> None:
        self.hedges.done(self, number, filled, ts)

    # ---- time ---------------------------------------------------------------------------------
    def expiring(self, ts: int) -> bool:
        """Would ``expire(ts)`` move anything?"""
        return any(_timeout(self, rfq, ts) for rfq in self.open.values()) or \
            bool(self.closed and ts >= self.closed[0][0] + self.rules.retain_ns)

    def expire(self, ts: int) -> list[Rfq]:
        """Quotes past their time to live EXPIRED, accepted trades past their payment window
        CANCELLED (their locks and payments go back), credit trades past their due time
        overdue, finished RFQs past ``retain_s`` let go; the RFQs moved, in id order."""
        moved = []
        for rfq in list(self.open.values()):
            due = _timeout(self, rfq, ts)
            if due is None:
                continue
            if due == "overdue":
                rfq.overdue = True
                self.note(rfq, ts, "desk", "credit overdue", "due", "overdue", "not paid by its due time")
            elif due == "expired":
                self.close(rfq, RfqState.EXPIRED, ts, 0, "its time to live ran out")
            else:
                if rfq.paid:
                    self.refunds.append([rfq.rfq_id, rfq.paid, "", CANCELLED_BY[due][0]])
                self.close(rfq, RfqState.CANCELLED, ts, 0, CANCELLED_BY[due][1])
            moved.append(rfq)
        closed = self.closed
        while closed and ts >= closed[0][0] + self.rules.retain_ns:
            _, rfq_id = closed.popleft()
            if rfq_id in self.open:                  # money still moving: looked at again later
                closed.append((ts, rfq_id))
                break
            del self.rfqs[rfq_id]
        return sorted(moved, key=lambda r: int(r.rfq_id[1:]))

    def close(self, rfq: Rfq, state: RfqState, ts: int, why: int, text: str) -> None:
        """Move ``rfq`` to a final state (what it locked or was paid goes back: ``settlement``)."""
        before = rfq.state.name.lower()
        rfq.state, rfq.why, rfq.closed_ns = state, why, ts
        self.closed.append((ts, rfq.rfq_id))
        self.note(rfq, ts, "desk", state.name.lower(), before, state.name.lower(), text)
        settlement.advance(self, rfq, ts)

    def note(self, rfq: Rfq, ts: int, who: str, what: str, before: str, after: str, why: str) -> None:
        """One transition of ``rfq`` in the audit trail."""
        self.audit.append(ts, who, what, rfq.rfq_id, before, after, why, RULE)

    def trail(self, rfq_id: str) -> list[dict]:
        """Every transition of one RFQ, oldest first (from the audit trail)."""
        return [e.view() for e in self.audit.query(target=rfq_id) if e.target == rfq_id]

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
                "rfqs": [r.to_plain() for _, r in sorted(self.rfqs.items())], "outbox": self.outbox.to_plain(),
                "blotter": self.blotter, "income": sorted(self.income.items()), "fiat_in": sorted(self.fiat_in.items()),
                "hedges": self.hedges.to_plain(), "problems": self.problems, "audit": self.audit.snapshot(),
                "closed": [list(c) for c in self.closed]}

    def restore(self, state: dict) -> None:
        self.seq = state["seq"]
        self.inventory = dict((a, v) for a, v in state["inventory"])
        self.locked = dict((a, v) for a, v in state["locked"])
        for pair, (low, high, last) in state["history"].items():
            history = self.history[pair]
            history.low, history.high, history.last = (deque(tuple(x) for x in low), deque(tuple(x) for x in high),
                                                       last)
        self.refunds = [list(r) for r in state.get("refunds", ())]
        self.rfqs = {values[0]: Rfq.from_plain(values) for values in state["rfqs"]}
        self.open = {i: r for i, r in self.rfqs.items() if r.state not in FINAL or settlement.moving(r)}
        self.closed = deque((ns, i) for ns, i in state["closed"])
        self.outbox.restore(state["outbox"])
        self.blotter = [list(b) for b in state["blotter"]]
        self.income = {a: v for a, v in state["income"]}
        self.fiat_in = {a: v for a, v in state["fiat_in"]}
        self.hedges.restore(state["hedges"])
        self.problems = [list(p) for p in state["problems"]]
        self.audit.restore(state["audit"])

    # ---- state ---------------------------------------------------------------------------
    def check_invariants(self) -> None:
        settlement.check_invariants(self)
        assert self.open == {i: r for i, r in self.rfqs.items() if r.state not in FINAL or settlement.moving(r)}, \
            "OTC open index"

    def canonical(self) -> tuple:
        return (self.seq, tuple(r.canonical() for _, r in sorted(self.rfqs.items())),
                tuple((p, tuple(h.low), tuple(h.high), h.last) for p, h in sorted(self.history.items())),
                tuple(sorted(self.inventory.items())), tuple(sorted((a, v) for a, v in self.locked.items() if v)),
                tuple(tuple(r) for r in self.refunds), self.outbox.canonical(), tuple(map(tuple, self.blotter)),
                tuple(sorted(self.income.items())), tuple(sorted(self.fiat_in.items())), self.hedges.canonical(),
                tuple(map(tuple, self.problems)), self.audit.canonical(), tuple(self.closed))


CANCELLED_BY = {"unpaid": ("payment window ran out", "its payment window ran out"),    # (refund's why,
               "unapproved": ("delivery not approved in time",                      #  the trail's why)
                              "no operator approved the delivery in time")}


def _timeout(desk: OtcDesk, rfq: Rfq, ts: int) -> str | None:
    """The time-driven step due on ``rfq`` at ``ts``: ``expired`` (a quote's time to live),
    ``unpaid`` (a T+0 trade's payment window), ``unapproved`` (a held delivery's approval
    window), ``overdue`` (a credit trade's due time), or None."""
    if rfq.state == RfqState.QUOTED and ts >= rfq.expires_ns:
        return "expired"
    if rfq.state == RfqState.ACCEPTED and not rfq.credit and ts >= rfq.pay_by_ns and not settlement.paid_in(desk, rfq):
        return "unpaid"
    if settlement.awaits_approval(desk, rfq) and ts >= rfq.approve_by_ns:
        return "unapproved"
    if rfq.credit and not rfq.overdue and ts >= rfq.due_ns > 0 and rfq.state not in FINAL:
        return "overdue"
    return None


def _name_key(name: str) -> str:
    """A payer's name as compared: case and spacing do not count."""
    return " ".join(name.casefold().split())
