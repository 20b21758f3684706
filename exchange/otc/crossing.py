"""Crossings: how the OTC desk moves money between accounts and its transit, exactly once.

An OTC trade moves money between a client's account and the desk's own account
(``[otc] desk_account``), which may live on two shards. The desk never moves
both legs at once: each leg is a **crossing**, one signed amount of one asset
into or out of one account's available balance, between the account and the
desk's **transit** (what the desk holds between the two legs, off every shard):

- a debit (``amount`` < 0) takes the money out of the account into transit: the
  desk's inventory locked at acceptance, a client's crypto payment. The shard
  refuses it when the account's available balance is short (INSUFFICIENT_BALANCE),
  so a lock or a payment is real or refused, never half;
- a credit (``amount`` > 0) pays out of transit into the account: the delivery to
  the client, the payment to the desk, a return after a cancellation. The desk
  only credits what transit holds, so a credit is never refused for money.

**Numbered, exactly once** (as compensations are, ``exchange.perp.compensation``):
the desk numbers its crossings per shard (``seq``), and the shard's ``OtcCrossings``
product applies only the next number. One already applied is answered again with
its result (``moved`` False: a retry after a lost answer or a restart); one
further on is refused OTC_CROSSING_OUT_OF_ORDER (changing nothing: the earlier
ones go first). A crossing the shard refuses for a business reason (an unknown
account or asset, a zero amount, a short balance) still takes its number: the
refusal is its result, the same on every replay, and the shard keeps it
(``refused``) to answer a retry.

The desk side (``Outbox``) keeps the crossings each shard has not acknowledged, in
order, and ``transit``: per asset, what the acknowledged crossings moved into it.
Conservation counts transit as the desk's holding (``OtcActor.audit``), read when
no crossing is unacknowledged, so no leg is counted twice or lost.
"""
from __future__ import annotations

from typing import NamedTuple

from exchange.core.reasons import Reason
from exchange.messages.records import OrderRejected, OtcCross, OtcCrossed


# ---- the shard's side -----------------------------------------------------------------------
class OtcCrossings:
    """The ``otc`` product of a shard: it applies the desk's crossings in their numbered order
    (``exchange.accounts.product``; plugged by ``exchange.venue.new_shard`` when the config
    has an ``[otc]`` desk)."""

    name = "otc"
    commands = frozenset((OtcCross,))
    links: tuple = ()
    wallet_type = None

    def __init__(self, config, ledger):
        self.ledger = ledger
        self._assets = config.assets
        self.seq = 0                          # the last crossing applied (or refused) here
        self.refused: dict[int, int] = {}     # seq -> the reason it was refused

    def attach(self, shard) -> None:
        pass

    def apply(self, cmd: OtcCross, context) -> tuple[list, None]:
        return self.cross(cmd), None

    def cross(self, cmd: OtcCross) -> list:
        if cmd.seq <= self.seq:
            return [_crossed(cmd, False, self.refused.get(cmd.seq, 0))]
        if cmd.seq != self.seq + 1:
            return [OrderRejected(cmd.request_id, cmd.account_id, int(Reason.OTC_CROSSING_OUT_OF_ORDER), 0)]
        self.seq = cmd.seq
        why = self._refusal(cmd)
        if why is not None:
            self.refused[cmd.seq] = int(why)
            return [_crossed(cmd, True, int(why))]
        self.ledger.accounts[cmd.account_id].available[self._assets[cmd.asset].index] += cmd.amount
        return [_crossed(cmd, True, 0)]

    def _refusal(self, cmd: OtcCross) -> Reason | None:
        account = self.ledger.accounts.get(cmd.account_id)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        spec = self._assets.get(cmd.asset)
        if spec is None:
            return Reason.UNKNOWN_ASSET
        if cmd.amount == 0:
            return Reason.NON_POSITIVE_AMOUNT
        if account.available[spec.index] + cmd.amount < 0:
            return Reason.INSUFFICIENT_BALANCE
        return None

    # ---- the product seam ------------------------------------------------------------------
    def apply_event(self, event) -> list:
        raise TypeError("the OTC crossings have no links")

    def order_closed(self, record, ts_ns: int) -> None:
        raise TypeError("the OTC crossings fund no orders")

    def withdrawal_block(self, account_id: int, prices) -> Reason | None:
        return None

    def wallets(self):
        return ()

    def totals(self) -> list[int]:
        return [0] * len(self._assets)       # what crossed out is the desk's transit, off the shard

    def check_invariants(self) -> None:
        assert all(0 < seq <= self.seq for seq in self.refused), "OTC refusals past the last crossing"

    def canonical(self) -> tuple:
        return (self.seq, tuple(sorted(self.refused.items())))

    def snapshot(self) -> dict:
        return {"seq": self.seq, "refused": sorted(self.refused.items())}

    def restore(self, state: dict) -> None:
        self.seq = state["seq"]
        self.refused = {seq: why for seq, why in state["refused"]}


