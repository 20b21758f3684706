"""The OTC desk's rules, from the config's ``[otc]`` tables (seed 000's figures where it
gives them; ``config/default.toml`` has the demo desk):

- ``[otc]``: ``quote_ttl_s`` (a firm quote's life, 10), ``payment_window_s`` (an accepted
  trade waits this long for its payment, 1800), ``volatility_window_s`` (the index
  history the volatility component reads, 300), ``signing_seed`` (the desk's Ed25519
  key: 64 hex digits; a demo seed when absent, ``DEMO_SEED``);
- ``[otc.liquidity_classes]``: class name -> surcharge in bps (``major = 5``);
- ``[otc.payment_methods.<name>]``: ``kind`` "crypto" or "fiat", a fiat method's
  ``currency``, and its ``surcharge_bps`` (cross-border fiat is wider: seed 000);
- ``[otc.clients.<ACCOUNT>]``: the desk's verified clients (KYC), ``name`` as on their
  bank account: a fiat-paid trade is quoted only to them, and a bank payment is taken
  only from that name (seed 000: 核查汇款人姓名是否与OTC账户实名信息一致);
- ``[otc]`` also: ``desk_account`` (the desk's own account: its inventory, what it
  delivers from and is paid into), ``retain_s`` (a finished RFQ stays in memory this
  long, 3600; the blotter and the audit trail keep it after), ``hedge_slippage_bps``
  (how far from the index a hedge order may trade, 50) and ``hedge_interval_s`` (at
  most one hedge per asset this often, 10);
- ``[otc.delivery_approval]``: asset -> amount: a delivery of more waits for an
  operator's approval (the cold wallet's path, as for large withdrawals), at most
  ``[otc] approval_window_s`` (3600: then the trade is cancelled and what was paid
  and locked goes back); none: every delivery goes at once (the hot wallet's);
- ``[otc.credit]``: T+1 for approved institutions: ``asset`` (what limits are counted
  in: credit pairs are quoted in it), ``term_s`` (86400) and ``[otc.credit.limits]``
  (account -> limit);
- ``[otc.inventory.<ASSET>]``: ``min`` and ``max``: past them the desk hedges on the
  spot book of the pair whose base the asset is, from its own account;
- ``[otc.pairs.<MARKET>]``: a spot market of the venue the desk quotes (its grid is
  the market's), ``min_notional`` (quote units; below it the client is pointed to the
  order book), ``max_notional`` (above it refused), ``liquidity`` (a class),
  ``size_tiers`` (``[[from notional, bps], ...]``: larger trades pay less) and
  ``volatility_factor`` (a ratio: the component is the index's high-low range over
  the window, in bps, times it).

Amounts become minor units, ratios ppm, as everywhere (``exchange.core.money``).
Raises ``ConfigError`` naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass

from exchange.config import ConfigError, ExchangeConfig, MarketSpec, Reader
from exchange.core.money import PPM, MoneyFormatError, parse_decimal

NS = 10**9
DEMO_SEED = "6f74632d6465736b2d64656d6f2d7369676e696e672d6b65792d2d2d2d2d2d2d"   # "otc-desk-demo-signing-key-------"
KINDS = ("crypto", "fiat")


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    name: str
    kind: str                   # "crypto" or "fiat"
    currency: str               # a fiat method's currency ("" for crypto)
    surcharge_bps: int


@dataclass(frozen=True, slots=True)
class OtcPair:
    spec: MarketSpec
    min_notional: int           # quote minor units
    max_notional: int
    liquidity: str
    liquidity_bps: int
    size_tiers: tuple           # ((from notional, bps), ...), ascending
    volatility_factor_ppm: int


@dataclass(frozen=True, slots=True)
class OtcRules:
    pairs: dict                 # market name -> OtcPair
    methods: dict               # name -> PaymentMethod
    quote_ttl_ns: int
    payment_window_ns: int
    volatility_window_ns: int
    signing_seed: bytes         # 32 bytes
    clients: dict = None        # account id -> verified name (``[otc.clients]``)
    desk_account: int = 0
    retain_ns: int = 3_600 * NS
    approval_above: dict = None  # asset -> a delivery above it waits for an operator
    credit_asset: str = ""
    credit_term_ns: int = 86_400 * NS
    credit_limits: dict = None  # account id -> limit (minor units of ``credit_asset``)
    inventory_limits: dict = None   # asset -> (min, max), minor units
    hedge_slippage_bps: int = 50
    hedge_interval_ns: int = 10 * NS
    approval_window_ns: int = 3_600 * NS


def otc_rules(config: ExchangeConfig, file: str = "<config>") -> OtcRules | None:
    """The desk's rules (None: the config has no ``[otc]``)."""
    raw = config.sections.get("otc")
    if raw is None:
        return None
    reader = Reader(file)
    if not isinstance(raw, dict):
        raise ConfigError(file, "otc", "must be a table")
    classes = raw.get("liquidity_classes", {})
    if not isinstance(classes, dict) or not all(isinstance(v, int) and 0 <= v <= 10_000 for v in classes.values()):
        raise ConfigError(file, "otc.liquidity_classes", "class name -> bps (0..10000)")
    methods = {}
    for name, section in reader.table(raw, "payment_methods").items():
        key = f"otc.payment_methods.{name}"
        kind = reader.string(section, f"{key}.kind")
        if kind not in KINDS:
            raise ConfigError(file, f"{key}.kind", "crypto or fiat")
        currency = reader.string(section, f"{key}.currency") if kind == "fiat" else ""
        methods[name] = PaymentMethod(name, kind, currency,
                                      reader.integer(section, f"{key}.surcharge_bps", 0, 10_000, default=0))
    if not methods:
        raise ConfigError(file, "otc.payment_methods", "at least one payment method")
    pairs = {}
    for name, section in reader.table(raw, "pairs").items():
        key = f"otc.pairs.{name}"
        spec = config.markets.get(name)
        if spec is None:
            raise ConfigError(file, key, "not a spot market of the venue")
        low = reader.decimal(section, f"{key}.min_notional", spec.quote.scale)
        high = reader.decimal(section, f"{key}.max_notional", spec.quote.scale)
        if not 0 < low <= high:
            raise ConfigError(file, f"{key}.min_notional", "0 < min_notional <= max_notional")
        liquidity = reader.string(section, f"{key}.liquidity")
        if liquidity not in classes:
            raise ConfigError(file, f"{key}.liquidity", f"not a class of otc.liquidity_classes: {liquidity!r}")
        pairs[name] = OtcPair(spec, low, high, liquidity, classes[liquidity], _tiers(file, key, section, spec),
                              _ratio(file, f"{key}.volatility_factor", section.get("volatility_factor", "1")))
    clients = {}
    for account, section in reader.table(raw, "clients").items():
        if not account.isdigit():
            raise ConfigError(file, f"otc.clients.{account}", "an account id")
        clients[int(account)] = reader.string(section, f"otc.clients.{account}.name")
    seed_hex = raw.get("signing_seed", DEMO_SEED)
    try:
        seed = bytes.fromhex(seed_hex) if isinstance(seed_hex, str) else b""
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(file, "otc.signing_seed", "64 hex digits (an Ed25519 key seed)")
    approval = {asset: _amount(config, file, f"otc.delivery_approval.{asset}", asset, text)
                for asset, text in _flat(file, raw, "delivery_approval").items()}
    credit = raw.get("credit", {})
    if not isinstance(credit, dict):
        raise ConfigError(file, "otc.credit", "must be a table")
    credit_asset = credit.get("asset", "") if credit else ""
    limits = {}
    for account, text in _flat(file, credit, "limits").items():
        if not account.isdigit():
            raise ConfigError(file, f"otc.credit.limits.{account}", "an account id")
        limits[int(account)] = _amount(config, file, f"otc.credit.limits.{account}", credit_asset, text)
    inventory = {}
    for asset, section in reader.table(raw, "inventory").items():
        low = _amount(config, file, f"otc.inventory.{asset}.min", asset, section.get("min", "0"))
        high = _amount(config, file, f"otc.inventory.{asset}.max", asset, section.get("max"))
        if not low <= high or not any(p.spec.base.name == asset for p in pairs.values()):
            raise ConfigError(file, f"otc.inventory.{asset}", "min <= max, for the base of a pair the desk quotes")
        inventory[asset] = (low, high)
    return OtcRules(pairs, methods,
                    reader.integer(raw, "otc.quote_ttl_s", 1, 3_600, default=10) * NS,
                    reader.integer(raw, "otc.payment_window_s", 1, 7 * 86_400, default=1_800) * NS,
                    reader.integer(raw, "otc.volatility_window_s", 1, 86_400, default=300) * NS, seed, clients,
                    reader.integer(raw, "otc.desk_account", 0, 2**63 - 1, default=0),
                    reader.integer(raw, "otc.retain_s", 1, 30 * 86_400, default=3_600) * NS, approval,
                    credit_asset, reader.integer(credit, "otc.credit.term_s", 1, 30 * 86_400, default=86_400) * NS,
                    limits, inventory, reader.integer(raw, "otc.hedge_slippage_bps", 0, 10_000, default=50),
                    reader.integer(raw, "otc.hedge_interval_s", 1, 86_400, default=10) * NS,
                    reader.integer(raw, "otc.approval_window_s", 1, 7 * 86_400, default=3_600) * NS)


