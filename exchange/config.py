"""Exchange configuration: assets, markets, fee tiers and engine limits.

Loaded from TOML (``config/default.toml`` is the built-in demo). Decimal
values are written as strings in the file and converted to integers here, once.
A bad file fails at load with ``ConfigError(file, key, reason)``.

Unit conventions fixed here and used everywhere:
- an asset amount is an int in the asset's smallest unit (``10**-scale``);
- a market price is an int number of ticks; ``tick_minor`` is the tick in quote
  minor units per one whole base unit;
- a quantity is an int number of lots; ``lot_minor`` is the lot in base minor
  units;
- ``quote_per_tick_lot`` = quote minor units moved by 1 lot at 1 tick. It must
  be a whole number: the config is refused otherwise, so notional
  ``price_ticks * qty_lots * quote_per_tick_lot`` is always exact (no dust).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.margin.lending import RateCurve
from exchange.margin.rules import (DEFAULT_RESERVE_ACCOUNT, DISABLED, MarginRules, RulesError, parse_margin_rules,
                                   parse_rate_curves, parse_reserve_account)
from exchange.core.limits import Limits, parse_limits
from exchange.core.routing import ShardLayout
from exchange.core.money import MoneyFormatError, parse_decimal, INT64_MAX
from exchange.matching.orders import StpMode
from exchange.risk.rulebook import Rulebook, RulebookError, load_rulebook, parse_rulebook

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "default.toml"
MAX_FEE_PPM = 100_000  # 10%: anything above is a typo, not a fee


class ConfigError(ValueError):
    """A configuration problem, naming the file, the key and the reason."""

    def __init__(self, file: str, key: str, reason: str):
        super().__init__(f"{file}: {key}: {reason}")
        self.file, self.key, self.reason = file, key, reason


@dataclass(frozen=True, slots=True)
class AssetSpec:
    name: str
    index: int
    scale: int


@dataclass(frozen=True, slots=True)
class FeeTier:
    name: str
    index: int
    maker_ppm: int
    taker_ppm: int


@dataclass(frozen=True, slots=True)
class MarketSpec:
    name: str
    index: int
    base: AssetSpec
    quote: AssetSpec
    tick_minor: int            # quote minor units per whole base, per tick
    lot_minor: int             # base minor units per lot
    quote_per_tick_lot: int    # quote minor units for 1 lot at a price of 1 tick
    min_lots: int
    max_lots: int
    max_slippage_bps: int      # default protection for market orders

    def notional(self, price_ticks: int, qty_lots: int) -> int:
        """Return the quote amount (minor units) of ``qty_lots`` at ``price_ticks``."""
        return price_ticks * qty_lots * self.quote_per_tick_lot


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    assets: dict[str, AssetSpec]
    markets: dict[str, MarketSpec]
    fee_tiers: dict[str, FeeTier]
    default_fee_tier: str
    default_stp: StpMode
    shards: int
    dedup_window: int
    sections: dict[str, Any] = field(default_factory=dict)  # other sections, for later layers
    margin: MarginRules = DISABLED                            # [margin]: lines and borrow limits
    lending: dict[str, RateCurve] = field(default_factory=dict)   # [lending.<ASSET>]: lendable assets
    reserve_account: int = DEFAULT_RESERVE_ACCOUNT                # [lending] reserve_account: gets the reserve
    limits: Limits = Limits()                                     # [limits]: every queue's maximum
    risk: Rulebook | None = None                                  # [risk] rulebook: the risk rulebook in force
    earlier_shards: tuple[tuple[int, int], ...] = ()              # [exchange] earlier_shards: (below, shards)

    @property
    def routing(self) -> ShardLayout:
        """Which shard owns an account: ``shards`` now, and the earlier counts the accounts
        opened before shards were added still route over (``exchange.core.routing``)."""
        return ShardLayout(self.shards, self.earlier_shards)

    @property
    def index_quote_asset(self) -> str:
        """The asset index prices are quoted in (``[index] quote_asset``, default USDT)."""
        return self.sections.get("index", {}).get("quote_asset", "USDT")

    @property
    def asset_list(self) -> list[AssetSpec]:
        return sorted(self.assets.values(), key=lambda a: a.index)

    @property
    def market_list(self) -> list[MarketSpec]:
        return sorted(self.markets.values(), key=lambda m: m.index)

    @property
    def fee_tier_list(self) -> list[FeeTier]:
        return sorted(self.fee_tiers.values(), key=lambda t: t.index)


def load_config(path: str | Path | None = None) -> ExchangeConfig:
    """Load and validate a TOML config file (the built-in default when None).

    A file whose first key is ``extends = "default"`` (the built-in config) or
    ``extends = "<path>"`` (relative to the file) is laid over that base: its tables
    are merged into the base's key by key, its values replace the base's. So a
    deployment's file holds only what differs (``ops/deploy/cluster.toml``)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    raw = _read(path)
    return parse_config(raw, str(path), path.parent)


