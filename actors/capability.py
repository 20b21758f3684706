"""Capabilities: who may call an actor's privileged (role) methods.

A ``Keyring`` is minted once, when the deployment is bootstrapped: one random
32-byte secret per ``Role`` and one for scopes, from ``secrets``. It is handed
to every actor's constructor (Ray re-runs a constructor with the same
arguments when it restarts an actor, so the keyring survives restarts) and to
the ``OperatorClient`` of the process that bootstrapped the deployment; never
to an ``ExchangeClient``. A role method takes a ``Capability`` as its first
argument and checks it before anything else (``keyring.check``), comparing in
constant time; a wrong or missing capability raises ``PermissionError`` and
changes nothing.

A ``Scope`` lets a less trusted service act for a fixed set of accounts only:
its token is an HMAC-SHA256, under the scope secret, of the sorted account
ids, so the shard can check it without keeping a list of issued scopes.

What this protects against, and what it does not, is in ``docs/SECURITY.md``:
a capability gives least privilege to code that is handed only a client
object or a scope; anyone who can connect a Ray driver to the cluster can run
code on it whatever the capabilities say.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

SECRET_BYTES = 32


class Role(enum.Enum):
    LIQUIDATOR = "liquidator"   # liquidation commands on shards (execute_as)
    INDEX = "index"             # index prices pushed to shards and the liquidator
    MARKET = "market"           # markets and the lending pool pushing events to shards
    SHARD = "shard"             # shards calling markets, the pool and the liquidator
    OTC = "otc"                 # the OTC desk's crossings on shards (execute_otc)
    OPERATOR = "operator"       # accrual at a chosen time, fund deposits, index components, crash hooks, snapshots


@dataclass(frozen=True)
class Capability:
    """The right to call one role's methods (a bearer token: whoever holds it has the role)."""
    role: Role
    token: bytes = field(repr=False)


@dataclass(frozen=True)
class Scope:
    """The right to act for ``accounts`` only, through a shard's ``execute_scoped``."""
    accounts: frozenset
    token: bytes = field(repr=False)


@dataclass(frozen=True)
class Keyring:
    """One secret per role and one for scopes; mint it once per deployment."""
    secrets: tuple = field(repr=False)      # ((role value, secret bytes), ...)
    scope_secret: bytes = field(repr=False)

    @classmethod
    def mint(cls) -> "Keyring":
        return cls(tuple((role.value, secrets.token_bytes(SECRET_BYTES)) for role in Role),
                   secrets.token_bytes(SECRET_BYTES))

    def _secret(self, role: Role) -> bytes:
        for value, secret in self.secrets:
            if value == role.value:
                return secret
        raise KeyError(role)

    def capability(self, role: Role) -> Capability:
        return Capability(role, self._secret(role))

    def check(self, capability, role: Role) -> None:
        """Raise ``PermissionError`` unless ``capability`` grants ``role``."""
        if type(capability) is not Capability or capability.role is not role \
                or type(capability.token) is not bytes \
                or not hmac.compare_digest(capability.token, self._secret(role)):
            raise PermissionError(f"this call needs the {role.value} capability")

    def scope(self, accounts) -> Scope:
        """A scope for ``accounts`` (ints)."""
        members = frozenset(accounts)
        if not members or any(type(a) is not int for a in members):
            raise ValueError("a scope names one or more integer account ids")
        return Scope(members, self._scope_token(members))

    def check_scope(self, scope) -> frozenset:
        """Return the scope's accounts; raise ``PermissionError`` if it was not issued by this keyring."""
        if type(scope) is not Scope or type(scope.accounts) is not frozenset or type(scope.token) is not bytes \
                or not scope.accounts or any(type(a) is not int for a in scope.accounts) \
                or not hmac.compare_digest(scope.token, self._scope_token(scope.accounts)):
            raise PermissionError("this call needs a scope issued by the exchange")
        return scope.accounts

    def _scope_token(self, accounts: frozenset) -> bytes:
        canonical = b"scope:v1:" + ",".join(str(a) for a in sorted(accounts)).encode()
        return hmac.new(self.scope_secret, canonical, hashlib.sha256).digest()
