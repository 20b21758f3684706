"""Perpetual-futures metric families (issue 14), built from live state when collected.

| family | type | labels | unit | fed by |
|---|---|---|---|---|
| ``exchange_perp_mark_price`` / ``_index_price`` | gauge | market | quote units | perpetual market |
| ``exchange_perp_basis_bps`` | gauge | market | (mark - index) / index, basis points | perpetual market |
| ``exchange_perp_funding_rate`` | gauge | market | the last interval's rate, a fraction | perpetual market |
| ``exchange_perp_next_funding_seconds`` | gauge | market | seconds from the last pricing to the next funding | perpetual market |
| ``exchange_perp_open_interest`` | gauge | market | long lots of the shard's accounts, base units (sum over shards) | shards |
| ``exchange_perp_positions`` | gauge | market | open positions of the shard's accounts | shards |
| ``exchange_perp_positions_at_risk`` | gauge | scope, zone | positions under the warning line / due, by scope (a market, or cross) | shards |
| ``exchange_perp_liquidations_open`` | gauge | | liquidations holding lots on the shard | shards |
| ``exchange_perp_insurance_fund`` | gauge | market | the market's fund, quote units | liquidator |
| ``exchange_perp_fund_flows_total`` | counter | market, kind | quote units moved by entries of each kind | liquidator |
| ``exchange_perp_adl_events_total`` | counter | market | auto-deleveraging rounds | liquidator |
| ``exchange_perp_liquidations_total`` | counter | | liquidations finished | liquidator |
| ``exchange_perp_liquidations_running`` | gauge | | liquidations the liquidator has open | liquidator |
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exchange.perp.fund import EntryKind
from exchange.perp.funding import FUNDING_ONE
from exchange.perp.rules import perp_markets

ZONES = {1: "warning", 2: "due"}


def market_families(actor):
    """A ``PerpMarketActor``'s price state."""
    market, pricer, spec = actor.name, actor.pricer, actor.perp.spec
    tick = spec.tick_minor / 10 ** spec.quote.scale

    def gauge(name: str, doc: str, value) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=["market"])
        family.add_metric([market], value)
        return family
    if pricer.mark is not None:
        yield gauge("exchange_perp_mark_price", "Mark price, in quote units", pricer.mark * tick)
        yield gauge("exchange_perp_index_price", "Index price the mark was computed from, in quote units",
                    actor.last_index * tick)
        yield gauge("exchange_perp_basis_bps", "Mark - index over the index, in basis points",
                    (pricer.mark - actor.last_index) * 10_000 / actor.last_index)
        yield gauge("exchange_perp_next_funding_seconds", "Seconds from the last pricing to the next funding",
                    (pricer.next_funding_ns - actor.priced_ns) / 1e9)
    yield gauge("exchange_perp_funding_rate", "The last interval's funding rate (a fraction)",
                pricer.funding_rate / FUNDING_ONE)


def shard_families(actor):
    """A shard's perpetual desk: open interest, positions, zones, liquidations."""
    desk = actor.shard.products["perp"]
    interest = GaugeMetricFamily("exchange_perp_open_interest", "Long lots of this shard's accounts, base units",
                                 labels=["market"])
    positions = GaugeMetricFamily("exchange_perp_positions", "Open positions of this shard's accounts",
                                  labels=["market"])
    for name, market in sorted(desk.markets.items()):
        held = [w.positions[name].lots for w in desk.accounts.values() if name in w.positions]
        interest.add_metric([name], sum(lots for lots in held if lots > 0) * market.spec.lot_minor
                            / 10 ** market.spec.base.scale)
        positions.add_metric([name], sum(1 for lots in held if lots))
    yield interest
    yield positions
    at_risk = GaugeMetricFamily("exchange_perp_positions_at_risk", "Positions under the warning line or due for "
                                "liquidation, by scope (a market, or cross)", labels=["scope", "zone"])
    counts = {(scope, zone): 0 for scope in [*sorted(desk.markets), "cross"] for zone in ZONES.values()}
    for (_, scope), zone in desk.zones.items():
        counts[(scope or "cross", ZONES[zone])] += 1
    for (scope, zone), count in counts.items():
        at_risk.add_metric([scope, zone], count)
    yield at_risk
    yield GaugeMetricFamily("exchange_perp_liquidations_open", "Liquidations holding lots on this shard",
                            value=len(desk.liquidations))


def fund_families(actor):
    """The liquidator's perpetual funds, their flows by kind, the ADL rounds and its liquidations."""
    fund = actor.perp_fund
    scale = {name: 10 ** p.spec.quote.scale for name, p in perp_markets(actor.config).items()}
    balance = GaugeMetricFamily("exchange_perp_insurance_fund", "The market's insurance fund, quote units",
                                labels=["market"])
    flows = CounterMetricFamily("exchange_perp_fund_flows", "Quote units moved by fund entries, by kind",
                                labels=["market", "kind"])
    adl = CounterMetricFamily("exchange_perp_adl_events", "Auto-deleveraging rounds", labels=["market"])
    view = fund.view()
    for market, value in sorted(fund.balances.items()):
        balance.add_metric([market], value / scale[market])
        adl.add_metric([market], view["adl_rounds"][market])
        for kind in EntryKind:
            if kind not in (EntryKind.ADL_START, EntryKind.ADL_END):
                flows.add_metric([market, kind.name.lower()], view["flows"][market].get(kind.name.lower(), 0)
                                 / scale[market])
    yield balance
    yield flows
    yield adl
    yield CounterMetricFamily("exchange_perp_liquidations", "Perpetual liquidations finished", value=actor.perp.finished)
    yield GaugeMetricFamily("exchange_perp_liquidations_running", "Perpetual liquidations the liquidator has open",
                            value=len(actor.perp.open))
