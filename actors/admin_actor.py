"""The admin actor: the one door for operator actions of the risk rulebook (4.6, 5.2).

Every action names its operator and a reason and is carried, as a command, to the
actor whose state it changes: an account's shard (freezes, locks, restrictions,
hedge exemptions, withdrawal reviews), every shard (asset freezes, the blocklist,
a perpetual market's maintenance rate), every shard, market and the surveillance
(a threshold), a market (its mode), the surveillance (account links), the
liquidator (a compensation from an insurance fund) or the treasury (refills,
deposit suspension). Each of those checks the operator's roles itself
(``exchange.risk.admin.permit``), journals the command and records it in its own
audit chain: the admin actor holds no state and no rule, so a restart loses
nothing and nothing is decided twice.

What it adds: one call per action however many actors it reaches (their answers
come back together, keyed ``shard:<i>``, ``market:<name>``, ``surveillance``), sent
concurrently; and a venue-wide action refused for its operator (no reason, an
unknown operator, a role that does not permit it) reaches no actor at all: the
same check runs here first and answers ``{"admin": [refusal]}``. Callers hold the
operator capability (``RiskDesk``, ``actors/client/risk.py``); the admin actor
calls the others with its own. Peers are found by name at each call, so an actor
that restarted is reached again without re-wiring.
"""
from __future__ import annotations

import asyncio
import time

import ray

from actors.capability import Keyring, Role
from actors.link.wire import pack, unpack_results
from exchange.config import load_config
from exchange.core.money import parse_decimal
from exchange.core.routing import house_account, shard_for
from exchange.messages.codec import decode, encode
from exchange.messages.records import (BlockAddress, FreezeAccount, FreezeAsset, GrantHedgeExemption, LockAccount,
                                       OrderRejected, RestrictAccount, ReviewWithdrawal, SetMaintenanceMargin,
                                       SetMarketMode, SetRiskRule, SettleWithdrawal)
from exchange.perp.rules import perp_markets
from exchange.risk.admin import permit
from exchange.risk.modes import MODE_NAMES
from exchange.risk.rulebook import ACTION_NAMES

SCOPES = {"none": 0, "trading": 1, "withdrawal": 2, "both": 3}


