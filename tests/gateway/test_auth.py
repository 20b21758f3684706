"""Signed requests (``gateway/auth.py``) with keys from the store (``gateway/keys.py``):
a valid HMAC or Ed25519 signature passes; a wrong secret, a tampered body, an expired or
future timestamp, a window too wide, a missing permission, an address off the allowlist
and a revoked key are each refused with Binance's code."""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, strategies as st

from gateway.auth import AuthError, Permission, hmac_query, payload, verify
from gateway.keys import KeyStore

NOW = 1_765_000_000_000


def hmac_signed(secret: str, params: dict) -> str:
    return hmac_query(secret, params)


def check(store, key, query, body="", address="127.0.0.1", needs=Permission.TRADE, now=NOW):
    params = dict(p.split("=", 1) for p in (query + "&" + body).split("&") if "=" in p)
    return verify(store.get(key), needs, params, query, body, address, now)


@pytest.fixture
def store():
    return KeyStore()


def test_a_request_signed_with_the_hmac_secret_passes_and_the_secret_is_stored_encrypted(store):
    key, secret = store.create(7, ["read", "trade"])
    query = hmac_signed(secret, {"symbol": "BTCUSDT", "side": "BUY", "timestamp": NOW})
    assert check(store, key, query).account_id == 7
    assert secret not in str(store.records()) and store.get(key).secret == secret.encode()


def test_the_signature_covers_the_query_then_the_body_as_sent(store):
    key, secret = store.create(7, ["trade"])
    query, body = "symbol=BTCUSDT&timestamp=%d" % NOW, "side=BUY&quantity=1"
    signature = hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    assert check(store, key, query, body + "&signature=" + signature).key == key
    assert payload(query + "&signature=x", body) == (query + body).encode()
    with pytest.raises(AuthError) as refused:                                   # the body tampered with
        check(store, key, query, "side=BUY&quantity=9&signature=" + signature)
    assert refused.value.code == -1022


def test_an_ed25519_key_passes_with_its_signature_and_the_store_keeps_only_the_public_key(store):
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key, secret = store.create(8, ["read"], public_key=public)
    query = urlencode({"timestamp": NOW, "recvWindow": 10_000})
    signature = quote(base64.b64encode(private.sign(query.encode())).decode(), safe="")
    assert secret is None and check(store, key, query + "&signature=" + signature, needs=Permission.READ).account_id == 8
    other = Ed25519PrivateKey.generate().sign(query.encode())
    with pytest.raises(AuthError) as refused:
        check(store, key, query + "&signature=" + quote(base64.b64encode(other).decode()), needs=Permission.READ)
    assert refused.value.code == -1022
    with pytest.raises(ValueError):
        store.create(8, ["read"], public_key=b"short")


@pytest.mark.parametrize("case, code", [
    ("wrong secret", -1022), ("expired", -1021), ("future", -1021), ("window too wide", -1131),
    ("no timestamp", -1102), ("no signature", -1102), ("missing permission", -2015), ("address not allowed", -2015),
    ("revoked", -2015), ("unknown key", -2015)])
def test_each_bad_request_is_refused_with_its_binance_code(store, case, code):
    key, secret = store.create(9, ["read", "trade"], ips=["10.0.0.1"])
    params = {"symbol": "BTCUSDT", "timestamp": NOW}
    address, needs = "10.0.0.1", Permission.TRADE
    if case == "wrong secret":
        secret = "0" * 64
    elif case == "expired":
        params["timestamp"] = NOW - 5_001
    elif case == "future":
        params["timestamp"] = NOW + 1_001
    elif case == "window too wide":
        params["recvWindow"] = 60_001
    elif case == "no timestamp":
        del params["timestamp"]
    elif case == "missing permission":
        needs = Permission.WITHDRAW
    elif case == "address not allowed":
        address = "10.0.0.2"
    elif case == "revoked":
        assert store.revoke(key)
    elif case == "unknown key":
        key = "nope"
    query = hmac_signed(secret, params)
    if case == "no signature":
        query = query.split("&signature=")[0]
    with pytest.raises(AuthError) as refused:
        check(store, key, query, address=address, needs=needs)
    assert refused.value.code == code


@given(st.integers(-60_000, 60_000), st.integers(1, 60_000))
def test_a_request_passes_exactly_inside_its_window(offset_ms, window_ms):
    store = KeyStore(b"0" * 43 + b"=")
    key, secret = store.create(1, ["trade"])
    query = hmac_signed(secret, {"timestamp": NOW + offset_ms, "recvWindow": window_ms})
    inside = -window_ms <= offset_ms <= 1_000
    try:
        check(store, key, query)
        assert inside
    except AuthError as refused:
        assert not inside and refused.code == -1021


def test_the_store_comes_back_from_its_records_with_the_master_key(store):
    key, secret = store.create(3, ["read"], ips=["1.2.3.4"])
    again = KeyStore.restore(store.master_key, store.records())
    assert again.get(key) == store.get(key) and again.get(key).ips == frozenset({"1.2.3.4"})


def test_the_durable_store_keeps_keys_and_revocations_across_a_reopen(tmp_path):
    store = KeyStore.open(tmp_path)
    key, secret = store.create(5, ["read", "trade"], ips=["10.0.0.1"])
    gone, _ = store.create(6, ["read"])
    assert store.revoke(gone) and not store.revoke("nope")
    store.close()
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert secret.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "keys").iterdir())
    again = KeyStore.open(tmp_path)
    assert again.get(key).secret == secret.encode() and again.get(key).ips == frozenset({"10.0.0.1"})
    assert again.get(gone).revoked and again.known(gone) and not again.known("nope")
    again.close()