def _read(path: Path, depth: int = 0) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), "-", str(exc)) from exc
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str) or depth >= 4:
        raise ConfigError(str(path), "extends", '"default" or a config file\'s path, at most 4 deep')
    return _merged(_read(DEFAULT_CONFIG_PATH if base == "default" else path.parent / base, depth + 1), raw)


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_config(raw: dict[str, Any], file: str = "<config>", folder: Path | None = None) -> ExchangeConfig:
    """Validate a parsed TOML document into an ExchangeConfig. ``[risk] rulebook`` names the
    risk rulebook's file (relative to ``folder``, the config file's folder, or failing that
    to the built-in ``config/``: a copied config keeps the built-in rulebook); ``[risk.rules]``
    and ``[risk.operators]`` inline give it in place. Without a ``[risk]`` table no rulebook
    runs (the engine's own tests and benchmarks, and "rules off")."""
    reader = Reader(file)
    assets = {}
    for i, (name, section) in enumerate(sorted(reader.table(raw, "assets").items())):
        scale = reader.integer(section, f"assets.{name}.scale", 0, 18)
        assets[name] = AssetSpec(name, i, scale)
    if not assets:
        raise ConfigError(file, "assets", "at least one asset is required")

    tiers = {}
    for i, (name, section) in enumerate(sorted(reader.table(raw, "fee_tiers").items())):
        maker = reader.integer(section, f"fee_tiers.{name}.maker_ppm", -MAX_FEE_PPM, MAX_FEE_PPM)
        taker = reader.integer(section, f"fee_tiers.{name}.taker_ppm", 0, MAX_FEE_PPM)
        if maker > taker:
            raise ConfigError(file, f"fee_tiers.{name}.maker_ppm", "maker fee above taker fee")
        tiers[name] = FeeTier(name, i, maker, taker)
    if not tiers:
        raise ConfigError(file, "fee_tiers", "at least one fee tier is required")
    max_rebate = max(-t.maker_ppm for t in tiers.values())
    min_taker = min(t.taker_ppm for t in tiers.values())
    if max_rebate > min_taker:
        raise ConfigError(file, "fee_tiers", "a maker rebate exceeds the lowest taker fee: the fee account could go negative")

    markets = {}
    for i, (name, section) in enumerate(sorted(reader.table(raw, "markets").items())):
        markets[name] = parse_market(reader, name, i, section, assets)
    if not markets:
        raise ConfigError(file, "markets", "at least one market is required")

    engine = raw.get("exchange", {})
    if not isinstance(engine, dict):
        raise ConfigError(file, "exchange", "must be a table")
    default_tier = engine.get("default_fee_tier", next(iter(tiers)))
    if not isinstance(default_tier, str) or default_tier not in tiers:
        raise ConfigError(file, "exchange.default_fee_tier", f"unknown fee tier {default_tier!r}")
    stp_name = engine.get("default_stp", "expire_taker")
    try:
        stp = StpMode[stp_name.upper()]
    except (KeyError, AttributeError):
        raise ConfigError(file, "exchange.default_stp", f"unknown mode {stp_name!r}") from None
    shards = reader.integer(engine, "exchange.shards", 1, 1024, default=2)
    earlier = _earlier_shards(reader, engine.get("earlier_shards", []), shards)
    window = reader.integer(engine, "exchange.dedup_window", 1, 10**8, default=1_000_000)
    try:
        margin = parse_margin_rules(raw.get("margin", {}), markets)
        lending = parse_rate_curves(raw.get("lending", {}), assets)
        reserve_account = parse_reserve_account(raw.get("lending", {}))
    except RulesError as exc:
        raise ConfigError(file, str(exc).split(":")[0], str(exc)) from None
    try:
        limits = parse_limits(raw.get("limits", {}))
    except ValueError as exc:
        raise ConfigError(file, str(exc).split(":")[0], str(exc)) from None
    risk = _risk(raw.get("risk"), assets, file, folder)
    known = {"assets", "fee_tiers", "markets", "exchange", "margin", "lending", "limits", "risk"}
    return ExchangeConfig(assets, markets, tiers, default_tier, stp, shards, window,
                          {k: v for k, v in raw.items() if k not in known}, margin, lending, reserve_account, limits,
                          risk, earlier)


