"""What the exchange publishes about the rules it runs under, and their hashes (issue 18's
transparency page): texts anyone can read and hash again.

- ``canonical_json``: the one canonical form (sorted keys, no spaces, ASCII).
- ``public_config``: the config's public trading rules as plain data: assets, markets,
  fee tiers, the default fee tier and self-trade mode, margin, lending, and the raw
  ``[perp]`` and ``[insurance]`` tables. No secret (a ``[perp_fund] pseudonym_key``), no
  account id, no operational limit.
- ``config_text_and_hash``: that as canonical JSON, and its SHA-256.

The perpetual rules' own hash (``exchange.perp.rules.rules_hash``) and the risk
rulebook's digest (``exchange.risk.rulebook``) are published beside it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from enum import Enum

from exchange.config import ExchangeConfig

PUBLIC_SECTIONS = ("perp", "insurance")       # raw config tables published beside the parsed ones


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def public_config(config: ExchangeConfig) -> dict:
    return {"assets": _plain(config.assets), "markets": _plain(config.markets),
            "fee_tiers": _plain(config.fee_tiers), "default_fee_tier": config.default_fee_tier,
            "default_stp": _plain(config.default_stp), "margin": _plain(config.margin),
            "lending": _plain(config.lending),
            **{name: _plain(config.sections.get(name, {})) for name in PUBLIC_SECTIONS}}


def config_text_and_hash(config: ExchangeConfig) -> tuple[str, str]:
    text = canonical_json(public_config(config))
    return text, sha256_hex(text)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.name.lower()
    return value
