"""Spot balances: per account per asset ``available`` and ``held``, the fee
account, and the deposit/withdrawal totals that the conservation audit uses.

Amounts are ints in asset minor units, indexed by ``AssetSpec.index`` (lists,
not dicts, on the hot path). Every movement here is a transfer between
accounts, between available and held, or to the fee account; only
``deposit``/``withdraw`` change the total, and they are counted.
"""
from __future__ import annotations

import hashlib

from exchange.config import ExchangeConfig


class Account:
    """One account's balances and open-order bookkeeping."""

    __slots__ = ("account_id", "fee_tier", "maker_ppm", "taker_ppm", "available", "held", "client_ids", "risk")

    def __init__(self, account_id: int, fee_tier: str, maker_ppm: int, taker_ppm: int, assets: int):
        self.account_id = account_id
        self.fee_tier = fee_tier
        self.maker_ppm = maker_ppm
        self.taker_ppm = taker_ppm
        self.available = [0] * assets
        self.held = [0] * assets
        self.client_ids: dict[str, int] = {}   # open client order id -> order id
        self.risk = None                       # the risk gate's record of it (``exchange.risk.gate.RiskGate.link``:
                                               # derived, not in the canonical state)

    def canonical(self) -> tuple:
        return (self.account_id, self.fee_tier, tuple(self.available), tuple(self.held),
                tuple(sorted(self.client_ids.items())))


class Ledger:
    """All accounts of one shard plus its share of the fee account."""

    __slots__ = ("config", "accounts", "fees", "deposited", "withdrawn")

    def __init__(self, config: ExchangeConfig):
        n = len(config.assets)
        self.config = config
        self.accounts: dict[int, Account] = {}
        self.fees = [0] * n
        self.deposited = [0] * n
        self.withdrawn = [0] * n

    def open(self, account_id: int, tier_name: str) -> Account:
        tier = self.config.fee_tiers[tier_name]
        account = Account(account_id, tier_name, tier.maker_ppm, tier.taker_ppm, len(self.fees))
        self.accounts[account_id] = account
        return account

    def deposit(self, account: Account, asset: int, amount: int) -> None:
        account.available[asset] += amount
        self.deposited[asset] += amount

    def withdraw(self, account: Account, asset: int, amount: int) -> None:
        assert account.available[asset] >= amount, "withdraw beyond available"
        account.available[asset] -= amount
        self.withdrawn[asset] += amount

    @staticmethod
    def hold(account: Account, asset: int, amount: int) -> None:
        assert account.available[asset] >= amount, "hold beyond available"
        account.available[asset] -= amount
        account.held[asset] += amount

    @staticmethod
    def release(account: Account, asset: int, amount: int) -> None:
        assert account.held[asset] >= amount, "release beyond held"
        account.held[asset] -= amount
        account.available[asset] += amount

    def totals(self) -> list[int]:
        """Per asset: all balances of this shard plus its fee account."""
        totals = list(self.fees)
        for account in self.accounts.values():
            for i, (a, h) in enumerate(zip(account.available, account.held)):
                totals[i] += a + h
        return totals

    def check_invariants(self) -> None:
        for account in self.accounts.values():
            assert min(account.available) >= 0 and min(account.held) >= 0, f"negative balance {account.canonical()}"
        assert min(self.fees) >= 0, "negative fee account"

    def canonical(self) -> tuple:
        return (tuple(a.canonical() for _, a in sorted(self.accounts.items())),
                tuple(self.fees), tuple(self.deposited), tuple(self.withdrawn))


def digest(*parts: object) -> str:
    """A stable SHA-256 over canonical tuples of ints and strings."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()
