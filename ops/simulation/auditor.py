"""The independent auditor: what must hold after every step, at quiet moments, and
at the end of a run. It decides from what it observed, never from the code under
test's own audit (``exchange/engine.py: conservation``, ``ops/verify.py``).

Observed: every client command and its first answer (``acknowledged``), every
push a market or the pool sent (``observe``: the fills in it, by market and
seq), every liquidator command sent (``observe``: the covers, by request id,
drawn before they are sent) and every answer a shard gave the liquidator
(``answered``: which book a liquidation started and finished). Read from the
actors: balances, the totals of the domain objects, the replay memory, the
fill counters, state hashes, the insurance fund's balance. What the fund
started with is read from the configuration (``[insurance.initial]``).

After every step:
- no handler raised (a handler's exception is a bug: Ray would retry it forever);
- no negative balance (available or held) in any live shard, nor in a margin
  book (available, held, pending), nor in the insurance fund;
- no acknowledged request lost: every acknowledged request is in its live
  shard's replay memory; a re-sent acknowledged request gets its first answer;
- deposits and withdrawals: acknowledged <= what the shard's ledger counts <=
  what was sent, per shard and asset;
- no fill settled twice: a market never pushes two different fills under one
  seq, and no shard has settled more fill quantity than the fills pushed for
  its accounts;
- covers: no shard credited more from the fund than the covers sent to it,
  and the fund holds no more than it started with less every cover sent;
- no book liquidated twice: a shard never starts a second liquidation of a
  book before the first finished (answers ``started`` under two numbers);
- no liquidation leaves debt: when a ``FinishLiquidation`` is sent for a book
  still liquidating, the book owes nothing (debt with assets left would be
  collateral never sold; debt without them, a gap neither covered nor
  written off);
- recovery: one live actor whose journal is idle (sampled by the seed) is
  rebuilt from its store and must have the live state hash and link numbers.
When the cluster is quiet (nothing in flight, every actor up): every asset is
conserved, the sum over shards of the domain totals plus the pools' cash plus
the insurance fund's balance equal to the acknowledged deposits less the
acknowledged withdrawals plus what the fund started with; and the shards
credited exactly the covers sent.
At the end (after healing): all of the above, every request answered, nothing
pending or queued anywhere, every fill settled exactly once on each side, no
liquidation in progress and no cover in flight, no book liquidating and none
at or under the liquidation line (handed over and finished, or healthy: no
stuck liquidation), and every actor rebuilt from its store equal to the live
one.

Perpetuals. Observed besides: every ``TransferPerp`` and what its first
answer moved (``PerpTransferred``), every fill of a perpetual market (its
fees), and every ``FinishPerpLiquidation`` answer (the equity each market of
a liquidation left: > 0 into its fund, < 0 drawn). Read from the actors: the
perpetual desks' wallets, positions and liquidations, the funds' balances
and their chain of entries, the liquidator's perpetual machine (part of what
its recovery must reproduce); the funds' start is the configuration's
``fund_initial``. After every step: no wallet hold and no isolated margin
negative, no fund balance negative. When the cluster is quiet: the
conservation above counts the perpetual wallets (in the shards' totals) and
the perpetual funds (their balances; their start beside the insurance
fund's); open interest is balanced (the signed lots of every position, an
account's or a liquidation's, on every shard sum to zero in each market);
and the perpetual money sums to zero: what the wallets and liquidations hold
(PnL, funding and fees included), the fees the fills charged and the funds'
change equal the net transfers into the wallets. At the end: no perpetual
liquidation open on the liquidator or on any desk; no account with negative
equity (its cross wallet with its positions' PnL at the mark, each isolated
position with its margin) and none at or under maintenance (stuck: never
handed over); the fund's chain verifies (``exchange.perp.fund.verify``) and
explains every unit: its only top-ups are the configured seed capital, and
each surplus or loss entry is exactly what the shard answered when the
liquidation finished there, one entry for each.
"""
from __future__ import annotations

