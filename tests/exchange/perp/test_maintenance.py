"""An operator raises a perpetual market's maintenance rate for now (rulebook 5.2.2.3 (三),
``exchange.perp.maintenance``): positions are re-valued at the next mark, one under the
raised line is liquidated, new orders hold the raised initial rate, the rate comes back,
and bad operator input changes nothing and leaves no audit entry."""
from __future__ import annotations

import orjson
import pytest

from exchange.core.reasons import Reason
from exchange.core.routing import house_account
from exchange.messages.records import OperatorActed, OrderRejected, SetMaintenanceMargin
from exchange.messages.codec import encode_shallow
from exchange.snapshot import restore_shard, shard_state
from tests.exchange.perp.test_desk import ALICE, PERP, btc, check, harness, usdt
from tests.exchange.perp.test_liquidation import TS, isolated_long, mark_at

HOUSE = house_account(0, 1)
RULE = "R-5.2.2.3-maintenance-margin"


def set_rate(ex, ppm: int, operator: str = "demo-risk", reason: str = "one-sided market", market: str = PERP):
    rid, ts = ex.next_ids()
    return ex.apply(SetMaintenanceMargin(rid, ts, HOUSE, market, ppm, operator, reason))


def due(ex) -> set:
    return {key for key, zone in ex.engine.shard.perp.zones.items() if zone == 2}


def test_a_raised_rate_puts_a_position_under_it_into_liquidation_and_the_audit_chain():
    ex = harness()
    isolated_long(ex)                                       # 1 BTC at 40,000, 10x: 4,000 USDT of margin
    mark_at(ex, 395_000)                                    # equity 3,500 against 0.5%: 197.5
    assert due(ex) == set()
    acted, = set_rate(ex, 90_000)                           # 9%: 3,555 at 39,500
    assert (type(acted), acted.command, acted.target, acted.before, acted.after, acted.rule) == (
        OperatorActed, "maintenance-margin", PERP, "maintenance 0.005 initial 0.01", "maintenance 0.09 initial 0.095",
        RULE)
    entry = ex.engine.shard.risk.audit.entries[-1]
    assert (entry.who, entry.what, entry.why, entry.rule) == ("demo-risk", "maintenance-margin", "one-sided market",
                                                               RULE)
    mark_at(ex, 395_000)                                    # the same mark: re-valued at the raised rate
    assert due(ex) == {(ALICE, PERP)}
    record, = ex.engine.run_perp_liquidations(TS)           # the liquidator agrees: taken over and closed
    assert (record["markets"], record["equity_taken"]) == ([PERP], usdt("3500"))
    assert ex.engine.shard.perp.position_view(ALICE, PERP)["lots"] == 0
    check(ex)


def test_new_orders_hold_at_most_the_leverage_the_raised_initial_rate_allows_and_restoring_undoes_it():
    ex = harness()
    ex.apply(ex.leverage_cmd(ALICE, 20))
    placed = ex.perp(ALICE, 1, usdt("40000"), btc("0.001"))        # 0.001 BTC at 20x: 2 USDT of margin a lot
    per_lot_before = ex.engine.shard.perp.orders[placed[0].order_id].per_lot
    set_rate(ex, 95_000)                                    # initial 10%: at most 10x
    placed = ex.perp(ALICE, 1, usdt("40000"), btc("0.001"))
    per_lot_raised = ex.engine.shard.perp.orders[placed[0].order_id].per_lot
    assert per_lot_raised - per_lot_before == usdt("4") - usdt("2")
    acted, = set_rate(ex, 0, reason="market calm again")
    assert (acted.before, acted.after) == ("maintenance 0.095 initial 0.1", "maintenance 0.005 initial 0.01")
    assert ex.engine.shard.perp.raised == {}
    assert ex.engine.shard.perp.markets[PERP] == ex.engine.shard.perp.configured[PERP]
    placed = ex.perp(ALICE, 1, usdt("40000"), btc("0.001"))
    assert ex.engine.shard.perp.orders[placed[0].order_id].per_lot == per_lot_before
    check(ex)


BAD = {
    "no_reason": (dict(reason=" "), Reason.REASON_REQUIRED),
    "unknown_operator": (dict(operator="mallory"), Reason.UNKNOWN_OPERATOR),
    "treasury_role": (dict(operator="demo-treasury"), Reason.OPERATOR_NOT_PERMITTED),
    "unknown_market": (dict(market="DOGE-PERP"), Reason.UNKNOWN_MARKET),
    "below_configured": (dict(ppm=4_000), Reason.INVALID_MAINTENANCE_RATE),
    "top_tier_over_100%": (dict(ppm=955_000), Reason.INVALID_MAINTENANCE_RATE),   # initial 96% + 9 x 0.5%
}


COVERED = {reason for _, reason in BAD.values()}      # tests/exchange/test_engine_rejections.py


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_operator_input_is_refused_changes_nothing_and_leaves_no_audit_entry(case):
    ex = harness()
    isolated_long(ex)
    fields, reason = BAD[case]
    before, entries = ex.engine.state_hash(), len(ex.engine.shard.risk.audit.entries)
    args = {"ppm": 90_000, **fields}
    refused, = set_rate(ex, args.pop("ppm"), **args)
    assert (type(refused), Reason(refused.reason), refused.rule) == (OrderRejected, reason, RULE)
    assert ex.engine.state_hash() == before
    assert len(ex.engine.shard.risk.audit.entries) == entries


def test_the_highest_rate_the_top_tier_allows_is_accepted():
    ex = harness()
    acted, = set_rate(ex, 950_000)                          # initial 95.5% + 9 x 0.5% = 100%
    assert acted.after == "maintenance 0.95 initial 0.955"


def test_a_raised_rate_survives_a_snapshot_and_the_restored_shard_has_the_same_state():
    ex = harness()
    isolated_long(ex)
    set_rate(ex, 90_000)
    shard = ex.engine.shard
    restored = restore_shard(ex.engine.config, orjson.loads(orjson.dumps(shard_state(shard), default=encode_shallow)))
    assert restored.perp.raised == {PERP: 85_000}
    assert restored.perp.markets[PERP].tiers.base_maintenance_ppm == 90_000
    assert all(order.market is restored.perp.markets[PERP] for order in restored.perp.orders.values())
    assert restored.canonical() == shard.canonical()