class AdminActor:
    def __init__(self, config_path: str | None, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()
        self._as_operator = self.keyring.capability(Role.OPERATOR)
        self.markets = [m.name for m in self.config.market_list] + sorted(perp_markets(self.config))
        self.shards = self.config.shards
        self.routing = self.config.routing
        self.sequence = 0
        self.actions = 0                                  # actions carried, since start (``stats``)

    def _rid(self, operator: str) -> str:
        self.sequence += 1
        return f"admin-{operator}-{time.time_ns()}-{self.sequence}"

    # ---- carrying ---------------------------------------------------------------------------
    async def _to_shard(self, shard: int, command) -> list:
        answer = await ray.get_actor(f"shard:{shard}").execute_operator.remote(self._as_operator, pack([command]))
        return unpack_results(answer)[0]

    async def _to_market(self, market: str, command) -> list:
        answer = await ray.get_actor(f"market:{market}").operator_command.remote(self._as_operator, encode(command))
        return [decode(e) for e in answer]

    def _checked(self, capability, command) -> list | None:
        self.keyring.check(capability, Role.OPERATOR)
        self.actions += 1
        refused = permit(self.config.risk, command) if self.config.risk is not None else None
        if refused is not None:
            return [OrderRejected(command.request_id, command.account_id, int(refused), 0)]
        return None

    async def _account(self, capability, account_id: int, build) -> list:
        self.keyring.check(capability, Role.OPERATOR)
        self.actions += 1
        return await self._to_shard(shard_for(account_id, self.routing), build())

    async def _every_shard(self, capability, build) -> dict:
        """``build(house account)`` to every shard; refused for its operator: to none."""
        refused = self._checked(capability, build(house_account(0, self.routing)))
        if refused is not None:
            return {"admin": refused}
        answers = await asyncio.gather(*(self._to_shard(i, build(house_account(i, self.routing)))
                                         for i in range(self.shards)))
        return {f"shard:{i}": events for i, events in enumerate(answers)}

    # ---- one account ------------------------------------------------------------------------
    async def freeze_account(self, capability, operator: str, account_id: int, scope: str, reason: str) -> list:
        return await self._account(capability, account_id, lambda: FreezeAccount(
            self._rid(operator), 0, account_id, SCOPES[scope], operator, reason))

    async def lock_account(self, capability, operator: str, account_id: int, locked: bool, reason: str) -> list:
        return await self._account(capability, account_id, lambda: LockAccount(
            self._rid(operator), 0, account_id, locked, operator, reason))

    async def restrict_account(self, capability, operator: str, account_id: int, level: str, reason: str,
                               market: str, until_ns: int, rule: str) -> list:
        return await self._account(capability, account_id, lambda: RestrictAccount(
            self._rid(operator), 0, account_id, market, ACTION_NAMES[level], until_ns, rule, operator, reason))

    async def grant_hedge_exemption(self, capability, operator: str, account_id: int, market: str, granted: bool,
                                    reason: str) -> list:
        return await self._account(capability, account_id, lambda: GrantHedgeExemption(
            self._rid(operator), 0, account_id, market, granted, operator, reason))

    async def review_withdrawal(self, capability, operator: str, account_id: int, withdrawal: int, approve: bool,
                                reason: str) -> list:
        return await self._account(capability, account_id, lambda: ReviewWithdrawal(
            self._rid(operator), 0, account_id, withdrawal, approve, operator, reason))

    async def settle_withdrawal(self, capability, operator: str, account_id: int, withdrawal: int, stage: int,
                                txid: str, reason: str) -> list:
        return await self._account(capability, account_id, lambda: SettleWithdrawal(
            self._rid(operator), 0, account_id, withdrawal, stage, txid, operator, reason))

    # ---- the venue --------------------------------------------------------------------------
    async def freeze_asset(self, capability, operator: str, asset: str, scope: str, reason: str) -> dict:
        return await self._every_shard(capability, lambda house: FreezeAsset(
            self._rid(operator), 0, house, asset, SCOPES[scope], operator, reason))

    async def block_address(self, capability, operator: str, destination: str, blocked: bool, reason: str) -> dict:
        return await self._every_shard(capability, lambda house: BlockAddress(
            self._rid(operator), 0, house, destination, blocked, operator, reason))

    async def raise_maintenance_margin(self, capability, operator: str, market: str, rate: str, reason: str) -> dict:
        ppm = parse_decimal(rate, 6)
        return await self._every_shard(capability, lambda house: SetMaintenanceMargin(
            self._rid(operator), time.time_ns(), house, market, ppm, operator, reason))

    async def set_rule(self, capability, operator: str, rule: str, key: str, value: str, reason: str) -> dict:
        """A threshold (or ``key`` "action") on every shard, market and the surveillance."""
        answers = await self._every_shard(capability, lambda house: SetRiskRule(
            self._rid(operator), 0, house, rule, key, value, operator, reason))
        if "admin" in answers:
            return answers
        markets = await asyncio.gather(*(self._to_market(m, SetRiskRule(
            self._rid(operator), time.time_ns(), 0, rule, key, value, operator, reason)) for m in self.markets))
        answers.update((f"market:{m}", events) for m, events in zip(self.markets, markets))
        if self.config.risk is not None:
            answers["surveillance"] = await ray.get_actor("surveillance").set_rule.remote(
                self._as_operator, rule, key, value, operator, reason)
        return answers

    async def set_market_mode(self, capability, operator: str, market: str, mode: str, reason: str,
                              until_ns: int) -> list:
        """"open", "reduce-only" or "halted" (5.2.2.2); KeyError for a market the venue does not list."""
        self.keyring.check(capability, Role.OPERATOR)
        if market not in self.markets:
            raise KeyError(f"no market {market!r}")
        self.actions += 1
        return await self._to_market(market, SetMarketMode(self._rid(operator), time.time_ns(), market,
                                                           MODE_NAMES.index(mode), until_ns, operator, reason))

    # ---- the surveillance, the funds, the treasury -----------------------------------------------
    async def link_accounts(self, capability, operator: str, a: int, b: int, kind: str, reason: str) -> dict:
        self.keyring.check(capability, Role.OPERATOR)
        self.actions += 1
        return await ray.get_actor("surveillance").link.remote(self._as_operator, a, b, kind, operator, reason)

    async def compensate(self, capability, operator: str, account_id: int, market: str, amount: int,
                         reason: str) -> dict:
        self.keyring.check(capability, Role.OPERATOR)
        self.actions += 1
        return await ray.get_actor("liquidator").compensate.remote(self._as_operator, market, account_id, amount,
                                                                   operator, reason)

    async def approve_refill(self, capability, operator: str, refill_id: int, reason: str) -> dict:
        self.keyring.check(capability, Role.OPERATOR)
        self.actions += 1
        return await ray.get_actor("treasury").approve_refill.remote(self._as_operator, refill_id, operator, reason)

    async def suspend_deposits(self, capability, operator: str, asset: str, suspended: bool, reason: str) -> dict:
        self.keyring.check(capability, Role.OPERATOR)
        self.actions += 1
        return await ray.get_actor("treasury").suspend_deposits.remote(self._as_operator, asset, suspended, operator,
                                                                       reason)

    def stats(self) -> dict:
        return {"actions": self.actions}


RemoteAdmin = ray.remote(AdminActor)
