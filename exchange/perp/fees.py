"""The fee share: part of each perpetual market's trading fees goes into its insurance fund
(rulebook 4.4.5; the fund's ``FEE_SHARE`` entries).

Fees are collected on the shards (``Ledger.fees``); the funds live with the
liquidator. Each desk counts, per market, the net fees its fills collected
(``PerpDesk.fee_income``) and what it has moved out for the fund
(``PerpDesk.fee_swept``), both cumulative. The share owed is
``max(0, income) x fee_share // 1 - swept``, rounded down: the fund gets whole
units, a fraction waits for a later sweep (and never more than the fee
account holds).

``SweepPerpFees`` moves what is owed out of the shard's fee account and
answers ``PerpFeesSwept`` with the amount and the new cumulative ``swept``.
The command carries ``swept`` as the fund knows it (the cumulative of its
last ``FEE_SHARE`` entry from that shard and market); the liquidator records
the answer's cumulative less that. So a sweep counts exactly once with no
memory of requests: one whose answer was lost is counted by the next (its
cumulative includes it), and what a shard moved that the fund has not
recorded yet is ``in_flight``, which conservation counts until it is. A fund
claiming more than the shard ever moved is refused FEE_SWEEP_AHEAD (a shard
restored from an older store than the fund: nothing moves, the operator
looks).

The command addresses a shard, not an account: its ``account_id`` is the
shard's house account (``exchange.core.routing.house_account``), a negative id
no client can open.
"""
from __future__ import annotations

from exchange.core.money import PPM
from exchange.core.reasons import Reason
from exchange.messages.records import OrderRejected, PerpFeesSwept, SweepPerpFees


def owed(desk, market: str) -> int:
    """What the desk owes ``market``'s fund now: its share of the fees, less what it moved."""
    share = max(0, desk.fee_income.get(market, 0)) * desk.markets[market].fee_share_ppm // PPM
    return share - desk.fee_swept.get(market, 0)


def sweep(desk, cmd: SweepPerpFees) -> list:
    """Move the fee share owed out of the fee account (UNKNOWN_MARKET, FEE_SWEEP_AHEAD)."""
    market = desk.markets.get(cmd.market)
    if market is None:
        return [OrderRejected(cmd.request_id, cmd.account_id, int(Reason.UNKNOWN_MARKET), 0)]
    swept = desk.fee_swept.get(cmd.market, 0)
    if cmd.swept > swept:
        return [OrderRejected(cmd.request_id, cmd.account_id, int(Reason.FEE_SWEEP_AHEAD), 0)]
    q = market.spec.quote.index
    amount = max(0, min(owed(desk, cmd.market), desk.ledger.fees[q]))
    if amount:                                   # a sweep of nothing leaves the desk as it was
        desk.ledger.fees[q] -= amount
        desk.fee_swept[cmd.market] = swept + amount
    return [PerpFeesSwept(cmd.request_id, cmd.ts_ns, cmd.account_id, cmd.market, amount, swept + amount)]


def in_flight(markets: dict, swept: list[dict], recorded: dict) -> dict[str, int]:
    """Per settlement asset: what the shards moved out for the funds (``swept``: each shard's
    ``fee_swept``, by shard index) that the funds have not recorded yet (``recorded``:
    ``PerpFund.fees_through``). Conservation counts it as the funds'."""
    out: dict[str, int] = {}
    for shard, by_market in enumerate(swept):
        for name, total in by_market.items():
            asset = markets[name].spec.quote.name
            out[asset] = out.get(asset, 0) + total - recorded.get((name, shard), 0)
    return out
