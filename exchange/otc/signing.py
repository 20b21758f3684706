"""The desk's signature on a firm quote: Ed25519 (RFC 8032, ``cryptography``'s
implementation), so the client holds a receipt anyone can check with the desk's
public key, and a quote altered in any field fails.

What is signed is the quote's canonical bytes (``canonical``: its fields as compact
JSON, in a fixed order, ASCII). Ed25519 signatures are deterministic: the same quote
signed twice gives the same signature, so a journal replay signs alike. The key is
``[otc] signing_seed`` (``exchange.otc.rules``); ``public_key`` is what the desk
publishes.
"""
from __future__ import annotations

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class Signer:
    def __init__(self, seed: bytes):
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, fields: dict) -> str:
        return self._key.sign(canonical(fields)).hex()


def verify(public_key_hex: str, fields: dict, signature_hex: str) -> bool:
    """Is ``signature_hex`` the desk's signature on exactly these ``fields``?"""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(bytes.fromhex(signature_hex),
                                                                                 canonical(fields))
        return True
    except (InvalidSignature, ValueError):
        return False
