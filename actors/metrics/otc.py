"""OTC desk metric families (issue 16), built from the desk actor's live state when collected.

| family | type | labels | unit | fed by |
|---|---|---|---|---|
| ``exchange_otc_quotes_total`` | counter | | firm quotes given | otc |
| ``exchange_otc_acceptances_total`` | counter | | quotes accepted | otc |
| ``exchange_otc_refusals_total`` | counter | reason | inquiries, acceptances and payments refused, by reason | otc |
| ``exchange_otc_rfqs`` | gauge | state | RFQs by state now (quoted, accepted, paid, expired, cancelled) | otc |
| ``exchange_otc_inventory`` | gauge | asset, part | the desk's inventory: ``free`` and ``locked`` by accepted trades, in asset units | otc |
| ``exchange_otc_refunds`` | gauge | | refunds recorded (money the desk refused or owes back) | otc |
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exchange.otc.rfq import RfqState


def otc_families(actor):
    quotes = CounterMetricFamily("exchange_otc_quotes", "Firm OTC quotes given")
    quotes.add_metric([], actor.counts["quotes"])
    yield quotes
    accepted = CounterMetricFamily("exchange_otc_acceptances", "OTC quotes accepted")
    accepted.add_metric([], actor.counts["accepted"])
    yield accepted
    refusals = CounterMetricFamily("exchange_otc_refusals", "OTC inquiries, acceptances and payments refused",
                                   labels=["reason"])
    for reason, n in sorted(actor.refusals.items()):
        refusals.add_metric([reason.lower()], n)
    yield refusals
    desk = actor.desk
    states = {state.name.lower(): 0 for state in RfqState}
    for rfq in desk.rfqs.values():
        states[rfq.state.name.lower()] += 1
    rfqs = GaugeMetricFamily("exchange_otc_rfqs", "OTC RFQs by state", labels=["state"])
    for state, n in states.items():
        rfqs.add_metric([state], n)
    yield rfqs
    scales = {a.name: a.scale for a in actor.config.asset_list}
    inventory = GaugeMetricFamily("exchange_otc_inventory", "The OTC desk's inventory, in asset units",
                                  labels=["asset", "part"])
    for asset in sorted(desk.inventory):
        inventory.add_metric([asset, "free"], desk.free(asset) / 10 ** scales[asset])
        inventory.add_metric([asset, "locked"], desk.locked.get(asset, 0) / 10 ** scales[asset])
    yield inventory
    refunds = GaugeMetricFamily("exchange_otc_refunds", "OTC refunds recorded")
    refunds.add_metric([], len(desk.refunds))
    yield refunds
