"""The independent auditor: what must hold after every step, at quiet moments, and
at the end of a run. It decides from what it observed, never from the code under
test's own audit (``exchange/engine.py: conservation``, ``ops/verify.py``).

Observed: every client command and its first answer (``acknowledged``), every
push a market or the pool sent (``observe``: the fills in it, by market and
seq). Read from the actors: balances, the totals of the domain objects, the
replay memory, the fill counters, state hashes.

After every step:
- no handler raised (a handler's exception is a bug: Ray would retry it forever);
- no negative balance (available or held) in any live shard;
- no acknowledged request lost: every acknowledged request is in its live
  shard's replay memory; a re-sent acknowledged request gets its first answer;
- deposits and withdrawals: acknowledged <= what the shard's ledger counts <=
  what was sent, per shard and asset;
- no fill settled twice: a market never pushes two different fills under one
  seq, and no shard has settled more fill quantity than the fills pushed for
  its accounts;
- recovery: one live actor whose journal is idle (sampled by the seed) is
  rebuilt from its store and must have the live state hash and link numbers.
When the cluster is quiet (nothing in flight, every actor up): every asset is
conserved, the sum over shards of the domain totals plus the pools' cash equal
to the acknowledged deposits less the acknowledged withdrawals.
At the end (after healing): all of the above, every request answered, nothing
pending or queued anywhere, every fill settled exactly once on each side, and
every actor rebuilt from its store equal to the live one.
"""
from __future__ import annotations

from actors.link.wire import unpack_push
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.messages.records import LENDING, BalanceChanged, Deposit, Fill, OrderRejected, Withdraw

NOT_REMEMBERED = {int(Reason.STORAGE_FULL), int(Reason.OVERLOADED)}    # refused before anything is applied


class AuditFailure(AssertionError):
    """A check failed: ``check`` names it, the message says what was seen."""

    def __init__(self, check: str, detail: str):
        super().__init__(f"{check}: {detail}")
        self.check = check


