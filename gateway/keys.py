"""API keys: created, looked up, revoked (issue 18).

An HMAC key's secret must be known to verify a signature, so it is kept **encrypted**
(Fernet: AES-128-CBC with an HMAC, ``cryptography``) under the gateway's master key, and
shown once, at creation. An Ed25519 key's owner keeps the private key: the store holds
only the public key. Each key carries its account, its permissions (read, trade,
withdraw) and its address allowlist. ``revoke`` takes effect on the next request.

Where the records live:
- in memory (``KeyStore()``), for tests and a gateway without a data directory;
- **durable and shared**: ``KeyStore.open(directory)`` keeps them in an LMDB environment
  in ``directory`` (``keys/``; the listen keys have tables there too, ``table``), which
  every gateway process on the host opens: LMDB lets
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


class MemoryTable(dict):
    """A table in this process's memory."""

    def put(self, key: str, value) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


class LmdbTable:
    """A named table of an LMDB environment that several processes share; values go
    through ``encode`` (to JSON-able) and ``decode`` (back)."""

    def __init__(self, env: lmdb.Environment, name: str, encode=lambda v: v, decode=lambda v: v):
        self.env, self.db = env, env.open_db(name.encode())
        self.encode, self.decode = encode, decode

    def get(self, key: str):
        if not key or len(key) > 500:                  # (no such key: LMDB takes 1..511 bytes)
            return None
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(key.encode())
        return None if raw is None else self.decode(orjson.loads(raw))

    def put(self, key: str, value) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(key.encode(), orjson.dumps(self.encode(value)))

    def delete(self, key: str) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.delete(key.encode())

    def __len__(self) -> int:
        with self.env.begin(db=self.db) as txn:
            return txn.stat(self.db)["entries"]

    def items(self) -> list:
        with self.env.begin(db=self.db) as txn:
            return [(k.decode(), self.decode(orjson.loads(v))) for k, v in txn.cursor()]

    def values(self) -> list:
        return [value for _, value in self.items()]


class KeyStore:
    def __init__(self, master_key: bytes | None = None, keys_max: int = KEYS_MAX, env: lmdb.Environment | None = None):
        self.master_key = master_key or Fernet.generate_key()
        self._fernet = Fernet(self.master_key)
        self.env = env                                 # None: every table in this process's memory
        self._keys = self.table("keys")                # key -> its record (the secret encrypted)
        self._checked: dict[str, tuple[int, ApiKey]] = {}   # key -> (revision, as verified, decrypted once)
        self.keys_max = keys_max

    @classmethod
    def open(cls, directory: str | Path, keys_max: int = KEYS_MAX) -> "KeyStore":
        """The durable store in ``directory``, shared by every process that opens it."""
        directory = Path(directory)
        (directory / "keys").mkdir(parents=True, exist_ok=True)
        env = lmdb.open(str(directory / "keys"), map_size=MAP_SIZE, max_dbs=4)
        return cls(_master_key(directory), keys_max, env)

    def table(self, name: str, encode=lambda v: v, decode=lambda v: v):
        """A table beside the keys, shared as they are (the listen keys keep theirs here)."""
        return MemoryTable() if self.env is None else LmdbTable(self.env, name, encode, decode)

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
        if self.env is not None:
            self.env.close()


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
