"""Perpetual markets from the config: ``[perp.<MARKET>]`` sections.

Each section has a spot market's grid keys (``base`` = the underlying,
``quote`` = the settlement asset, ``tick_size``, ``lot_size``, ``min_qty``,
``max_qty``, ``max_slippage_bps``: ``exchange.config.parse_market``) and the
perpetual's own, with the rulebook's values as defaults:

- risk tiers (4.3.2): ``base_maintenance`` 0.005, ``base_initial`` 0.01,
  ``step_rate`` 0.005, ``step_notional`` (quote units, required), ``steps`` 9;
- ``position_limit`` (4.3.1, base units; 5,000 BTC in the rulebook) and
  ``default_leverage`` (20);
- the new-contract band (4.2.7): ``listing_ts_ns`` (when it listed; 0, the
  default, for a contract listed before any band applied), ``listing_band``
  0.05 for ``listing_window_s`` 900 after it;
- ``divergence_band`` 0.05: orders are refused while the mark is further than
  this from the index (5.2.2.5);
- funding: ``funding_interval_s`` 28800 (8 h; 3600 possible), ``interest``
  0.0001, ``clamp`` 0.0005, ``cap`` 0.0075 per interval; ``basis_window_s``
  300 for the mark's basis average;
- the fund: ``max_draw`` 0.5, the most of a market's fund one bankruptcy draws;
  ``adl_drawdown`` 0.3 over ``drawdown_window_s`` 86400: while the fund is that
  far below its highest balance in the window, it pays nothing more and
  bankruptcies go straight to ADL (the trigger; it stops once the fund is back
  within the ratio, by top-ups, surpluses or the window moving on);
- ``liquidation_notional`` (quote units, 10,000,000): the most liquidation
  orders close per second in the market, so a cascade cannot sweep a thin book;
- ``fund_initial`` (quote units, 0): the market's insurance fund's seed capital,
  a ``TOP_UP`` entry the venue's first start records (``PerpLiquidator.seed``);
- ``fee_share`` 0.1: the part of the market's trading fees its fund receives
  (``exchange.perp.fees``; swept from the shards every ``fee_sweep_s`` of
  ``[perp_fund]``).

Ratios are decimal strings; margin ratios become ppm (``RiskTiers``), funding
ratios ``FUNDING_ONE`` units. A perpetual's market index follows the spot
markets', so every market of the venue has its own.
"""
from __future__ import annotations

from dataclasses import dataclass

from exchange.config import ConfigError, ExchangeConfig, MarketSpec, Reader, parse_market
from exchange.core.money import PPM, MoneyFormatError, parse_decimal
from exchange.perp.funding import FUNDING_ONE, FundingRules
from exchange.perp.tiers import RiskTiers
from exchange.published import canonical_json, sha256_hex

NS = 10**9


@dataclass(frozen=True, slots=True)
class PerpMarket:
    spec: MarketSpec
    tiers: RiskTiers
    funding: FundingRules
    position_limit_lots: int
    default_leverage: int
    listing_ts_ns: int
    listing_band_ppm: int
    listing_window_ns: int
    divergence_band_ppm: int
    basis_window_ns: int
    max_draw_ppm: int
    liquidation_notional: int
    fund_initial: int = 0
    adl_drawdown_ppm: int = 300_000
    drawdown_window_ns: int = 86_400 * NS
    fee_share_ppm: int = 100_000

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def k(self) -> int:
        """Quote minor units per tick per lot."""
        return self.spec.quote_per_tick_lot


def perp_markets(config: ExchangeConfig, file: str = "<config>") -> dict[str, PerpMarket]:
    """Every ``[perp.<MARKET>]`` of ``config`` (none: an empty dict). Raises ConfigError."""
    raw = config.sections.get("perp", {})
    reader = Reader(file)
    out = {}
    for i, (name, section) in enumerate(sorted(reader.table({"perp": raw}, "perp").items())):
        if name in config.markets:
            raise ConfigError(file, f"perp.{name}", "a spot market has that name")
        out[name] = _parse(reader, name, len(config.markets) + i, section, config)
    return out


def spec_of(config: ExchangeConfig, name: str) -> MarketSpec:
    """The grid of any market of the venue, spot or perpetual (KeyError for neither)."""
    spec = config.markets.get(name)
    return spec if spec is not None else perp_markets(config)[name].spec


