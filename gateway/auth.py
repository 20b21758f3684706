"""Signed requests, as Binance's Spot API v3 signs them (issue 18).

A SIGNED request carries its API key in the ``X-MBX-APIKEY`` header and, among its
parameters, ``timestamp`` (ms), an optional ``recvWindow`` (ms, default 5,000, at most
60,000) and ``signature``. The signed payload is the query string followed by the body,
exactly as sent, without the ``signature`` parameter (Binance's ``totalParams``):

- an **HMAC-SHA256** key signs it with its secret: ``signature`` is the hex digest;
- an **Ed25519** key signs it with its private key: ``signature`` is the base64 of the
  64-byte signature (URL-encoded in the request). The exchange keeps only the public key.

``verify`` checks, in this order, and answers the first failure as an ``AuthError`` with
Binance's code (never a bare exception): the key exists and is not revoked (-2015), the
client's address is on the key's allowlist (-2015), the key has the permission the
endpoint needs (-2015), ``timestamp`` and ``recvWindow`` are well formed (-1102 / -1131),
the request is inside its window: not older than ``recvWindow``, not more than a second
ahead of the server's clock (-1021), and the signature is the key's over the payload
(-1022). Pure: the clock and the key store come from the caller.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote_to_bytes, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

RECV_WINDOW_MS_DEFAULT = 5_000
RECV_WINDOW_MS_MAX = 60_000
FUTURE_MS_MAX = 1_000                      # a request may be this far ahead of the server's clock


class Permission(str, Enum):
    """What a key may do (Binance's security types): read (USER_DATA), trade (TRADE), withdraw."""
    READ = "read"
    TRADE = "trade"
    WITHDRAW = "withdraw"


class KeyKind(str, Enum):
    HMAC = "hmac"
    ED25519 = "ed25519"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as the gateway verifies it: ``secret`` is the HMAC secret (decrypted by the
    key store for the check) or the Ed25519 public key's 32 raw bytes."""
    key: str
    account_id: int
    kind: KeyKind
    secret: bytes
    permissions: frozenset[Permission]
    ips: frozenset[str] = frozenset()           # empty: any address (the rulebook advises a list, 5.4.1.2)
    revoked: bool = False


class AuthError(Exception):
    """A refused request: Binance's ``code`` and ``msg``, and the HTTP status to answer with."""

    def __init__(self, code: int, msg: str, status: int = 401):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def payload(query: str, body: str) -> bytes:
    """What a request's signature covers: the query string then the body, as sent, each
    without its ``signature`` parameter."""
    return (_without_signature(query) + _without_signature(body)).encode()


def _without_signature(params: str) -> str:
    return "&".join(p for p in params.split("&") if not p.startswith("signature=")) if "signature=" in params \
        else params


def signature_of(params: str) -> str | None:
    """The ``signature`` parameter's raw value in ``params``, if any."""
    for part in params.split("&"):
        if part.startswith("signature="):
            return part[len("signature="):]
    return None


def hmac_query(secret: str, params: dict) -> str:
    """What a client sends: ``params`` URL-encoded and signed with an HMAC key's secret
    (``...&signature=<hex>``), as Binance's client libraries do."""
    query = urlencode(params)
    return query + "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def verify(key: ApiKey | None, needs: Permission | None, params: dict[str, str], query: str, body: str,
           address: str, now_ms: int) -> ApiKey:
    """Check a SIGNED request (module docstring); return its key, or raise ``AuthError``."""
    if key is None or key.revoked:
        raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
    if key.ips and address not in key.ips:
        raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
    if needs is not None and needs not in key.permissions:
        raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
    timestamp = _integer(params, "timestamp", None)
    window = _integer(params, "recvWindow", RECV_WINDOW_MS_DEFAULT)
    if not 0 < window <= RECV_WINDOW_MS_MAX:
        raise AuthError(-1131, f"recvWindow must be less than or equal to {RECV_WINDOW_MS_MAX}.", 400)
    if timestamp < now_ms - window or timestamp > now_ms + FUTURE_MS_MAX:
        raise AuthError(-1021, "Timestamp for this request is outside of the recvWindow.", 400)
    signature = signature_of(body) or signature_of(query)
    if signature is None:
        raise AuthError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.", 400)
    if not _signed(key, payload(query, body), signature):
        raise AuthError(-1022, "Signature for this request is not valid.")
    return key


def _integer(params: dict[str, str], name: str, default: int | None) -> int:
    value = params.get(name)
    if value is None and default is not None:
        return default
    if value is None or not value.isdigit() or len(value) > 18:
        raise AuthError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.", 400)
    return int(value)


def _signed(key: ApiKey, message: bytes, signature: str) -> bool:
    if key.kind is KeyKind.HMAC:
        expected = hmac.new(key.secret, message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())
    try:
        raw = base64.b64decode(unquote_to_bytes(signature), validate=True)
        Ed25519PublicKey.from_public_bytes(key.secret).verify(raw, message)
        return True
    except (InvalidSignature, ValueError, binascii.Error):
        return False
