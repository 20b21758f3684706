"""The surveillance actor: the trade stream watched for wash trading, self-trading and
over-trading (rulebook 4.2.1, 4.2.4, 4.2.6), alerts kept queryable and counted, and the
over-trading block enforced on the shards.

It reads every market's event stream (``MarketActor.events_after``, long-poll, one
cursor per market), converts each fill's base quantity into BTC equivalent at the
index (``IndexActor.index_prices``; ``exchange.risk.surveillance.btc_equivalent``)
and hands it to the pure ``Surveillance`` domain. An alert is kept (the newest
``alerts_max``), counted by rule and action for the metrics, and written to the
surveillance's own audit chain (``exchange.risk.audit``). An alert whose action
restricts (the over-trading block, 5,000 BTC: restrict-open-close for
``restrict_s``) becomes a ``RestrictAccount`` sent to each named account's shard
through the operator door as the built-in operator ``surveillance``, so the shard
enforces it, cites the rule, and records it in its own chain.

Operators link accounts (``link``: "owner" for one owner's sub-accounts, 4.2.6;
"suspected" for accounts acting together, 4.2.1), with a reason and a role the
rulebook permits (``risk``): journaled, so links survive a restart. The domain's
state, the cursors and the alerts are snapshotted every ``snapshot_s``; after a
restart the actor reads each market's stream from its saved cursor (a market that
restarted starts its stream again: the cursor follows it). Fills a market's
bounded stream dropped while the actor was down are not seen (``lost`` is
counted): surveillance is a monitor, not the ledger.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque

import orjson
import ray

from actors.capability import Keyring, Role
from actors.durability.journal import DurableActor, Journal
from actors.link.wire import pack, unpack_results
from actors.metrics.roles import surveillance_metrics
from exchange.config import load_config
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.messages.records import Fill, RestrictAccount
from exchange.messages.tags import RecordTag, tag_of
from exchange.perp.rules import perp_markets
from exchange.risk.admin import permit
from exchange.risk.audit import AuditLog
from exchange.risk.rulebook import ACTION_TEXT, Action, RulebookError
from exchange.risk.surveillance import LINK_KINDS, Surveillance, btc_equivalent

log = logging.getLogger("exchange.surveillance")
NANOS = 1_000_000_000


class LinkRequest:
    """An operator's link, checked like any operator command (``exchange.risk.admin.permit``)."""
    __slots__ = ("operator", "reason")

    def __init__(self, operator: str, reason: str):
        self.operator, self.reason = operator, reason