def rules_hash(config: ExchangeConfig) -> str:
    """SHA-256 over the ``[perp.*]`` sections as configured (canonical JSON): the perpetual
    rules in force, published beside the funds so anyone can tell which rules applied."""
    return sha256_hex(rules_text(config))


def rules_text(config: ExchangeConfig) -> str:
    """The ``[perp.*]`` sections as configured, in canonical JSON: what ``rules_hash`` covers."""
    return canonical_json(config.sections.get("perp", {}))


def _parse(reader: Reader, name: str, index: int, section: dict, config: ExchangeConfig) -> PerpMarket:
    key = f"perp.{name}"
    spec = parse_market(reader, name, index, section, config.assets, table="perp")
    ratio = lambda field, default, one=PPM: _ratio(reader, section, f"{key}.{field}", default, one)  # noqa: E731
    try:
        tiers = RiskTiers(ratio("base_maintenance", "0.005"), ratio("base_initial", "0.01"),
                          ratio("step_rate", "0.005"), reader.decimal(section, f"{key}.step_notional", spec.quote.scale),
                          reader.integer(section, f"{key}.steps", 0, 100, default=9))
        funding = FundingRules(reader.integer(section, f"{key}.funding_interval_s", 60, 7 * 86_400,
                                              default=28_800) * NS,
                               ratio("interest", "0.0001", FUNDING_ONE), ratio("clamp", "0.0005", FUNDING_ONE),
                               ratio("cap", "0.0075", FUNDING_ONE))
    except ValueError as exc:
        raise ConfigError(reader.file, key, str(exc)) from None
    limit_minor = reader.decimal({"position_limit": section.get("position_limit", "5000")},
                                 f"{key}.position_limit", spec.base.scale)
    if limit_minor <= 0 or limit_minor % spec.lot_minor:
        raise ConfigError(reader.file, f"{key}.position_limit", "must be a positive multiple of lot_size")
    leverage = reader.integer(section, f"{key}.default_leverage", 1, 1_000, default=20)
    if leverage > tiers.max_leverage(0):
        raise ConfigError(reader.file, f"{key}.default_leverage", "above the first tier's maximum")
    max_draw = ratio("max_draw", "0.5")
    if not 0 < max_draw <= PPM:
        raise ConfigError(reader.file, f"{key}.max_draw", "must be in (0, 1]")
    rate_limit = reader.decimal({"liquidation_notional": section.get("liquidation_notional", "10000000")},
                                f"{key}.liquidation_notional", spec.quote.scale)
    if rate_limit <= 0:
        raise ConfigError(reader.file, f"{key}.liquidation_notional", "must be positive")
    seed = reader.decimal({"fund_initial": section.get("fund_initial", "0")}, f"{key}.fund_initial",
                          spec.quote.scale)
    drawdown = ratio("adl_drawdown", "0.3")
    if not 0 < drawdown <= PPM:
        raise ConfigError(reader.file, f"{key}.adl_drawdown", "must be in (0, 1]")
    fee_share = ratio("fee_share", "0.1")
    if fee_share > PPM:
        raise ConfigError(reader.file, f"{key}.fee_share", "must be in [0, 1]")
    return PerpMarket(spec, tiers, funding, limit_minor // spec.lot_minor, leverage,
                      reader.integer(section, f"{key}.listing_ts_ns", 0, 2**63 - 1, default=0),
                      ratio("listing_band", "0.05"),
                      reader.integer(section, f"{key}.listing_window_s", 0, 30 * 86_400, default=900) * NS,
                      ratio("divergence_band", "0.05"),
                      reader.integer(section, f"{key}.basis_window_s", 1, 86_400, default=300) * NS, max_draw,
                      rate_limit, seed, drawdown,
                      reader.integer(section, f"{key}.drawdown_window_s", 1, 30 * 86_400, default=86_400) * NS,
                      fee_share)


def _ratio(reader: Reader, section: dict, key: str, default: str, one: int) -> int:
    text = section.get(key.rsplit(".", 1)[1], default)
    if not isinstance(text, str):
        raise ConfigError(reader.file, key, "must be a decimal string")
    digits = len(str(one)) - 1
    try:
        value = parse_decimal(text, digits)
    except (MoneyFormatError, OverflowError) as exc:
        raise ConfigError(reader.file, key, str(exc)) from None
    if value < 0:
        raise ConfigError(reader.file, key, "must not be negative")
    return value