from actors.link.wire import unpack_commands, unpack_push, unpack_results, unpack_submit_answer
from exchange.core.money import PPM, parse_decimal
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.messages.records import (LENDING, BalanceChanged, CoverShortfall, Deposit, Fill, FinishLiquidation,
                                       FinishPerpLiquidation, LiquidationStage, LiquidationUpdate, OrderRejected,
                                       PerpLiquidationStage, PerpLiquidationUpdate, PerpTransferred,
                                       StartLiquidation, TransferPerp, WriteOffDebt, Withdraw)
from exchange.perp.fees import in_flight as fee_shares_in_flight
from exchange.perp.fund import EntryKind, verify
from exchange.perp.position import MarginMode
from exchange.perp.rules import perp_markets

LIQUIDATOR = "liquidator"

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
        initial = config.sections.get("insurance", {}).get("initial", {})
        self.fund_initial = [parse_decimal(initial[a], config.assets[a].scale) if a in initial else 0
                             for a in self.assets]
        self.covers: dict[str, CoverShortfall] = {}          # cover request id -> the cover sent
        self.covered = {s: [0] * len(self.assets) for s in range(config.shards)}   # covers sent, per shard
        self.write_offs: set = set()                         # write-off request ids sent
        self.liquidating: dict[tuple, int] = {}              # book -> the liquidation a shard started
        self.finished: set = set()                           # liquidation numbers a shard finished
        self.books_liquidated: set = set()
        self.tapped: list[AuditFailure] = []                 # failures seen by a tap, raised by the next check
        self.perps = perp_markets(config)
        self.perp_fund_initial = [0] * len(self.assets)      # per settlement asset: the funds' seed capital
        for perp in self.perps.values():
            self.perp_fund_initial[perp.spec.quote.index] += perp.fund_initial
        self.perp_transferred = [0] * len(self.assets)       # acknowledged into the wallets, less out of them
        self.perp_finished: dict[tuple, int] = {}            # (liquidation, market) -> the equity it left there
        self.perp_seen: dict = {"perp_liquidations": 0, "perp_adl_rounds": 0, "perp_fund_draws": 0,
                                "perp_fund_surpluses": 0, "perp_fee_shares": 0,
                                "perp_fund_change": 0}

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
            if type(command) is TransferPerp:
                for event in events:
                    if type(event) is PerpTransferred and event.request_id == command.request_id:
                        self.perp_transferred[self.config.assets[event.asset].index] += event.amount

    def observe(self, message) -> None:
        """The network's tap on every request: fills in pushes, the liquidator's commands.
        A failure is kept for the next check (raised here, it would reach the sender,
        whose ``Peers.call`` would take it for a lost message and send again)."""
        try:
            self._observe(message)
        except AuditFailure as failure:
            self.tapped.append(failure)

    def _observe(self, message) -> None:
        if message.method == "execute_as":
            self._liquidator_sent(unpack_commands(message.args[1]))
            return
        if message.method == "on_market_events":
            self._fills_pushed(unpack_push(message.args[2]))

    def _fills_pushed(self, entries: list) -> None:
        """The fills of push entries a market sent a shard (in a push, or in its answer to ``submit``)."""
        shards = self.config.routing
        for _, _, events in entries:
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

    def _liquidator_sent(self, commands: list) -> None:
        shards = self.config.routing
        for command in commands:
            kind = type(command)
            if kind is CoverShortfall:
                first = self.covers.setdefault(command.request_id, command)
                if first is command:
                    shard = shard_for(command.account_id, shards)
                    self.covered[shard][self.config.assets[command.asset].index] += command.amount
                elif first[2:] != command[2:]:
                    raise AuditFailure("cover changed", f"{command.request_id}: first {first}, now {command}")
            elif kind is WriteOffDebt:
                self.write_offs.add(command.request_id)
            elif kind is FinishLiquidation:
                self._check_finish(command)

    def _check_finish(self, command) -> None:
        """The book a ``FinishLiquidation`` hands back owes nothing (if it is still liquidating
        and its shard is up: a re-send after the book was handed back proves nothing)."""
        actor = self.cluster.actor(f"shard:{shard_for(command.account_id, self.config.routing)}")
        if actor is None:
            return
        margin = actor.shard.margin
        book = margin.book(command.account_id, command.market)
        if book is None or not book.liquidating:
            return
        debt = [margin.debt(book, i) for i in range(len(self.assets))]
        if any(debt):
            held = [a + h + p for a, h, p in zip(book.available, book.held, book.pending)]
            what = "both debt and assets" if any(held) else "debt neither covered nor written off"
            raise AuditFailure("liquidation left debt", f"{command.request_id} finishes book "
                               f"{(command.account_id, command.market)} with {what}: debt {debt}, holding {held}")

    def answered(self, message, answer) -> None:
        """The network's tap on every answer a handler produced: liquidations started and
        finished (a failure is kept for the next check, as in ``observe``)."""
        try:
            self._answered(message, answer)
        except AuditFailure as failure:
            self.tapped.append(failure)

    def _answered(self, message, answer) -> None:
        if message.method == "submit":               # a market's answer carries the origin's push entries
            self._fills_pushed(unpack_submit_answer(answer)[2])
            return
        if message.method != "execute_as":
            return
        for command, events in zip(unpack_commands(message.args[1]), unpack_results(answer)):
            kind = type(command)
            if kind is FinishPerpLiquidation:
                self._perp_finished(command, events)
                continue
            if kind is not StartLiquidation and kind is not FinishLiquidation:
                continue
            update = next((e for e in events if type(e) is LiquidationUpdate), None)
            n = int(str(command.request_id).split(":")[1])
            book = (command.account_id, command.market)
            if kind is StartLiquidation and update is not None and update.stage == LiquidationStage.STARTED \
                    and n not in self.finished:
                running = self.liquidating.setdefault(book, n)
                if running != n:
                    raise AuditFailure("liquidated twice", f"book {book} started by liquidation {n} while "
                                       f"liquidation {running} runs")
                self.books_liquidated.add(book)
            elif kind is FinishLiquidation and update is not None and update.stage == LiquidationStage.FINISHED:
                self.finished.add(n)
                if self.liquidating.get(book) == n:
                    del self.liquidating[book]

    def _perp_finished(self, command, events: list) -> None:
        """What each market of a finished perpetual liquidation left (the same in every answer:
        a repeated ``FinishPerpLiquidation`` is answered from the shard's replay memory)."""
        for event in events:
            if type(event) is not PerpLiquidationUpdate or event.stage != PerpLiquidationStage.FINISHED:
                continue
            key = (command.liquidation, event.market)
            first = self.perp_finished.setdefault(key, event.amount)
            if first != event.amount:
                raise AuditFailure("perpetual liquidation finished twice", f"{key} left {first}, then {event.amount}")

    def liquidation_stats(self) -> dict:
        """What the liquidator did in a run, as observed (the perpetual figures as the
        liquidator last showed them: finished liquidations, ADL rounds, the fund's draws,
        surpluses and change)."""
        return {"books_liquidated": len(self.books_liquidated), "liquidations_finished": len(self.finished),
                "covers": len(self.covers), "write_offs": len(self.write_offs), **self.perp_seen}

    def _see_perp(self, liquidator) -> None:
        fund = liquidator.perp_fund
        kinds = [entry.kind for entry in fund.entries]
        self.perp_seen = {"perp_liquidations": len(liquidator.perp.records),
                          "perp_adl_rounds": kinds.count(EntryKind.ADL_START),
                          "perp_fund_draws": kinds.count(EntryKind.BANKRUPTCY_LOSS),
                          "perp_fund_surpluses": kinds.count(EntryKind.LIQUIDATION_SURPLUS),
                          "perp_fee_shares": kinds.count(EntryKind.FEE_SHARE),
                          "perp_fund_change": sum(fund.balances.values()) - sum(self.perp_fund_initial)}

    # ---- checks ------------------------------------------------------------------------
    def check_step(self) -> None:
        if self.tapped:
            raise self.tapped[0]
        if self.network.errors:
            raise AuditFailure("handler raised", self.network.errors[0])
        for index in range(self.config.shards):
            actor = self.cluster.actor(f"shard:{index}")
            if actor is not None:
                self._check_shard(index, actor, final=False)
        liquidator = self.cluster.actor(LIQUIDATOR)
        if liquidator is not None:
            self._check_fund(liquidator)

    def _check_fund(self, liquidator) -> None:
        """The fund is never negative and holds at most what it started with less the covers sent;
        no perpetual fund is negative."""
        balance = liquidator.fund.balance
        for i, asset in enumerate(self.assets):
            paid = sum(self.covered[s][i] for s in range(self.config.shards))
            if balance[asset] < 0 or balance[asset] > self.fund_initial[i] - paid:
                raise AuditFailure("insurance fund", f"{asset}: balance {balance[asset]}, started with "
                                   f"{self.fund_initial[i]}, covers sent {paid}")
        balances = liquidator.perp_fund.balances
        if any(amount < 0 for amount in balances.values()):
            raise AuditFailure("perpetual fund", f"a negative balance: {balances}")
        self._see_perp(liquidator)

    def _check_shard(self, index: int, actor, final: bool) -> None:
        ledger = actor.shard.ledger
        for account in ledger.accounts.values():
            if min(account.available) < 0 or min(account.held) < 0:
                raise AuditFailure("negative balance", f"shard {index} account {account.account_id}: "
                                   f"available {account.available}, held {account.held}")
        margin = actor.shard.margin
        for key, book in margin.books.items():
            if min(book.available) < 0 or min(book.held) < 0 or min(book.pending) < 0:
                raise AuditFailure("negative balance", f"shard {index} margin book {key}: available "
                                   f"{book.available}, held {book.held}, pending {book.pending}")
        desk = actor.shard.products.get("perp")
        for wallet in (desk.accounts.values() if desk is not None else ()):
            margins = [p.margin for p in wallet.positions.values()]
            if min(wallet.held) < 0 or min(margins, default=0) < 0:
                raise AuditFailure("negative balance", f"shard {index} perpetual wallet {wallet.account_id}: "
                                   f"held {wallet.held}, isolated margins {margins}")
        for i, asset in enumerate(self.assets):
            credited, sent = margin.fund_in[i], self.covered[index][i]
            if credited > sent or (final and credited != sent):
                raise AuditFailure("cover applied twice" if credited > sent else "cover not applied",
                                   f"shard {index} {asset}: credited {credited} from the fund, covers sent {sent}")
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
        """Conservation of every asset, at a moment when nothing is in flight: the shards,
        the pools and the insurance fund hold what was deposited, less what was
        withdrawn, plus what the fund started with; every cover sent was credited."""
        self.quiet_checks += 1
        totals = [0] * len(self.assets)
        for index in range(self.config.shards):
            actor = self.cluster.actor(f"shard:{index}")
            totals = [t + x for t, x in zip(totals, actor.shard.totals())]
            credited = list(actor.shard.margin.fund_in)
            if credited != self.covered[index]:
                raise AuditFailure("conservation", f"shard {index} credited {credited} from the fund, "
                                   f"covers sent {self.covered[index]}")
        cash = self.cluster.actor(LENDING).engine.cash()
        liquidator = self.cluster.actor(LIQUIDATOR)
        fund = liquidator.fund.balance
        perp_funds = self._perp_funds(liquidator)
        for i, asset in enumerate(self.assets):
            net = sum(self.acked[s]["deposit"][i] - self.acked[s]["withdraw"][i] for s in range(self.config.shards))
            held = totals[i] + cash.get(asset, 0) + fund[asset] + perp_funds[i]
            start = self.fund_initial[i] + self.perp_fund_initial[i]
            if held != net + start:
                raise AuditFailure("conservation", f"{asset}: shards + pools + funds hold {held}, "
                                   f"acknowledged deposits - withdrawals {net} + the funds' start {start}")
        self._check_perp_balanced(liquidator)

    def _perp_funds(self, liquidator, fee_shares: bool = True) -> list[int]:
        """The perpetual funds' balances per settlement asset, with the fee share a shard moved
        out for them that they have not recorded yet (an answer lost or not delivered yet);
        without ``fee_shares``, less every fee share (fees, not perpetual money)."""
        out = [0] * len(self.assets)
        for market, balance in liquidator.perp_fund.balances.items():
            out[self.perps[market].spec.quote.index] += balance
        swept = [self.cluster.actor(f"shard:{i}").perp_fees_swept() for i in range(self.config.shards)]
        for asset, amount in fee_shares_in_flight(self.perps, swept, liquidator.perp_fund.fees_through).items():
            out[self.config.assets[asset].index] += amount
        if not fee_shares:
            for by_market in swept:
                for market, total in by_market.items():
                    out[self.perps[market].spec.quote.index] -= total
        return out

    def check_recovery(self, name: str) -> None:
        """Rebuild ``name`` from its store; it must equal the live actor."""
        live = self.cluster.actor(name)
        rebuilt = self.cluster.rebuild(name)
        self.recoveries_checked += 1
        if _fingerprint(live) != _fingerprint(rebuilt):
            raise AuditFailure("recovery", f"{name} rebuilt from its store differs from the live one: "
                               f"{_fingerprint(rebuilt)} != {_fingerprint(live)}")

    def check_final(self, clients) -> None:
        if self.tapped:
            raise self.tapped[0]
        if self.network.errors:
            raise AuditFailure("handler raised", self.network.errors[0])
        waiting = [c.name for c in clients if c.busy]
        if waiting:
            raise AuditFailure("request never answered", f"{waiting} still wait after healing")
        for name in self.cluster.names:
            actor = self.cluster.actor(name)
            queued = _queued(actor, self.cluster)
            if queued:
                raise AuditFailure("stuck", f"{name} still has {queued} after healing")
        for index in range(self.config.shards):
            self._check_shard(index, self.cluster.actor(f"shard:{index}"), final=True)
        self._check_liquidations_finished()
        self.check_quiet()
        self._check_perp_final()
        for name in self.cluster.names:
            self.check_recovery(name)

    def _check_liquidations_finished(self) -> None:
        """After healing: no liquidation in progress, no cover in flight, no book liquidating
        or at or under the liquidation line."""
        liquidator = self.cluster.actor(LIQUIDATOR)
        if liquidator.liquidator.active or liquidator.fund.in_flight or liquidator.tasks:
            raise AuditFailure("stuck liquidation", f"liquidator after healing: in progress "
                               f"{liquidator.in_progress()}, covers in flight {sorted(liquidator.fund.in_flight)}")
        if self.liquidating:
            raise AuditFailure("stuck liquidation", f"started and never finished: {self.liquidating}")
        line = self.config.margin.liquidation_level_ppm
        for index in range(self.config.shards):
            actor = self.cluster.actor(f"shard:{index}")
            margin = actor.shard.margin
            for key, book in margin.books.items():
                level = margin.level_ppm(book, actor.asset_prices)
                if book.liquidating or (level is not None and level <= line):
                    raise AuditFailure("stuck liquidation", f"shard {index} book {key} after healing: "
                                       f"liquidating {book.liquidating}, level {level} ppm (line {line})")

    def _check_perp_final(self) -> None:
        """After healing, the perpetual side (module docstring): no liquidation open, no
        negative equity and none at or under maintenance, the fund's chain verified and
        explained (open interest and the zero-sum were checked with conservation)."""
        liquidator = self.cluster.actor(LIQUIDATOR)
        self._see_perp(liquidator)
        if liquidator.perp.open:
            raise AuditFailure("stuck perpetual liquidation", f"open on the liquidator after healing: "
                               f"{liquidator.perp.open}")
        for index, desk in self._perp_desks():
            if desk.liquidations:
                raise AuditFailure("stuck perpetual liquidation", f"shard {index} still holds liquidations "
                                   f"{sorted(desk.liquidations)} after healing")
            for wallet in desk.accounts.values():
                self._check_perp_account(index, desk, wallet)
        self._check_perp_fund(liquidator)

    def _perp_desks(self) -> list[tuple]:
        return [(index, desk) for index in range(self.config.shards)
                if (desk := self.cluster.actor(f"shard:{index}").shard.products.get("perp")) is not None]

    def _check_perp_balanced(self, liquidator) -> None:
        """When nothing is in flight: open interest balanced in every market (accounts' and
        liquidations' lots), and the perpetual money summing to zero: what the wallets and
        liquidations hold, the fees the fills charged and the funds' change are the net
        transfers into the wallets."""
        held = [0] * len(self.assets)
        interest = dict.fromkeys(self.perps, 0)
        for _, desk in self._perp_desks():
            for wallet in desk.accounts.values():
                for name, position in wallet.positions.items():
                    interest[name] += position.lots
            for liquidation in desk.liquidations.values():
                for name, position in liquidation.positions.items():
                    interest[name] += position.lots
            held = [h + t for h, t in zip(held, desk.totals())]
        if any(interest.values()):
            raise AuditFailure("open interest", f"signed lots over every position do not sum to zero: {interest}")
        fees = [0] * len(self.assets)
        for (market, _), fill in self.fills.items():
            if market in self.perps:
                fees[self.perps[market].spec.quote.index] += fill.taker_fee + fill.maker_fee
        change = [b - s for b, s in zip(self._perp_funds(liquidator, fee_shares=False), self.perp_fund_initial)]
        for i, asset in enumerate(self.assets):
            if held[i] + fees[i] + change[i] != self.perp_transferred[i]:
                raise AuditFailure("perpetual zero-sum", f"{asset}: wallets and liquidations hold {held[i]}, fees "
                                   f"{fees[i]}, funds' change {change[i]}; net transfers in {self.perp_transferred[i]}")

    def _check_perp_account(self, index: int, desk, wallet) -> None:
        """No negative equity (the cross wallet with its positions' PnL at the mark, each isolated
        position with its margin), and none at or under maintenance."""
        cross_equity = list(wallet.cash)
        cross_maintenance = [0] * len(self.assets)
        for name, position in wallet.positions.items():
            if not position.lots:
                continue
            perp = self.perps[name]
            q, mark = perp.spec.quote.index, desk.marks[name][1]
            pnl = position.lots * mark * perp.k - position.basis
            maintenance = perp.tiers.maintenance(abs(position.lots) * mark * perp.k)
            if position.mode == MarginMode.ISOLATED:
                equity = position.margin + pnl
                if equity < 0 or equity <= maintenance:
                    raise AuditFailure("negative equity" if equity < 0 else "stuck perpetual liquidation",
                                       f"shard {index} account {wallet.account_id} isolated {name}: equity {equity}, "
                                       f"maintenance {maintenance} at mark {mark}")
            else:
                cross_equity[q] += pnl
                cross_maintenance[q] += maintenance
        for q, equity in enumerate(cross_equity):
            if equity < 0 or (cross_maintenance[q] and equity <= cross_maintenance[q]):
                raise AuditFailure("negative equity" if equity < 0 else "stuck perpetual liquidation",
                                   f"shard {index} account {wallet.account_id} cross {self.assets[q]}: equity "
                                   f"{equity}, maintenance {cross_maintenance[q]}, cash {wallet.cash[q]}")

    def _check_perp_fund(self, liquidator) -> None:
        """The chain verifies; its top-ups are the configured seed capital; each surplus or loss
        entry is what a finished liquidation left in that market, and every such amount has one."""
        fund = liquidator.perp_fund
        problems = verify([e.to_plain() for e in fund.entries], fund.balances, fund.head)
        if problems:
            raise AuditFailure("perpetual fund chain", "; ".join(problems))
        seeds = {name: perp.fund_initial for name, perp in self.perps.items() if perp.fund_initial}
        entered: dict[tuple, int] = {}
        for entry in fund.entries:
            details = dict(entry.details)
            if entry.kind == EntryKind.TOP_UP:
                if details.get("by") != "config" or seeds.pop(entry.market, None) != entry.amount:
                    raise AuditFailure("perpetual fund explained", f"a top-up nobody made: {entry}")
            elif entry.kind in (EntryKind.LIQUIDATION_SURPLUS, EntryKind.BANKRUPTCY_LOSS):
                key = (details.get("liquidation"), entry.market)
                if key in entered or self.perp_finished.get(key) != entry.amount:
                    raise AuditFailure("perpetual fund explained", f"entry {entry.n} ({entry.kind.name} "
                                       f"{entry.amount}) for liquidation {key}: the shard answered "
                                       f"{self.perp_finished.get(key)}")
                entered[key] = entry.amount
        if seeds:
            raise AuditFailure("perpetual fund explained", f"seed capital never entered: {seeds}")
        self._check_fee_shares(fund)
        missing = {key: amount for key, amount in self.perp_finished.items() if amount and key not in entered}
        if missing:
            raise AuditFailure("perpetual fund explained", f"liquidations finished with no fund entry: {missing}")


    def _check_fee_shares(self, fund) -> None:
        """Each fee share entry is what a shard moved (the chain's own check makes each the
        step of its shard's cumulative): no shard's recorded cumulative above what it moved, no
        shard moving more than its markets' share of the fees its fills charged, and those
        fees, over the shards, what the fills observed charged."""
        charged = dict.fromkeys(self.perps, 0)
        for (market, _), fill in self.fills.items():
            if market in self.perps:
                charged[market] += fill.taker_fee + fill.maker_fee
        income = dict.fromkeys(self.perps, 0)
        for index, desk in self._perp_desks():
            for market, total in desk.fee_income.items():
                income[market] += total
                moved = desk.fee_swept.get(market, 0)
                if fund.fees_through.get((market, index), 0) > moved or \
                        moved > max(0, total) * self.perps[market].fee_share_ppm // PPM:
                    raise AuditFailure("perpetual fee share", f"shard {index} {market}: fees {total}, moved {moved}, "
                                       f"the fund recorded {fund.fees_through.get((market, index), 0)}")
        if income != charged:
            raise AuditFailure("perpetual fee share", f"the desks counted fees {income}, the fills charged {charged}")