class Auditor:
    def __init__(self, config, cluster, network, rng):
        self.config = config
        self.cluster = cluster
        self.network = network
        self.rng = rng
        self.assets = [a.name for a in config.asset_list]
        self.answers: dict[tuple, list] = {}                 # (account, request id) -> first answer
        self.remembered = {s: [] for s in range(config.shards)}   # the keys each shard must remember
        self.commands: dict[tuple, object] = {}
        self.sent = {s: {"deposit": [0] * len(self.assets), "withdraw": [0] * len(self.assets)}
                     for s in range(config.shards)}
        self.acked = {s: {"deposit": [0] * len(self.assets), "withdraw": [0] * len(self.assets)}
                      for s in range(config.shards)}
        self.fills: dict[tuple, Fill] = {}                   # (market, seq) -> the fill pushed
        self.expected_fill_quantity = {s: {} for s in range(config.shards)}
        self.recoveries_checked = 0
        self.quiet_checks = 0

    # ---- what the auditor observes ----------------------------------------------------
    def sending(self, shard: int, commands: list) -> None:
        for command in commands:
            key = (command.account_id, command.request_id)
            if key in self.commands:
                continue
            self.commands[key] = command
            kind = _external(command)
            if kind:
                self.sent[shard][kind][self.config.assets[command.asset].index] += command.amount

    def acknowledged(self, shard: int, commands: list, results: list) -> None:
        if len(results) != len(commands):
            raise AuditFailure("answer", f"{len(commands)} commands, {len(results)} answers")
        for command, events in zip(commands, results):
            key = (command.account_id, command.request_id)
            first = self.answers.get(key)
            if first is not None:
                if first != events:
                    raise AuditFailure("acknowledged answer changed", f"{key}: first {first}, now {events}")
                continue
            if events and type(events[0]) is OrderRejected and events[0].reason in NOT_REMEMBERED:
                continue
            self.answers[key] = events
            self.remembered[shard].append(key)
            kind = _external(command)
            if kind and any(type(e) is BalanceChanged and e.request_id == command.request_id for e in events):
                self.acked[shard][kind][self.config.assets[command.asset].index] += command.amount

    def observe(self, message) -> None:
        """The network's tap on every request: fills in pushes."""
        if message.method != "on_market_events":
            return
        shards = self.config.shards
        for _, _, events in unpack_push(message.args[2]):
            for event in events:
                if type(event) is not Fill:
                    continue
                key = (event.market, event.seq)
                seen = self.fills.get(key)
                if seen is None:
                    self.fills[key] = event
                    for account in (event.taker_account, event.maker_account):
                        counts = self.expected_fill_quantity[shard_for(account, shards)]
                        counts[event.market] = counts.get(event.market, 0) + event.quantity
                elif seen != event:
                    raise AuditFailure("fill settled twice", f"two fills with seq {key}: {seen} and {event}")

    # ---- checks ------------------------------------------------------------------------
    def check_step(self) -> None:
        if self.network.errors:
            raise AuditFailure("handler raised", self.network.errors[0])
        for index in range(self.config.shards):
            actor = self.cluster.actor(f"shard:{index}")
            if actor is not None:
                self._check_shard(index, actor, final=False)

    def _check_shard(self, index: int, actor, final: bool) -> None:
        ledger = actor.shard.ledger
        for account in ledger.accounts.values():
            if min(account.available) < 0 or min(account.held) < 0:
                raise AuditFailure("negative balance", f"shard {index} account {account.account_id}: "
                                   f"available {account.available}, held {account.held}")
        memory = actor.shard.results
        for key in self.remembered[index]:
            if key not in memory:
                raise AuditFailure("acknowledged request lost", f"shard {index} does not remember {key}")
        for kind, counted in (("deposit", ledger.deposited), ("withdraw", ledger.withdrawn)):
            for i, asset in enumerate(self.assets):
                low, high = self.acked[index][kind][i], self.sent[index][kind][i]
                if not low <= counted[i] <= high or (final and counted[i] != low):
                    raise AuditFailure(f"{kind}s", f"shard {index} {asset}: acknowledged {low}, "
                                       f"ledger {counted[i]}, sent {high}")
        expected = self.expected_fill_quantity[index]
        for market, applied in actor.fill_quantity_applied.items():
            due = expected.get(market, 0)
            if applied > due or (final and applied != due):
                raise AuditFailure("fill settled twice" if applied > due else "fill not settled",
                                   f"shard {index} {market}: settled {applied}, pushed {due}")

    def check_quiet(self) -> None:
        """Conservation of every asset, at a moment when nothing is in flight."""
        self.quiet_checks += 1
        totals = [0] * len(self.assets)
        for index in range(self.config.shards):
            actor = self.cluster.actor(f"shard:{index}")
            totals = [t + x for t, x in zip(totals, actor.shard.totals())]
            if any(actor.shard.margin.fund_in):
                raise AuditFailure("conservation", f"insurance fund credits without a liquidator: "
                                   f"{actor.shard.margin.fund_in}")
        cash = self.cluster.actor(LENDING).engine.cash()
        for i, asset in enumerate(self.assets):
            net = sum(self.acked[s]["deposit"][i] - self.acked[s]["withdraw"][i] for s in range(self.config.shards))
            held = totals[i] + cash.get(asset, 0)
            if held != net:
                raise AuditFailure("conservation", f"{asset}: shards + pools hold {held}, "
                                   f"acknowledged deposits - withdrawals {net}")

    def check_recovery(self, name: str) -> None:
        """Rebuild ``name`` from its store; it must equal the live actor."""
        live = self.cluster.actor(name)
        rebuilt = self.cluster.rebuild(name)
        self.recoveries_checked += 1
        if _fingerprint(live) != _fingerprint(rebuilt):
            raise AuditFailure("recovery", f"{name} rebuilt from its store differs from the live one: "
                               f"{_fingerprint(rebuilt)} != {_fingerprint(live)}")

    def check_final(self, clients) -> None:
        if self.network.errors:
            raise AuditFailure("handler raised", self.network.errors[0])
        waiting = [c.name for c in clients if c.busy]
        if waiting:
            raise AuditFailure("request never answered", f"{waiting} still wait after healing")
        for name in self.cluster.names:
            actor = self.cluster.actor(name)
            queued = _queued(actor)
            if queued:
                raise AuditFailure("stuck", f"{name} still has {queued} after healing")
        for index in range(self.config.shards):
            self._check_shard(index, self.cluster.actor(f"shard:{index}"), final=True)
        self.check_quiet()
        for name in self.cluster.names:
            self.check_recovery(name)


def _external(command) -> str | None:
    kind = type(command)
    return "deposit" if kind is Deposit else "withdraw" if kind is Withdraw else None


def _queued(actor) -> dict:
    """What an actor still holds for a peer (empty when everything was delivered)."""
    out = {}
    for field in ("staged", "outbox", "sending", "queues"):
        links = getattr(actor, field, None)
        if links:
            left = {k: len(v) for k, v in links.items() if v}
            if left:
                out[field] = left
    if getattr(actor, "pending", None):
        out["pending"] = len(actor.pending)
    return out


def _fingerprint(actor) -> tuple:
    """The state hash and the link numbers a recovery must reproduce."""
    if hasattr(actor, "link_applied"):          # a shard
        return (actor.state_hash(), dict(actor.rseq), dict(actor.link_applied), sorted(map(repr, actor.pending)))
    return (actor.state_hash(), dict(actor.applied_rseq), dict(actor.entry_numbers), dict(actor.pushed))
