"""Risk rulebook metric families (issue 15), built from live state when collected.

| family | type | labels | unit | fed by |
|---|---|---|---|---|
| ``exchange_risk_rulebook_info`` | gauge (1) | digest | the published hash of the rulebook in force | shards |
| ``exchange_risk_accounts`` | gauge | state | accounts locked, frozen, restricted now (by shard, summed) | shards |
| ``exchange_risk_actions_total`` | counter | chain | audit entries (operator and automatic actions) | shards, markets, surveillance |
| ``exchange_withdrawals_pending`` | gauge | state | withdrawals queued for review or approved and not yet final | shards |
| ``exchange_market_mode`` | gauge | market | 0 open, 1 reduce-only, 2 halted | markets |
| ``exchange_risk_alerts_total`` | counter | rule, action | surveillance alerts | surveillance |
| ``exchange_risk_restrictions_total`` | counter | | restrictions surveillance sent to shards | surveillance |
| ``exchange_risk_fills_watched_total`` | counter | | fills surveillance read | surveillance |
| ``exchange_treasury_balance`` | gauge | asset, wallet | hot, cold, in flight (broadcast, unconfirmed), in asset units | treasury |
| ``exchange_treasury_discrepancy`` | gauge | asset | wallets less what the shards acknowledged (0 when reconciled) | treasury |
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exchange.risk.rulebook import ACTION_TEXT, Action
from exchange.risk.surveillance import RULES


def shard_families(actor):
    gate = actor.shard.risk
    info = GaugeMetricFamily("exchange_risk_rulebook_info", "The risk rulebook in force (its published hash)",
                             labels=["digest"])
    info.add_metric([gate.rulebook.digest()], 1)
    yield info
    now = actor.last_ts_ns
    locked = sum(1 for r in gate.accounts.values() if r.locked)
    frozen = sum(1 for r in gate.accounts.values() if r.frozen)
    restricted = sum(1 for r in gate.accounts.values()
                     if any(not until or until > now for _, until in r.restrictions.values()))
    accounts = GaugeMetricFamily("exchange_risk_accounts", "Accounts under a risk state now", labels=["state"])
    for state, n in (("locked", locked), ("frozen", frozen), ("restricted", restricted)):
        accounts.add_metric([state], n)
    yield accounts
    yield _actions(gate.audit)
    if "cashier" in actor.shard.products:
        pending = GaugeMetricFamily("exchange_withdrawals_pending", "Withdrawals in progress, by state",
                                    labels=["state"])
        counts: dict = {}
        for w in actor.shard.cashier.desk.pending():
            counts[w.state.name.lower()] = counts.get(w.state.name.lower(), 0) + 1
        for state in ("queued", "approved", "sent"):
            pending.add_metric([state], counts.get(state, 0))
        yield pending


def market_families(actor):
    guard = actor.engine.guard
    mode = GaugeMetricFamily("exchange_market_mode", "The market's mode: 0 open, 1 reduce-only, 2 halted",
                             labels=["market"])
    mode.add_metric([actor.name], guard.mode)
    yield mode
    yield _actions(guard.audit)


def surveillance_families(actor):
    alerts = CounterMetricFamily("exchange_risk_alerts", "Surveillance alerts, by rule and action",
                                 labels=["rule", "action"])
    counts = {(rule, int(actor.rulebook[rule].action)): 0 for rule in RULES}     # every rule's series, from 0
    counts.update(actor.counts)
    for (rule, action), n in sorted(counts.items()):
        alerts.add_metric([rule, ACTION_TEXT[Action(action)]], n)
    yield alerts
    yield CounterMetricFamily("exchange_risk_restrictions", "Restrictions surveillance sent to shards",
                              value=actor.restrictions_sent)
    yield CounterMetricFamily("exchange_risk_fills_watched", "Fills surveillance read", value=actor.fills)
    yield _actions(actor.audit)


def _actions(audit) -> CounterMetricFamily:
    family = CounterMetricFamily("exchange_risk_actions", "Audit entries: operator and automatic risk actions",
                                 labels=["chain"])
    family.add_metric([audit.name], audit.seq)
    return family


def treasury_families(actor):
    view = actor.view()
    scales = {a.name: a.scale for a in actor.config.asset_list}
    balance = GaugeMetricFamily("exchange_treasury_balance", "Treasury wallets, in asset units",
                                labels=["asset", "wallet"])
    for wallet in ("hot", "cold", "in_flight"):
        for asset, amount in sorted(view[wallet].items()):
            balance.add_metric([asset, wallet], amount / 10 ** scales[asset])
    yield balance
    off = {d["asset"]: d["difference"] for d in view["discrepancies"]}
    discrepancy = GaugeMetricFamily("exchange_treasury_discrepancy",
                                    "Wallets less what the shards acknowledged, in asset units", labels=["asset"])
    for asset in sorted(view["hot"]):
        discrepancy.add_metric([asset], off.get(asset, 0) / 10 ** scales[asset])
    yield discrepancy
