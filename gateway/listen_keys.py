"""Listen keys of the private user-data stream (issue 18), kept as Binance Spot keeps them.

A listen key names one account's stream and belongs to the API key that created it.
``create`` makes one or, when the API key already has a live one, returns that one with
its validity extended (Binance's answer to a second POST); ``keep_alive`` extends a live
key to ``validity_ms`` from now; ``close`` ends it. A key not kept alive for
``validity_ms`` (60 minutes) has expired: from then on it is unknown, as a closed one
is. ``close_api_key`` ends an API key's listen key (a revoked key's stream stops).

Pure: the clock (ms) comes with every call, the token maker from the constructor, and
the two tables (listen key -> ``ListenKey``, API key -> its listen key) too: in memory,
or the key store's shared LMDB tables (``gateway.keys.KeyStore.table``), so every gateway
process on the host knows every listen key.
Bounded: one live listen key per API key, at most ``keys_max`` in all; past it, the
expired ones are forgotten, and if none has expired ``create`` raises ``ListenKeysFull``.
"""
from __future__ import annotations

import secrets
from dataclasses import astuple, dataclass

from gateway.keys import MemoryTable

VALIDITY_MS = 60 * 60 * 1000
KEYS_MAX = 100_000


class ListenKeysFull(Exception):
    """Every listen key the gateway may hold is live."""


@dataclass(slots=True)
class ListenKey:
    key: str
    api_key: str
    account_id: int
    expires_ms: int


class ListenKeys:
    def __init__(self, validity_ms: int = VALIDITY_MS, keys_max: int = KEYS_MAX,
                 new_token=lambda: secrets.token_hex(30), tables=None):
        self.validity_ms, self.keys_max, self._new_token = validity_ms, keys_max, new_token
        self._keys, self._by_api_key = tables or (MemoryTable(), MemoryTable())

    @classmethod
    def in_store(cls, store) -> "ListenKeys":
        """Listen keys kept beside ``store``'s API keys (``gateway.keys.KeyStore``)."""
        return cls(tables=(store.table("listen", astuple, lambda row: ListenKey(*row)), store.table("listen_by_api")))

    def create(self, api_key: str, account_id: int, now_ms: int) -> str:
        """The API key's listen key, live for ``validity_ms`` from now: its live one, or a new one.
        Raises ``ListenKeysFull``."""
        live = self.live(self._by_api_key.get(api_key) or "", now_ms)
        if live is not None and live.api_key == api_key:
            live.expires_ms = now_ms + self.validity_ms
            self._keys.put(live.key, live)
            return live.key
        if len(self._keys) >= self.keys_max:
            self._forget_expired(now_ms)
            if len(self._keys) >= self.keys_max:
                raise ListenKeysFull(f"{self.keys_max} listen keys are live")
        key = self._new_token()
        assert self._keys.get(key) is None, "a listen key made twice"
        self._keys.put(key, ListenKey(key, api_key, account_id, now_ms + self.validity_ms))
        self._by_api_key.put(api_key, key)
        return key

    def live(self, key: str, now_ms: int) -> ListenKey | None:
        """The listen key if it is live now (an expired one is forgotten here), else None."""
        found = self._keys.get(key)
        if found is not None and found.expires_ms <= now_ms:
            self._drop(found)
            return None
        return found

    def keep_alive(self, key: str, api_key: str, now_ms: int) -> bool:
        """Extend ``api_key``'s live listen key ``key``; False if there is none such."""
        found = self.live(key, now_ms)
        if found is None or found.api_key != api_key:
            return False
        found.expires_ms = now_ms + self.validity_ms
        self._keys.put(key, found)
        return True

    def close(self, key: str, api_key: str, now_ms: int) -> bool:
        """End ``api_key``'s live listen key ``key``; False if there is none such."""
        found = self.live(key, now_ms)
        if found is None or found.api_key != api_key:
            return False
        self._drop(found)
        return True

    def close_api_key(self, api_key: str) -> str | None:
        """End the API key's listen key, if it has one; return it."""
        key = self._by_api_key.get(api_key)
        found = None if key is None else self._keys.get(key)
        if found is not None:
            self._drop(found)
        return key

    def _drop(self, found: ListenKey) -> None:
        self._keys.delete(found.key)
        if self._by_api_key.get(found.api_key) == found.key:
            self._by_api_key.delete(found.api_key)

    def _forget_expired(self, now_ms: int) -> None:
        for found in [k for k in self._keys.values() if k.expires_ms <= now_ms]:
            self._drop(found)

    def __len__(self) -> int:
        return len(self._keys)

    def tables(self) -> tuple:
        return self._keys, self._by_api_key

    def check_invariants(self) -> None:
        """Each API key names its one listen key, and every listen key is named by its API key."""
        assert len(self._keys) <= self.keys_max
        assert {k: v.key for k, v in ((v.api_key, v) for v in self._keys.values())} == dict(self._by_api_key.items())
