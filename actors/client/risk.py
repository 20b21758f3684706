"""The risk desk's handle: operator actions of the risk rulebook over the actors.

    desk = operator.risk_desk("risk-ann")          # an operator named in config/risk.toml
    desk.freeze_account(101, "trading", "phishing report #42")
    desk.set_market_mode("BTC-USDT", "halted", "exchange-wide incident")
    desk.set_rule("R-4.2.5-cancel-ladder", "count", "300", "tighter after listing")
    desk.audit(account=101)                       # every chain's entries about account 101
    desk.link_accounts(101, 102, "suspected", "same device")   # surveillance: wash trading between them
    desk.alerts(rule="R-4.2.1-wash-trade")
    desk.raise_maintenance_margin("BTC-USDT-PERP", "0.02", "one-sided market")   # every shard; "0" restores
    desk.compensate(101, "BTC-USDT-PERP", 250_000_000, "filled at a wrong index (incident 7)")   # treasury role

Every action names the desk's operator and needs a reason, and goes through the
admin actor (``actors/admin_actor.py``) to the actor whose state it changes; the
domain checks the operator's roles (``exchange.risk.admin``) where the command
is applied (a shard's operator door, a market, the liquidator), journals it,
and records it in that actor's audit chain, so a refused action changes nothing
and leaves no entry. A command for the whole venue (an asset freeze, a
threshold, a maintenance rate) reaches every shard (as its house account) and,
for a threshold, every market and the surveillance; its answers are returned
per actor. Reads (views, alerts, the audit) go straight to the actors.
``verify_audit`` checks every chain (``exchange.risk.audit.verify``).
"""
from __future__ import annotations

import ray

from exchange.core.routing import shard_for
from exchange.risk.audit import verify


