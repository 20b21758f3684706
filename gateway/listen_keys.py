"""Listen keys of the private user-data stream (issue 18), kept as Binance Spot keeps them.

A listen key names one account's stream and belongs to the API key that created it.
``create`` makes one or, when the API key already has a live one, returns that one with
its validity extended (Binance's answer to a second POST); ``keep_alive`` extends a live
key to ``validity_ms`` from now; ``close`` ends it. A key not kept alive for
``validity_ms`` (60 minutes) has expired: from then on it is unknown, as a closed one
is. ``close_api_key`` ends an API key's listen key (a revoked key's stream stops).

Pure: the clock (ms) comes with every call, the token maker from the constructor.
Bounded: one live listen key per API key, at most ``keys_max`` in all; past it, the
expired ones are forgotten, and if none has expired ``create`` raises ``ListenKeysFull``.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

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
                 new_token=lambda: secrets.token_hex(30)):
        self.validity_ms, self.keys_max, self._new_token = validity_ms, keys_max, new_token
        self._keys: dict[str, ListenKey] = {}
        self._by_api_key: dict[str, str] = {}

    def create(self, api_key: str, account_id: int, now_ms: int) -> str:
        """The API key's listen key, live for ``validity_ms`` from now: its live one, or a new one.
        Raises ``ListenKeysFull``."""
        live = self.live(self._by_api_key.get(api_key, ""), now_ms)
        if live is not None and live.api_key == api_key:
            live.expires_ms = now_ms + self.validity_ms
            return live.key
        if len(self._keys) >= self.keys_max:
            self._forget_expired(now_ms)
            if len(self._keys) >= self.keys_max:
                raise ListenKeysFull(f"{self.keys_max} listen keys are live")
        key = self._new_token()
        assert key not in self._keys, "a listen key made twice"
        self._keys[key] = ListenKey(key, api_key, account_id, now_ms + self.validity_ms)
        self._by_api_key[api_key] = key
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
        return True

    def close(self, key: str, api_key: str) -> bool:
        """End ``api_key``'s listen key ``key``; False if there is none such."""
        found = self._keys.get(key)
        if found is None or found.api_key != api_key:
            return False
        self._drop(found)
        return True

    def close_api_key(self, api_key: str) -> str | None:
        """End the API key's listen key, if it has one; return it."""
        key = self._by_api_key.get(api_key)
        if key is not None:
            self._drop(self._keys[key])
        return key

    def _drop(self, found: ListenKey) -> None:
        del self._keys[found.key]
        if self._by_api_key.get(found.api_key) == found.key:
            del self._by_api_key[found.api_key]

    def _forget_expired(self, now_ms: int) -> None:
        for found in [k for k in self._keys.values() if k.expires_ms <= now_ms]:
            self._drop(found)

    def __len__(self) -> int:
        return len(self._keys)

    def check_invariants(self) -> None:
        """Each API key names its one listen key, and every listen key is named by its API key."""
        assert len(self._keys) <= self.keys_max
        assert {k: v.key for k, v in ((v.api_key, v) for v in self._keys.values())} == self._by_api_key
