"""API keys: created, looked up, revoked (issue 18).

An HMAC key's secret must be known to verify a signature, so it is kept **encrypted**
(Fernet: AES-128-CBC with an HMAC, ``cryptography``) under the gateway's master key, and
shown once, at creation. An Ed25519 key's owner keeps the private key: the store holds
only the public key. Each key carries its account, its permissions (read, trade,
withdraw) and its address allowlist. ``revoke`` takes effect on the next request.

``records()`` / ``KeyStore.restore`` give the store's state as plain data (no secret in
clear) for a durable home.
"""
from __future__ import annotations

import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.auth import ApiKey, KeyKind, Permission

KEY_BYTES = 32
KEYS_MAX = 100_000


class KeyStore:
    def __init__(self, master_key: bytes | None = None, keys_max: int = KEYS_MAX):
        self.master_key = master_key or Fernet.generate_key()
        self._fernet = Fernet(self.master_key)
        self._keys: dict[str, dict] = {}           # key -> its record (the secret encrypted)
        self._checked: dict[str, ApiKey] = {}      # key -> as verified, decrypted once (every signed request reads it)
        self.keys_max = keys_max

    def create(self, account_id: int, permissions, ips=(), public_key: bytes | None = None) -> tuple[str, str | None]:
        """A new key for ``account_id``: HMAC unless ``public_key`` (Ed25519, 32 raw bytes) is
        given. Returns the key and, for HMAC, its secret: shown this once, never again.
        ``ValueError`` for an unknown permission, a malformed public key or a full store."""
        if len(self._keys) >= self.keys_max:
            raise ValueError(f"the key store holds its maximum of {self.keys_max} keys")
        permissions = frozenset(Permission(p) for p in permissions)
        key = secrets.token_hex(KEY_BYTES)
        if public_key is not None:
            Ed25519PublicKey.from_public_bytes(public_key)           # ValueError unless a real key
            stored, secret, kind = public_key.hex(), None, KeyKind.ED25519
        else:
            secret = secrets.token_hex(KEY_BYTES)
            stored, kind = self._fernet.encrypt(secret.encode()).decode(), KeyKind.HMAC
        self._keys[key] = {"account": account_id, "kind": kind.value, "secret": stored,
                           "permissions": sorted(p.value for p in permissions), "ips": sorted(ips),
                           "revoked": False}
        return key, secret

    def get(self, key: str) -> ApiKey | None:
        """The key as ``gateway.auth.verify`` checks it (its HMAC secret decrypted), or None."""
        known = self._checked.get(key)
        if known is not None:
            return known
        record = self._keys.get(key)
        if record is None:
            return None
        kind = KeyKind(record["kind"])
        secret = (self._fernet.decrypt(record["secret"].encode()) if kind is KeyKind.HMAC
                  else bytes.fromhex(record["secret"]))
        known = self._checked[key] = ApiKey(key, record["account"], kind, secret,
                                            frozenset(Permission(p) for p in record["permissions"]),
                                            frozenset(record["ips"]), record["revoked"])
        return known

    def known(self, key: str) -> bool:
        """Whether ``key`` was ever created here (revoked or not): no secret is decrypted."""
        return key in self._keys

    def revoke(self, key: str) -> bool:
        """Revoke ``key`` now; False if there is no such key."""
        record = self._keys.get(key)
        if record is None:
            return False
        record["revoked"] = True
        self._checked.pop(key, None)               # the next request reads it revoked
        return True

    def records(self) -> dict[str, dict]:
        """Every key's record, secrets encrypted: what a durable store keeps."""
        return {key: dict(record) for key, record in self._keys.items()}

    @classmethod
    def restore(cls, master_key: bytes, records: dict[str, dict]) -> "KeyStore":
        store = cls(master_key)
        store._keys = {key: dict(record) for key, record in records.items()}
        return store