def _flat(file: str, raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(file, f"otc.{key}", "must be a table")
    return value


def _amount(config: ExchangeConfig, file: str, key: str, asset: str, text) -> int:
    """A decimal string of ``asset`` as minor units (>= 0)."""
    spec = config.assets.get(asset)
    if spec is None:
        raise ConfigError(file, key, f"not an asset of the venue: {asset!r}")
    if not isinstance(text, str):
        raise ConfigError(file, key, "a decimal string")
    try:
        value = parse_decimal(text, spec.scale)
    except MoneyFormatError as exc:
        raise ConfigError(file, key, str(exc)) from None
    if value < 0:
        raise ConfigError(file, key, "not negative")
    return value


def _tiers(file: str, key: str, section: dict, spec: MarketSpec) -> tuple:
    raw = section.get("size_tiers")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(file, f"{key}.size_tiers", "[[from notional, bps], ...]")
    tiers = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], int)
                and 0 <= item[1] <= 10_000):
            raise ConfigError(file, f"{key}.size_tiers", "each tier is [\"from notional\", bps]")
        try:
            tiers.append((parse_decimal(item[0], spec.quote.scale), item[1]))
        except MoneyFormatError as exc:
            raise ConfigError(file, f"{key}.size_tiers", str(exc)) from None
    if tiers[0][0] != 0 or any(a[0] >= b[0] for a, b in zip(tiers, tiers[1:])):
        raise ConfigError(file, f"{key}.size_tiers", "the first from 0, then ascending")
    return tuple(tiers)


def _ratio(file: str, key: str, text) -> int:
    if not isinstance(text, str):
        raise ConfigError(file, key, "a decimal string")
    try:
        value = parse_decimal(text, 6)
    except MoneyFormatError as exc:
        raise ConfigError(file, key, str(exc)) from None
    if not 0 <= value <= 100 * PPM:
        raise ConfigError(file, key, "in [0, 100]")
    return value
