"""Compensation from a perpetual market's insurance fund: how harmed customers are made
whole instead of rolling trades back (rulebook 5.2.2.5; ``docs/RISK.md`` says why).

An operator whose roles permit it (``treasury`` or ``admin``: ``exchange.risk.admin``)
pays an account out of a market's fund, with a reason. The money crosses from the
liquidator, which holds the funds, to the account's shard, exactly once:

1. **The fund records it** (``PerpLiquidator.compensate``): a ``COMPENSATION`` entry
   in the fund's public chain with the account, its shard, the payment's number
   ``seq`` among the fund's payments to that shard from that market, ``through``
   (all of them together, this one included), the operator and the reason. The
   fund's balance drops at once; nothing is recorded for a refusal.
2. **The shard credits it** (``credit``, ``CreditCompensation`` through the
   liquidator's door): the amount goes to the account's spot balance of the
   settlement asset, and the desk keeps, per market, the ``(seq, through)`` of the
   last payment it applied (``PerpDesk.compensated``). Only the next number is
   applied: one already applied is answered as held (``credited`` False: a retry
   after a lost answer or a restart), one further on is refused
   COMPENSATION_OUT_OF_ORDER (the earlier ones go first). With a risk rulebook the
   shard's audit chain records the payment (``R-5.2.2.5-compensation``).

So a payment lands once with no memory of requests, and one the fund recorded and
the shard has not credited yet is ``in_flight``: conservation counts it as the
fund's until it lands. The liquidator sends what its shards have not acknowledged
after each payment and at each fee sweep (so a restart delivers what was left).

Refused at the fund, before anything is recorded: a field the shard's door would refuse
(``exchange.messages.validation``: a reason over 256 characters or unprintable, an
operator's name...), REASON_REQUIRED, UNKNOWN_OPERATOR,
OPERATOR_NOT_PERMITTED, UNKNOWN_MARKET, NON_POSITIVE_AMOUNT, FUND_INSUFFICIENT (more
than the fund holds less what open liquidations reserved), UNKNOWN_ACCOUNT (the
account's shard does not know it: asked before recording).
"""
from __future__ import annotations

from typing import NamedTuple

from exchange.core.reasons import Reason
from exchange.messages.records import CompensationCredited, CreditCompensation, OrderRejected
from exchange.risk.admin import ADMIN, TREASURY

RULE = "R-5.2.2.5-compensation"     # cited in the shard's audit chain
ROLES = frozenset((TREASURY, ADMIN))


class Compensation(NamedTuple):
    """An operator's order to pay ``amount`` (minor units of the settlement asset) of
    ``market``'s fund to ``account_id``."""
    market: str
    account_id: int
    amount: int
    operator: str
    reason: str


def probe(order: Compensation) -> CreditCompensation:
    """The command ``order`` would become, to check its fields' shapes (a reason of 256
    printable characters at most, an operator's name...) before anything is recorded: a
    payment the shard's door would refuse could never land."""
    return CreditCompensation("pcomp:probe", 0, order.account_id, order.market, order.amount, 1, order.amount,
                              order.operator, order.reason)


def command(entry) -> CreditCompensation:
    """The shard's command for a ``COMPENSATION`` fund entry: the same body every time it is
    sent (its request id and time are the entry's), so a retry is a replay."""
    d = dict(entry.details)
    return CreditCompensation(f"pcomp:{entry.market}:{d['shard']}:{d['seq']}", entry.ts_ns, d["account"],
                              entry.market, -entry.amount, d["seq"], d["through"], d["operator"], d["reason"])


def credit(desk, cmd: CreditCompensation) -> list:
    """Credit compensation ``cmd.seq`` from ``cmd.market``'s fund (UNKNOWN_MARKET,
    UNKNOWN_ACCOUNT, NON_POSITIVE_AMOUNT, COMPENSATION_OUT_OF_ORDER)."""
    market = desk.markets.get(cmd.market)
    if market is None:
        return _reject(cmd, Reason.UNKNOWN_MARKET)
    account = desk.ledger.accounts.get(cmd.account_id)
    if account is None:
        return _reject(cmd, Reason.UNKNOWN_ACCOUNT)
    if cmd.amount <= 0:
        return _reject(cmd, Reason.NON_POSITIVE_AMOUNT)
    seq, through = desk.compensated.get(cmd.market, (0, 0))
    if cmd.seq <= seq:
        return [CompensationCredited(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.market, seq, through, False)]
    if (cmd.seq, cmd.through) != (seq + 1, through + cmd.amount):
        return _reject(cmd, Reason.COMPENSATION_OUT_OF_ORDER)
    q = market.spec.quote.index
    before = account.available[q]
    account.available[q] += cmd.amount
    desk.compensated[cmd.market] = (cmd.seq, cmd.through)
    gate = desk.shard.risk if desk.shard is not None else None
    if gate is not None:
        asset = market.spec.quote.name
        gate.audit.append(cmd.ts_ns, cmd.operator, "compensation", str(cmd.account_id), f"{before} {asset}",
                          f"{account.available[q]} {asset}", cmd.reason, RULE)
    return [CompensationCredited(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.market, cmd.seq, cmd.through,
                                 True)]


def in_flight(markets: dict, received: list[dict], paid: dict) -> dict[str, int]:
    """Per settlement asset: what the funds paid (``paid``: ``PerpFund.paid``) that the shards
    have not credited yet (``received``: each shard's ``PerpDesk.compensated``, by shard
    index). Conservation counts it as the funds'."""
    out: dict[str, int] = {}
    for (name, shard), (_, through) in paid.items():
        landed = received[shard].get(name, (0, 0))[1] if shard < len(received) else 0
        asset = markets[name].spec.quote.name
        out[asset] = out.get(asset, 0) + through - landed
    return out


def _reject(cmd, reason: Reason) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), 0)]