class RiskDesk:
    def __init__(self, handles, capability, operator: str):
        self.handles = handles
        self._capability = capability
        self.operator = operator
        self.shards = len(handles.shards)
        self.routing = handles.config.routing

    def _act(self, action: str, *args):
        """``action`` of the admin actor, as this desk's operator."""
        return ray.get(getattr(self.handles.admin, action).remote(self._capability, self.operator, *args))

    # ---- accounts --------------------------------------------------------------------
    def freeze_account(self, account_id: int, scope: str, reason: str) -> list:
        """Freeze ``scope`` ("trading", "withdrawal", "both"; "none" lifts) of an account."""
        return self._act("freeze_account", account_id, scope, reason)

    def lock_account(self, account_id: int, locked: bool, reason: str) -> list:
        """Lock (suspected credential theft, 4.1.4) or unlock an account."""
        return self._act("lock_account", account_id, locked, reason)

    def restrict_account(self, account_id: int, level: str, reason: str, market: str = "", until_ns: int = 0,
                         rule: str = "R-5.2.2.3-freeze") -> list:
        """Restrict an account ("restrict-open", "restrict-open-close"; "none" lifts), in one market or all."""
        return self._act("restrict_account", account_id, level, reason, market, until_ns, rule)

    def review_withdrawal(self, account_id: int, withdrawal: int, approve: bool, reason: str) -> list:
        """Approve (after its review period) or reject a queued withdrawal (the treasury role)."""
        return self._act("review_withdrawal", account_id, withdrawal, approve, reason)

    def settle_withdrawal(self, account_id: int, withdrawal: int, stage: int, txid: str,
                          reason: str = "chain") -> list:
        """The treasury's report on a withdrawal's transaction: 1 sent (``txid``), 2 confirmed, 3 failed."""
        return self._act("settle_withdrawal", account_id, withdrawal, stage, txid, reason)

    def block_address(self, destination: str, blocked: bool, reason: str) -> dict:
        """Put a withdrawal destination on (or off) the high-risk blocklist of every shard (5.2.2.4)."""
        return self._act("block_address", destination, blocked, reason)

    def withdrawals(self, account_id: int) -> list[dict]:
        return ray.get(self.handles.shards[shard_for(account_id, self.routing)].withdrawals.remote(account_id))

    def grant_hedge_exemption(self, account_id: int, market: str, granted: bool, reason: str) -> list:
        """Exempt (or no longer) an account's hedge position in a perpetual market from the
        position limit (4.3.1)."""
        return self._act("grant_hedge_exemption", account_id, market, granted, reason)

    def risk_view(self, account_id: int) -> dict:
        return ray.get(self.handles.shards[shard_for(account_id, self.routing)].risk_view.remote(account_id))

    # ---- the venue ---------------------------------------------------------------------
    def freeze_asset(self, asset: str, scope: str, reason: str) -> dict:
        """Freeze an asset's trading and/or withdrawals on every shard (5.2.2)."""
        return self._act("freeze_asset", asset, scope, reason)

    def set_rule(self, rule: str, key: str, value: str, reason: str) -> dict:
        """Change a threshold (or ``key`` "action") at run time on every shard and market."""
        return self._act("set_rule", rule, key, value, reason)

    def raise_maintenance_margin(self, market: str, rate: str, reason: str) -> dict:
        """Raise a perpetual market's base maintenance rate for now ("0.02": 2%; "0" restores the
        configured rate) on every shard (5.2.2.3); positions are re-valued at the next mark."""
        return self._act("raise_maintenance_margin", market, rate, reason)

    def compensate(self, account_id: int, market: str, amount: int, reason: str) -> dict:
        """Pay ``amount`` (minor units of the settlement asset) of a perpetual market's insurance
        fund to an account, instead of a rollback (5.2.2.5; the treasury role): ``refused``,
        ``delivered`` and the funds' view."""
        return self._act("compensate", account_id, market, amount, reason)

    # ---- the treasury ------------------------------------------------------------------
    def receive_on_chain(self, account_id: int, asset: str, amount: int) -> str:
        """The simulated chain: a customer's transfer to their deposit address; its txid."""
        return ray.get(self.handles.treasury.receive.remote(self._capability, account_id, asset, amount))

    def approve_refill(self, refill_id: int, reason: str) -> dict:
        """Sign a cold-to-hot transfer (treasury role)."""
        return self._act("approve_refill", refill_id, reason)

    def suspend_deposits(self, asset: str, suspended: bool, reason: str) -> dict:
        """Stop (or resume) crediting an asset's deposits (risk role; its withdrawals: ``freeze_asset``)."""
        return self._act("suspend_deposits", asset, suspended, reason)

    def treasury_view(self) -> dict:
        """Hot and cold wallets, refills, payments in flight, the reconciliation."""
        return ray.get(self.handles.treasury.view.remote())

    # ---- surveillance ------------------------------------------------------------------
    def link_accounts(self, a: int, b: int, kind: str, reason: str) -> dict:
        """Link two accounts for surveillance: "owner" (one owner's sub-accounts, self-trading
        4.2.6) or "suspected" (acting together, wash trading 4.2.1)."""
        return self._act("link_accounts", a, b, kind, reason)

    def alerts(self, rule: str | None = None, account: int | None = None, since_ns: int = 0) -> list[dict]:
        """Surveillance alerts, newest first."""
        return ray.get(self.handles.surveillance.alerts_view.remote(rule, account, since_ns))

    def surveillance_stats(self) -> dict:
        return ray.get(self.handles.surveillance.stats.remote())

    def set_market_mode(self, market: str, mode: str, reason: str, until_ns: int = 0) -> list:
        """Set a market "open", "reduce-only" or "halted" (5.2.2.2); opening ends a breaker's halt."""
        if market not in self.handles.markets:
            raise KeyError(f"no market {market!r}")
        return self._act("set_market_mode", market, mode, reason, until_ns)

    def market_view(self, market: str) -> dict | None:
        return ray.get(self.handles.markets[market].risk_view.remote())

    def rulebook(self) -> dict:
        """The rulebook in force (shard 0's: every shard gets the same changes) and its hash."""
        return ray.get(self.handles.shards[0].rulebook.remote())

    # ---- the audit trail ----------------------------------------------------------------
    def chains(self) -> list[dict]:
        """Every actor's audit chain: ``{name, base, entries, ...}``."""
        refs = [shard.audit_chain.remote() for shard in self.handles.shards]
        chains = [c for c in ray.get(refs) if c is not None]
        for market in self.handles.markets.values():
            view = ray.get(market.risk_view.remote())
            if view is not None:
                chains.append(view["audit"])
        if self.handles.surveillance is not None:
            chains.append(ray.get(self.handles.surveillance.audit_chain.remote()))
        return chains

    def audit(self, since_ns: int = 0, until_ns: int | None = None, operator: str | None = None,
              account: int | None = None, rule: str | None = None) -> list[dict]:
        """Entries from every chain matching the filters, by time."""
        out = []
        for chain in self.chains():
            for e in chain["entries"]:
                seq, ts, who, what, target, before, after, why, rule_id, prev, digest = e
                if ts < since_ns or (until_ns is not None and ts > until_ns) or \
                        (operator is not None and who != operator) or (rule is not None and rule_id != rule):
                    continue
                if account is not None and str(account) not in target.split("/")[0].split("+"):
                    continue
                out.append({"chain": chain["name"], "seq": seq, "ts_ns": ts, "who": who, "what": what,
                            "target": target, "before": before, "after": after, "why": why, "rule": rule_id})
        return sorted(out, key=lambda e: (e["ts_ns"], e["chain"], e["seq"]))

    def verify_audit(self) -> dict:
        """Each chain checked (``exchange.risk.audit.verify``): name -> (ok, first bad seq, why)."""
        return {c["name"]: verify(c["entries"], c["base"]) for c in self.chains()}