class SurveillanceActor(DurableActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, keyring: Keyring | None = None,
                 alerts_max: int = 10_000, snapshot_s: float = 30.0, positions_s: float = 5.0):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()
        self._as_operator = self.keyring.capability(Role.OPERATOR)
        self.rulebook = self.config.risk
        self.domain = Surveillance(self.rulebook)
        self.audit = AuditLog("surveillance")
        self.markets = [m.name for m in self.config.market_list] + sorted(perp_markets(self.config))
        self.base = {m.name: m.base for m in self.config.market_list}
        self.base.update((name, p.spec.base) for name, p in perp_markets(self.config).items())
        self.cursors = {name: 0 for name in self.markets}
        self.alerts: deque = deque(maxlen=alerts_max)
        self.counts: Counter = Counter()             # (rule, action) -> alerts
        self.fills = 0
        self.lost = 0
        self.restrictions_sent = 0
        self.snapshot_s = snapshot_s
        self.last_snapshot = time.monotonic()
        self.positions_s, self.last_positions = positions_s, 0.0
        self.watched: set = set()                    # (account, market) positions in the last read
        self.perp_specs = {name: p.spec for name, p in perp_markets(self.config).items()}
        self.journal = Journal.for_actor(data_dir, "surveillance", self.config)
        self.recovery = self.journal.recover(self._restore, self._replay)
        self.started_ns = time.time_ns()
        self._task = None
        self.metrics = surveillance_metrics(self)

    # ---- the watch ---------------------------------------------------------------------
    async def start(self) -> bool:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return True

    async def _run(self) -> None:
        index = ray.get_actor("index")
        handles = {name: ray.get_actor(f"market:{name}") for name in self.markets}
        while True:
            try:
                prices = await index.index_prices.remote()
                answers = await asyncio.gather(*(handles[m].events_after.remote(self.cursors[m], 0.5)
                                                 for m in self.markets))
                for market, answer in zip(self.markets, answers):
                    await self._consume(market, answer, prices)
                if time.monotonic() - self.last_positions >= self.positions_s:
                    self.last_positions = time.monotonic()
                    await self._positions(prices)
                if time.monotonic() - self.last_snapshot >= self.snapshot_s and self.journal.enabled:
                    self.journal.snapshot(self._state())
                    self.last_snapshot = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:          # a market restarting: try again shortly
                log.info("surveillance: %s", exc)          # (a market restarting, or the exchange stopping)
                await asyncio.sleep(0.5)

    async def _consume(self, market: str, answer: dict, prices: dict) -> None:
        events = answer["events"]
        if answer.get("lost"):
            self.lost += 1
        if not events:
            return
        if events[-1][0] < self.cursors[market]:          # the market restarted its stream
            self.cursors[market] = 0
        base = self.base[market]
        for cursor, event in events:
            if cursor <= self.cursors[market]:
                continue
            self.cursors[market] = cursor
            if type(event) is not Fill:
                continue
            self.fills += 1
            sats = self._btc(base, event.quantity, prices)
            if sats is None:
                continue
            for alert in self.domain.observe_fill(event.ts_ns, market, base.name, sats, event.taker_account,
                                                  event.maker_account):
                await self._raise(alert)

    async def _positions(self, prices: dict) -> None:
        """The large-trader report (4.3.3): every shard's perpetual positions of at least a
        hundredth of the threshold (BTC equivalent at the index), each handed to the domain,
        which sums them per owner group and reports a group at or above the threshold."""
        if not self.perp_specs:
            return
        threshold = self.rulebook["R-4.3.3-large-trader"]["position_btc"]
        floors = {}
        for name, spec in self.perp_specs.items():
            one_lot = self._btc(spec.base, spec.lot_minor, prices)
            if one_lot:
                floors[name] = max(1, threshold // 100 // one_lot)
        answers = await asyncio.gather(*(ray.get_actor(f"shard:{i}").large_positions.remote(floors)
                                         for i in range(self.config.shards)))
        ts = time.time_ns()
        seen = set()
        for account, market, size, margin, available in (p for answer in answers for p in answer):
            sats = self._btc(self.perp_specs[market].base, size, prices)
            if sats is None:
                continue
            seen.add((account, market))
            for alert in self.domain.observe_position(ts, account, market, sats, margin, available, market,
                                                      size // self.perp_specs[market].lot_minor):
                await self._raise(alert)
        for account, market in self.watched - seen:           # closed, or under a hundredth: out of the sums
            self.domain.observe_position(ts, account, market, 0, 0, 0, market)
        self.watched = seen

    def _btc(self, base, quantity: int, prices: dict) -> int | None:
        if base.name == "BTC":
            return quantity
        price, btc = prices.get(base.name), prices.get("BTC")
        if not price or not btc:
            return None
        return btc_equivalent(quantity, base.scale, price, btc)

    async def _raise(self, alert) -> None:
        self.alerts.append(alert)
        self.counts[(alert.rule_id, int(alert.action))] += 1
        figures = ", ".join(f"{k} {v}" for k, v in alert.figures)
        self.audit.append(alert.ts_ns, "auto", f"alert-{ACTION_TEXT[alert.action]}",
                          "+".join(map(str, alert.accounts)) + (f"/{alert.market}" if alert.market else ""),
                          "", "", figures, alert.rule_id)
        if alert.action < Action.RESTRICT_OPEN:
            return
        rule = self.rulebook[alert.rule_id]
        until = alert.ts_ns + rule["restrict_s"] * NANOS if "restrict_s" in dict(rule.params) else 0
        level = int(min(alert.action, Action.RESTRICT_OPEN_CLOSE))
        shards = self.config.routing
        for account in alert.accounts:
            command = RestrictAccount(f"surv-{alert.rule_id}-{account}-{alert.ts_ns}", 0, account, "", level, until,
                                      alert.rule_id, "surveillance", figures)
            shard = ray.get_actor(f"shard:{shard_for(account, shards)}")
            answer = unpack_results(await shard.execute_operator.remote(self._as_operator, pack([command])))
            self.restrictions_sent += 1
            log.warning("surveillance restricted %s under %s: %s", account, alert.rule_id, answer[0])

    # ---- operators -------------------------------------------------------------------
    async def link(self, capability, a: int, b: int, kind: str, operator: str, reason: str) -> dict:
        """Link two accounts ("owner" or "suspected") for the wash/self-trade rules; returns
        ``{"ok": ...}`` or the refusal's reason name. Journaled and audited."""
        self.keyring.check(capability, Role.OPERATOR)
        refused = permit(self.rulebook, LinkRequest(operator, reason), frozenset(("risk", "admin")))
        if refused is None and (kind not in LINK_KINDS or type(a) is not int or type(b) is not int or a <= 0
                                or b <= 0):
            refused = Reason.UNKNOWN_COMMAND
        if refused is not None:
            return {"ok": False, "reason": refused.name}
        ts = time.time_ns()
        await self.journal.commit([orjson.dumps([RecordTag.SURVEILLANCE_LINK, a, b, kind, operator, reason, ts])])
        self._link(a, b, kind, operator, reason, ts)
        return {"ok": True}

    async def set_rule(self, capability, rule: str, key: str, value: str, operator: str, reason: str) -> dict:
        """A run-time threshold change (as the shards and markets get it): journaled, audited."""
        self.keyring.check(capability, Role.OPERATOR)
        refused = permit(self.rulebook, LinkRequest(operator, reason), frozenset(("risk", "admin")))
        if refused is None:
            try:
                self.rulebook.changed(rule, key, value)
            except RulebookError:
                refused = Reason.INVALID_RULE_VALUE
        if refused is not None:
            return {"ok": False, "reason": refused.name}
        ts = time.time_ns()
        await self.journal.commit([orjson.dumps([RecordTag.SURVEILLANCE_RULE, rule, key, value, operator, reason,
                                                 ts])])
        self._set_rule(rule, key, value, operator, reason, ts)
        return {"ok": True}

    def _set_rule(self, rule, key, value, operator, reason, ts) -> None:
        before = self.rulebook.text(rule, key)
        self.rulebook = self.rulebook.changed(rule, key, value)
        self.domain.set_rulebook(self.rulebook)
        self.audit.append(ts, operator, "set-rule", f"{rule}.{key}", before, self.rulebook.text(rule, key), reason,
                          rule)

    def _link(self, a, b, kind, operator, reason, ts) -> None:
        self.domain.link(a, b, kind)
        self.audit.append(ts, operator, "link-accounts", f"{a}+{b}", "", kind, reason,
                          "R-4.2.1-wash-trade" if kind == "suspected" else "R-4.2.6-self-trade")

    # ---- views -------------------------------------------------------------------------
    def alerts_view(self, rule: str | None = None, account: int | None = None, since_ns: int = 0,
                    limit: int = 1_000) -> list[dict]:
        """The newest alerts first, filtered by rule, account and time."""
        out = []
        for a in reversed(self.alerts):
            if (rule is None or a.rule_id == rule) and (account is None or account in a.accounts) \
                    and a.ts_ns >= since_ns:
                out.append({"ts_ns": a.ts_ns, "rule": a.rule_id, "action": ACTION_TEXT[a.action],
                            "accounts": list(a.accounts), "market": a.market, "figures": dict(a.figures),
                            "report": dict(a.report)})
                if len(out) >= limit:
                    break
        return out

    def stats(self) -> dict:
        return {"fills": self.fills, "lost": self.lost, "restrictions_sent": self.restrictions_sent,
                "alerts": {f"{rule}|{ACTION_TEXT[Action(action)]}": n for (rule, action), n in self.counts.items()},
                "cursors": dict(self.cursors)}

    def audit_chain(self) -> dict:
        return self.audit.snapshot()

    # ---- durability --------------------------------------------------------------------
    def _state(self) -> dict:
        return {"domain": self.domain.snapshot(), "cursors": self.cursors, "audit": self.audit.snapshot(),
                "rules": [[r.id, ACTION_TEXT[r.action], [[k, self.rulebook.text(r.id, k)] for k, _ in r.params]]
                          for r in self.rulebook.rules.values()],
                "counts": [[r, a, n] for (r, a), n in self.counts.items()], "fills": self.fills,
                "watched": sorted(self.watched)}

    def _restore(self, state: dict) -> None:
        for rule, action, params in state["rules"]:
            self.rulebook = self.rulebook.changed(rule, "action", action)
            for key, value in params:
                self.rulebook = self.rulebook.changed(rule, key, value)
        self.domain.set_rulebook(self.rulebook)
        self.domain.restore(state["domain"])
        self.cursors.update(state["cursors"])
        self.audit.restore(state["audit"])
        self.counts = Counter({(r, a): n for r, a, n in state["counts"]})
        self.fills = state["fills"]
        self.watched = {(a, m) for a, m in state.get("watched", ())}

    def _replay(self, record: list) -> None:
        kind = tag_of(record)
        if kind is RecordTag.SURVEILLANCE_LINK:
            self._link(*record[1:])
        elif kind is RecordTag.SURVEILLANCE_RULE:
            self._set_rule(*record[1:])
        else:
            raise ValueError(f"not a surveillance record: {kind.name}")


RemoteSurveillance = ray.remote(SurveillanceActor)
