"""The treasury actor: the chain watcher, the deposit credits, the hot and cold wallets and
the payment of approved withdrawals (``exchange.risk.treasury.Treasury``), over a
simulated chain.

Every ``block_s`` (``[treasury]``) it mines a block, credits the deposits that reached
their confirmation count (``Deposit`` commands to the accounts' shards, request id = the
transaction's, so a re-sent credit is a replay), reports the withdrawals whose
transaction reached its count (``SettleWithdrawal`` confirmed, through the shard's
operator door as the built-in operator ``treasury``), and pays from hot the withdrawals
the cashiers approved (broadcast, ``SettleWithdrawal`` sent). Commands go out first and
the state is snapshotted after: a crash in between re-sends them, which the shards
answer as replays. Operators approve cold-to-hot refills (treasury role) and suspend an
asset's deposits (risk role); both are journaled.

``receive`` is the simulated chain's customer: a transfer to an account's deposit
address (tests and the demo).
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson
import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.durability.journal import DurableActor, Journal
from actors.link.wire import pack, unpack_results
from actors.metrics.roles import treasury_metrics
from exchange.config import load_config
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.messages.records import BalanceChanged, Deposit, OrderRejected
from exchange.messages.tags import RecordTag, tag_of
from exchange.risk.admin import permit
from exchange.risk.treasury import Treasury

log = logging.getLogger("exchange.treasury")


class _Asked:
    __slots__ = ("operator", "reason")

    def __init__(self, operator: str, reason: str):
        self.operator, self.reason = operator, reason


class TreasuryActor(DurableActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()
        self._as_operator = self.keyring.capability(Role.OPERATOR)
        self.rulebook = self.config.risk
        self.block_s = float(self.config.sections.get("treasury", {}).get("block_s", 1.0))
        self.treasury = Treasury(self.config)
        self.credited: dict[str, int] = {a: 0 for a in self.treasury.assets}     # shards acknowledged
        self.confirmed: dict[str, int] = {a: 0 for a in self.treasury.assets}
        self.refused = 0
        self.journal = Journal.for_actor(data_dir, "treasury", self.config)
        self.recovery = self.journal.recover(self._restore, self._replay)
        self.started_ns = time.time_ns()
        self._task = None
        self.metrics = treasury_metrics(self)

    async def start(self) -> bool:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                clock.every(self.block_s, self._step, log, "treasury"))      # a block a turn
        return True

    async def _step(self) -> dict:
        """One block: credits, confirmations, payments; then the state is durable."""
        commands = self.treasury.block()
        approved = []
        for shard in range(self.config.shards):
            handle = ray.get_actor(f"shard:{shard}")
            approved.extend(w for w in await handle.withdrawals.remote() if w["state"] == "approved")
        commands.extend(self.treasury.pay(approved))
        for command, events in zip(commands, await self._send(commands)):
            self._count(command, events)
        if self.journal.enabled:
            self.journal.snapshot(self._state())
        return self.treasury.view()

    async def _send(self, commands: list) -> list:
        shards = self.config.routing
        by_shard: dict[int, list] = {}
        for i, command in enumerate(commands):
            by_shard.setdefault(shard_for(command.account_id, shards), []).append(i)
        results: list = [None] * len(commands)
        for shard, positions in by_shard.items():
            handle = ray.get_actor(f"shard:{shard}")
            deposits = [commands[i] for i in positions if type(commands[i]) is Deposit]
            others = [commands[i] for i in positions if type(commands[i]) is not Deposit]
            answers = []
            if deposits:       # a customer's deposit: the client door (the chain is the customer's)
                answers += unpack_results(await handle.execute.remote(pack(deposits)))
            if others:         # a settlement: the operator door, as the operator "treasury"
                answers += unpack_results(await handle.execute_operator.remote(self._as_operator, pack(others)))
            ordered = [i for i in positions if type(commands[i]) is Deposit] + \
                [i for i in positions if type(commands[i]) is not Deposit]
            for i, events in zip(ordered, answers):
                results[i] = events
        return results

    def _count(self, command, events: list) -> None:
        first = events[0] if events else None
        if type(first) is OrderRejected and first.reason not in (Reason.WITHDRAWAL_ALREADY_SENT,
                                                                 Reason.WITHDRAWAL_FINAL):
            self.refused += 1
            log.warning("treasury: %s refused %s", command, Reason(first.reason).name)
        elif type(command) is Deposit and any(type(e) is BalanceChanged for e in events):
            self.credited[command.asset] += command.amount
        elif type(command) is not Deposit and command.stage == 2 and type(first) is not OrderRejected:
            asset = next(e.asset for e in events if type(e).__name__ == "WithdrawalUpdated")
            self.confirmed[asset] += next(e.amount for e in events if type(e).__name__ == "WithdrawalUpdated")

    # ---- the simulated chain's customers, and operators ---------------------------------
    async def receive(self, capability, account_id: int, asset: str, amount: int) -> str:
        """A customer's transfer to their deposit address (the simulated chain); journaled."""
        self.keyring.check(capability, Role.OPERATOR)
        await self.journal.commit([orjson.dumps([RecordTag.TREASURY_INPUT, "receive", account_id, asset, amount])])
        return self.treasury.receive(account_id, asset, amount)

    async def approve_refill(self, capability, refill_id: int, operator: str, reason: str) -> dict:
        """Sign a cold-to-hot transfer (the treasury role)."""
        self.keyring.check(capability, Role.OPERATOR)
        refused = permit(self.rulebook, _Asked(operator, reason), frozenset(("treasury", "admin")))
        if refused is not None:
            return {"ok": False, "reason": refused.name}
        await self.journal.commit([orjson.dumps([RecordTag.TREASURY_INPUT, "refill", refill_id, operator])])
        refused = self.treasury.approve_refill(refill_id, operator)
        return {"ok": refused is None, "reason": None if refused is None else refused.name}

    async def suspend_deposits(self, capability, asset: str, suspended: bool, operator: str, reason: str) -> dict:
        """Stop (or resume) crediting an asset's deposits (5.2.2.3; the risk role)."""
        self.keyring.check(capability, Role.OPERATOR)
        refused = permit(self.rulebook, _Asked(operator, reason), frozenset(("risk", "admin")))
        if refused is not None or asset not in self.treasury.assets:
            return {"ok": False, "reason": refused.name if refused else "UNKNOWN_ASSET"}
        await self.journal.commit([orjson.dumps([RecordTag.TREASURY_INPUT, "suspend", asset, suspended])])
        self.treasury.suspend(asset, suspended)
        return {"ok": True}

    def view(self) -> dict:
        """Wallets, refills, in-flight payments, and the reconciliation: the wallets against what
        the shards acknowledged (deposits credited less withdrawals confirmed)."""
        through_chain = {a: self.credited[a] - self.confirmed[a] for a in self.credited}
        return {**self.treasury.view(), "acknowledged": through_chain, "refused": self.refused,
                "discrepancies": [d._asdict() for d in self.treasury.reconcile(through_chain)]}

    def stats(self) -> dict:
        return self.view()

    # ---- durability ------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"treasury": self.treasury.snapshot(), "credited": self.credited, "confirmed": self.confirmed}

    def _restore(self, state: dict) -> None:
        self.treasury.restore(state["treasury"])
        self.credited.update(state["credited"])
        self.confirmed.update(state["confirmed"])

    def _replay(self, record: list) -> None:
        if tag_of(record) is not RecordTag.TREASURY_INPUT:
            raise ValueError(f"not a treasury record: {record[0]}")
        kind, *args = record[1:]
        if kind == "receive":
            self.treasury.receive(*args)
        elif kind == "refill":
            self.treasury.approve_refill(*args)
        else:
            self.treasury.suspend(*args)


RemoteTreasury = ray.remote(TreasuryActor)