def _earlier_shards(reader: "Reader", entries, shards: int) -> tuple[tuple[int, int], ...]:
    """``[exchange] earlier_shards = [{ shards = 2, below_account = 1000000 }, ...]``: the shard
    counts before shards were added, each with the account id below which it still routes;
    counts and bounds rising, every count below ``shards`` (``exchange.core.routing``)."""
    key = "exchange.earlier_shards"
    if not isinstance(entries, list) or not all(isinstance(e, dict) and set(e) == {"shards", "below_account"}
                                                for e in entries):
        raise ConfigError(reader.file, key, "must be a list of { shards = N, below_account = ID }")
    out = tuple((reader.integer(e, f"{key}.below_account", 1, 2**62), reader.integer(e, f"{key}.shards", 1, 1024))
                for e in entries)
    counts, bounds = [n for _, n in out] + [shards], [b for b, _ in out]
    if any(a >= b for a, b in zip(counts, counts[1:])) or any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise ConfigError(reader.file, key, f"shard counts and account bounds must rise, each count below shards = {shards}")
    return out


def _risk(section, assets: dict, file: str, folder: Path | None) -> Rulebook | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(file, "risk", "must be a table")
    quote = assets.get("USDT")
    scale = quote.scale if quote is not None else 6
    try:
        if "rulebook" in section:
            path = Path(section["rulebook"])
            if not path.is_absolute():      # beside the config file, else the built-in config folder's
                beside = (folder or DEFAULT_CONFIG_PATH.parent) / path
                path = beside if beside.exists() else DEFAULT_CONFIG_PATH.parent / path
            return load_rulebook(path, scale)
        return parse_rulebook(section, scale, f"{file} [risk]")
    except RulebookError as exc:
        raise ConfigError(file, "risk", str(exc)) from None


def parse_market(reader: "Reader", name: str, index: int, section: dict, assets: dict,
                 table: str = "markets") -> MarketSpec:
    """A ``[<table>.<name>]`` section's market grid (base, quote, tick, lot, sizes, slippage); the
    spot markets' and the perpetuals' (``exchange.perp.rules``)."""
    key = f"{table}.{name}"
    base_name, quote_name = reader.string(section, f"{key}.base"), reader.string(section, f"{key}.quote")
    for side, asset in (("base", base_name), ("quote", quote_name)):
        if asset not in assets:
            raise ConfigError(reader.file, f"{key}.{side}", f"unknown asset {asset!r}")
    if base_name == quote_name:
        raise ConfigError(reader.file, key, "base and quote must differ")
    base, quote = assets[base_name], assets[quote_name]
    tick_minor = reader.decimal(section, f"{key}.tick_size", quote.scale)
    lot_minor = reader.decimal(section, f"{key}.lot_size", base.scale)
    if tick_minor <= 0 or lot_minor <= 0:
        raise ConfigError(reader.file, key, "tick_size and lot_size must be positive")
    per_tick_lot, rest = divmod(tick_minor * lot_minor, 10**base.scale)
    if rest or per_tick_lot == 0:
        raise ConfigError(reader.file, f"{key}.lot_size",
                          "tick_size x lot_size must be a whole number of quote minor units")
    min_minor = reader.decimal(section, f"{key}.min_qty", base.scale)
    max_minor = reader.decimal(section, f"{key}.max_qty", base.scale)
    if min_minor % lot_minor or max_minor % lot_minor or not 0 < min_minor <= max_minor:
        raise ConfigError(reader.file, f"{key}.min_qty", "min_qty/max_qty must be positive multiples of lot_size, min <= max")
    slippage = reader.integer(section, f"{key}.max_slippage_bps", 1, 10_000, default=500)
    return MarketSpec(name, index, base, quote, tick_minor, lot_minor, per_tick_lot,
                      min_minor // lot_minor, max_minor // lot_minor, slippage)


@dataclass(slots=True)
class Reader:
    file: str

    def table(self, raw: dict, key: str) -> dict:
        value = raw.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ConfigError(self.file, key, "must be a table of tables")
        return value

    def string(self, section: dict, key: str) -> str:
        value = section.get(key.rsplit(".", 1)[1])
        if not isinstance(value, str):
            raise ConfigError(self.file, key, "missing or not a string")
        return value

    def integer(self, section: dict, key: str, low: int, high: int, default: int | None = None) -> int:
        value = section.get(key.rsplit(".", 1)[1], default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.file, key, "missing or not an integer")
        if not low <= value <= high:
            raise ConfigError(self.file, key, f"{value} outside [{low}, {high}]")
        return value

    def decimal(self, section: dict, key: str, scale: int) -> int:
        value = self.string(section, key)
        try:
            result = parse_decimal(value, scale)
        except (MoneyFormatError, OverflowError) as exc:
            raise ConfigError(self.file, key, str(exc)) from None
        if not 0 <= result <= INT64_MAX:
            raise ConfigError(self.file, key, "out of range")
        return result