def _crossed(cmd: OtcCross, moved: bool, reason: int) -> OtcCrossed:
    return OtcCrossed(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.asset, cmd.amount, cmd.seq, cmd.rfq, moved,
                      reason)


# ---- the desk's side ------------------------------------------------------------------------
class Crossing(NamedTuple):
    """One leg the desk recorded: ``purpose`` is its step in the RFQ (``exchange.otc.settlement``)."""
    shard: int
    seq: int
    account_id: int
    asset: str
    amount: int
    rfq: str
    purpose: str
    ts_ns: int

    def command(self) -> OtcCross:
        """The shard's command: the same body every time it is sent, so a retry is a replay."""
        return OtcCross(f"otc:{self.shard}:{self.seq}", self.ts_ns, self.account_id, self.asset, self.amount,
                        self.seq, self.rfq)


class Outbox:
    """The desk's crossings not acknowledged yet, per shard and in order, and its transit."""

    def __init__(self) -> None:
        self.numbered: dict[int, int] = {}            # shard -> the last seq given out
        self.unacked: dict[int, list[Crossing]] = {}  # shard -> crossings sent and not acknowledged, by seq
        self.transit: dict[str, int] = {}             # asset -> what acknowledged crossings moved into transit

    def add(self, shard: int, account_id: int, asset: str, amount: int, rfq: str, purpose: str,
            ts_ns: int) -> Crossing:
        seq = self.numbered.get(shard, 0) + 1
        self.numbered[shard] = seq
        crossing = Crossing(shard, seq, account_id, asset, amount, rfq, purpose, ts_ns)
        self.unacked.setdefault(shard, []).append(crossing)
        return crossing

    def ack(self, shard: int, seq: int, reason: int) -> Crossing | None:
        """The shard holds ``seq`` with this result: the crossing it settles, or None when it was
        acknowledged before (or is not the next one: acknowledgements come in order)."""
        waiting = self.unacked.get(shard)
        if not waiting or waiting[0].seq != seq:
            return None
        crossing = waiting.pop(0)
        if not waiting:
            del self.unacked[shard]
        if reason == 0:
            self.transit[crossing.asset] = self.transit.get(crossing.asset, 0) - crossing.amount
        return crossing

    def pending(self) -> int:
        return sum(len(v) for v in self.unacked.values())

    def to_plain(self) -> dict:
        return {"numbered": sorted(self.numbered.items()), "transit": sorted(self.transit.items()),
                "unacked": [list(c) for _, cs in sorted(self.unacked.items()) for c in cs]}

    def restore(self, state: dict) -> None:
        self.numbered = {s: n for s, n in state["numbered"]}
        self.transit = {a: v for a, v in state["transit"]}
        self.unacked = {}
        for fields in state["unacked"]:
            crossing = Crossing(*fields)
            self.unacked.setdefault(crossing.shard, []).append(crossing)

    def canonical(self) -> tuple:
        return (tuple(sorted(self.numbered.items())), tuple(sorted((a, v) for a, v in self.transit.items() if v)),
                tuple(c for _, cs in sorted(self.unacked.items()) for c in cs))
