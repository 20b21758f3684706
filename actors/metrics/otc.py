"""OTC desk metric families (issue 16), built from the desk actor's live state when collected.

| family | type | labels | unit | fed by |
|---|---|---|---|---|
| ``exchange_otc_quotes_total`` | counter | | firm quotes given | otc |
| ``exchange_otc_acceptances_total`` | counter | | quotes accepted | otc |
| ``exchange_otc_refusals_total`` | counter | reason | inquiries, acceptances and payments refused, by reason | otc |
| ``exchange_otc_rfqs`` | gauge | state | RFQs by state now (quoted, accepted, paid, expired, cancelled) | otc |
| ``exchange_otc_inventory`` | gauge | asset, part | the desk's inventory: ``free`` and ``locked`` by accepted trades, in asset units | otc |
| ``exchange_otc_refunds`` | gauge | | refunds recorded (money the desk refused or owes back) | otc |
| ``exchange_otc_expiries_total`` | counter | | quotes that expired unaccepted | otc |
| ``exchange_otc_settled_total`` | counter | settlement | trades settled (``t+0``, ``t+1``) | otc |
| ``exchange_otc_spread_income_total`` | counter | asset | spread earned by settled trades, in asset units | otc |
| ``exchange_otc_transit`` | gauge | asset | what the desk holds between two accounts (crossings under way), in asset units | otc |
| ``exchange_otc_credit_exposure`` | gauge | account, part | an approved client's ``exposure`` and ``limit``, in the credit asset's units | otc |
| ``exchange_otc_credit_overdue`` | gauge | account | credit trades not paid by their due time (alert ``OtcCreditOverdue``) | otc |
| ``exchange_otc_hedges_total`` | counter | asset | hedge orders placed on the spot book from the desk's account | otc |
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exchange.otc.credit import book as credit_book
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
    expiries = CounterMetricFamily("exchange_otc_expiries", "OTC quotes that expired unaccepted")
    expiries.add_metric([], actor.counts["expired"])
    yield expiries
    settled = CounterMetricFamily("exchange_otc_settled", "OTC trades settled", labels=["settlement"])
    by_kind = {"t+0": 0, "t+1": 0}
    for row in desk.blotter:
        by_kind[row[11]] += 1
    for kind, n in by_kind.items():
        settled.add_metric([kind], n)
    yield settled
    income = CounterMetricFamily("exchange_otc_spread_income", "Spread earned by settled OTC trades, in asset units",
                                 labels=["asset"])
    for asset, amount in sorted(desk.income.items()):
        income.add_metric([asset], amount / 10 ** scales[asset])
    yield income
    transit = GaugeMetricFamily("exchange_otc_transit", "What the OTC desk holds between two accounts",
                                labels=["asset"])
    for asset in sorted(scales):
        transit.add_metric([asset], desk.outbox.transit.get(asset, 0) / 10 ** scales[asset])
    yield transit
    exposure = GaugeMetricFamily("exchange_otc_credit_exposure", "OTC credit: exposure and limit per client",
                                 labels=["account", "part"])
    overdue = GaugeMetricFamily("exchange_otc_credit_overdue", "OTC credit trades overdue per client",
                                labels=["account"])
    scale = 10 ** scales.get(desk.rules.credit_asset, 0)
    for client in credit_book(desk):
        exposure.add_metric([str(client["account"]), "exposure"], client["exposure"] / scale)
        exposure.add_metric([str(client["account"]), "limit"], client["limit"] / scale)
        overdue.add_metric([str(client["account"])], len(client["overdue"]))
    yield exposure
    yield overdue
    hedges = CounterMetricFamily("exchange_otc_hedges", "OTC hedge orders placed on the spot book", labels=["asset"])
    placed: dict[str, int] = {}
    for order in desk.hedges.orders:
        placed[order[1]] = placed.get(order[1], 0) + 1
    for asset in sorted((desk.rules.inventory_limits or {})):
        hedges.add_metric([asset], placed.get(asset, 0))
    yield hedges