def _external(command) -> str | None:
    kind = type(command)
    return "deposit" if kind is Deposit else "withdraw" if kind is Withdraw else None


def _queued(actor, cluster) -> dict:
    """What an actor still holds for a peer that the peer has not applied (empty when
    everything was delivered): the entries on each of its links (``actors/link/link.py``)
    beyond the peer's last applied number (a market keeps the entries its ``submit``
    answers handed over until the shard says it has them), and its commands waiting
    for answers."""
    out = {}
    links = getattr(actor, "links", None)
    if links is not None:
        left = {}
        for key, link in links.items():
            applied = _peer_applied(actor, key, cluster)
            undelivered = sum(1 for entry in link.pending() if entry[0] > applied)
            if undelivered:
                left[key] = undelivered
        if left:
            out["links"] = left
    if getattr(actor, "pending", None):
        out["pending"] = len(actor.pending)
    return out


def _peer_applied(actor, key, cluster) -> int:
    """The last entry of ``actor``'s link ``key`` its peer has applied."""
    if hasattr(actor, "link_applied"):          # a shard: the market's (or pool's) last rseq from it
        peer = cluster.actor(key if key == LENDING else f"market:{key}")
        return peer.applied_rseq[actor.index]
    return cluster.actor(f"shard:{key}").link_applied[actor.name]     # a market or the pool


def _fingerprint(actor) -> tuple:
    """The state hash and the link numbers a recovery must reproduce."""
    if hasattr(actor, "link_applied"):          # a shard
        return (actor.state_hash(), {m: link.number for m, link in actor.links.items()}, dict(actor.link_applied),
                sorted(map(repr, actor.pending)))
    if hasattr(actor, "liquidator"):            # the liquidator: its durable state is all it recovers
        return (actor.state_hash(), actor.perp.canonical())
    return (actor.state_hash(), dict(actor.applied_rseq), {s: link.number for s, link in actor.links.items()},
            dict(actor.pushed))
