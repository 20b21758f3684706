"""API keys: created, looked up, revoked (issue 18).

An HMAC key's secret must be known to verify a signature, so it is kept **encrypted**
(Fernet: AES-128-CBC with an HMAC, ``cryptography``) under the gateway's master key, and
shown once, at creation. An Ed25519 key's owner keeps the private key: the store holds
only the public key. Each key carries its account, its permissions (read, trade,
withdraw) and its address allowlist. ``revoke`` takes effect on the next request.

Where the records live:
- in memory (``KeyStore()``), for tests and a gateway without a data directory;
- **durable and shared**: ``KeyStore.open(directory)`` keeps them in an LMDB environment
  in ``directory`` (``keys/``), which every gateway process on the host opens: LMDB lets
  several processes read and write one environment, so a key created or revoked by one
  (or by ``exchange keys``) holds in all at their next request. Each record carries a
  revision; a process decrypts a key once and uses its copy until the revision moves.
  The master key is ``$EXCHANGE_GATEWAY_MASTER_KEY`` if set, else ``directory/master.key``
  (made on first use, mode 0600). Hosts do not share an LMDB file: each host's gateways
  have their own store (docs/DEPLOY.md).

``records()`` / ``KeyStore.restore`` give the store's state as plain data (no secret in
clear).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import lmdb
import orjson
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.auth import ApiKey, KeyKind, Permission

KEY_BYTES = 32
KEYS_MAX = 100_000
MASTER_KEY_ENV = "EXCHANGE_GATEWAY_MASTER_KEY"
MAP_SIZE = 256 << 20                            # room for KEYS_MAX records many times over


class MemoryRecords(dict):
    """Key records in this process's memory: key -> record."""

    def put(self, key: str, record: dict) -> None:
        self[key] = record


class LmdbRecords:
    """Key records in an LMDB environment that several processes share."""

    def __init__(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=0)

    def get(self, key: str) -> dict | None:
        with self.env.begin() as txn:
            raw = txn.get(key.encode())
        return None if raw is None else orjson.loads(raw)

    def put(self, key: str, record: dict) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key.encode(), orjson.dumps(record))

    def __len__(self) -> int:
        return self.env.stat()["entries"]

    def items(self):
        with self.env.begin() as txn:
            return [(k.decode(), orjson.loads(v)) for k, v in txn.cursor()]

    def close(self) -> None:
        self.env.close()


class KeyStore:
    def __init__(self, master_key: bytes | None = None, keys_max: int = KEYS_MAX, records=None):
        self.master_key = master_key or Fernet.generate_key()
        self._fernet = Fernet(self.master_key)
        self._keys = MemoryRecords() if records is None else records   # key -> its record (the secret encrypted)
        self._checked: dict[str, tuple[int, ApiKey]] = {}   # key -> (revision, as verified, decrypted once)
        self.keys_max = keys_max

    @classmethod
    def open(cls, directory: str | Path, keys_max: int = KEYS_MAX) -> "KeyStore":
        """The durable store in ``directory``, shared by every process that opens it."""
        directory = Path(directory)
        return cls(_master_key(directory), keys_max, LmdbRecords(directory / "keys"))

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
        self._keys.put(key, {"account": account_id, "kind": kind.value, "secret": stored,
                             "permissions": sorted(p.value for p in permissions), "ips": sorted(ips),
                             "revoked": False, "rev": 1})
        return key, secret

    def get(self, key: str) -> ApiKey | None:
        """The key as ``gateway.auth.verify`` checks it (its HMAC secret decrypted), or None."""
        record = self._keys.get(key)
        if record is None:
            return None
        revision = record.get("rev", 1)
        checked = self._checked.get(key)
        if checked is not None and checked[0] == revision:
            return checked[1]
        kind = KeyKind(record["kind"])
        secret = (self._fernet.decrypt(record["secret"].encode()) if kind is KeyKind.HMAC
                  else bytes.fromhex(record["secret"]))
        known = ApiKey(key, record["account"], kind, secret, frozenset(Permission(p) for p in record["permissions"]),
                       frozenset(record["ips"]), record["revoked"])
        self._checked[key] = (revision, known)
        return known

    def known(self, key: str) -> bool:
        """Whether ``key`` was ever created here (revoked or not): no secret is decrypted."""
        return self._keys.get(key) is not None

    def revoke(self, key: str) -> bool:
        """Revoke ``key`` now, in every process sharing the store; False if there is no such key."""
        record = self._keys.get(key)
        if record is None:
            return False
        self._keys.put(key, {**record, "revoked": True, "rev": record.get("rev", 1) + 1})
        return True

    def records(self) -> dict[str, dict]:
        """Every key's record, secrets encrypted."""
        return {key: dict(record) for key, record in self._keys.items()}

    @classmethod
    def restore(cls, master_key: bytes, records: dict[str, dict]) -> "KeyStore":
        store = cls(master_key)
        for key, record in records.items():
            store._keys.put(key, dict(record))
        return store

    def close(self) -> None:
        if isinstance(self._keys, LmdbRecords):
            self._keys.close()


def _master_key(directory: Path) -> bytes:
    """``$EXCHANGE_GATEWAY_MASTER_KEY``, else ``directory/master.key``, made (0600) if absent:
    written aside and linked into place, so a process racing another reads a whole key."""
    if os.environ.get(MASTER_KEY_ENV):
        return os.environ[MASTER_KEY_ENV].encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "master.key"
    if not path.exists():
        aside = directory / f".master.key.{os.getpid()}"
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(Fernet.generate_key())
        try:
            os.link(aside, path)
        except FileExistsError:
            pass                                     # another process made it first: use theirs
        finally:
            aside.unlink()
    return path.read_bytes().strip()
