"""exchange.config: the default file's derived units, and bad files failing with
ConfigError naming the file, the key and the reason."""
from __future__ import annotations

import copy
from fractions import Fraction

import pytest

from exchange.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from exchange.matching.orders import StpMode
from tests.exchange.support import DEFAULT_RAW
FILE = "bad.toml"


def raw_with(**edits) -> dict:
    """The default document with dotted-path edits; a value of ``...`` deletes the key."""
    raw = copy.deepcopy(DEFAULT_RAW)
    for dotted, value in edits.items():
        *path, last = dotted.split("/")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return raw


def config_error(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, FILE)
    error = info.value
    assert error.file == FILE
    assert str(error).startswith(f"{FILE}: {error.key}: ")
    return error


def test_load_config_with_default_file_derives_units_from_decimal_text():
    config = load_config()
    for name, section in DEFAULT_RAW["markets"].items():
        spec = config.markets[name]
        base = DEFAULT_RAW["assets"][section["base"]]["scale"]
        quote = DEFAULT_RAW["assets"][section["quote"]]["scale"]
        tick = Fraction(section["tick_size"])
        lot = Fraction(section["lot_size"])
        assert spec.tick_minor == tick * 10**quote
        assert spec.lot_minor == lot * 10**base
        assert spec.quote_per_tick_lot == tick * lot * 10**quote        # quote minor for 1 lot at 1 tick
        assert spec.min_lots == Fraction(section["min_qty"]) / lot
        assert spec.max_lots == Fraction(section["max_qty"]) / lot
        assert spec.max_slippage_bps == section["max_slippage_bps"]
    for name, section in DEFAULT_RAW["fee_tiers"].items():
        assert (config.fee_tiers[name].maker_ppm, config.fee_tiers[name].taker_ppm) == \
            (section["maker_ppm"], section["taker_ppm"])
    assert config.default_fee_tier == DEFAULT_RAW["exchange"]["default_fee_tier"]
    assert config.default_stp == StpMode[DEFAULT_RAW["exchange"]["default_stp"].upper()]
    assert "index" in config.sections                       # unknown sections are kept for later layers


def test_parse_config_with_notional_on_any_grid_point_is_exact():
    config = load_config()
    spec = config.markets["BTC-USDT"]
    for ticks, lots in [(1, 1), (5_000_000, 10_000), (123_457, 3)]:
        price_per_whole = ticks * spec.tick_minor
        base_minor = lots * spec.lot_minor
        assert spec.notional(ticks, lots) == Fraction(price_per_whole * base_minor, 10**spec.base.scale)


@pytest.mark.parametrize("edits,key,reason", [
    ({"markets/BTC-USDT/base": "DOGE"}, "markets.BTC-USDT.base", "unknown asset 'DOGE'"),
    ({"markets/ETH-USDT/quote": "EUR"}, "markets.ETH-USDT.quote", "unknown asset 'EUR'"),
    ({"markets/BTC-USDT/quote": "BTC"}, "markets.BTC-USDT", "base and quote must differ"),
    # 0.01 USDT per whole BTC x 1 satoshi = 1e-10 USDT: not a whole quote minor unit
    ({"markets/BTC-USDT/lot_size": "0.00000001", "markets/BTC-USDT/min_qty": "0.00000001"},
     "markets.BTC-USDT.lot_size", "whole number of quote minor units"),
    ({"fee_tiers/vip1/maker_ppm": 901}, "fee_tiers.vip1.maker_ppm", "maker fee above taker fee"),
    ({"fee_tiers/market_maker/maker_ppm": -501}, "fee_tiers", "rebate exceeds the lowest taker fee"),
    ({"fee_tiers/cheap": {"maker_ppm": 0, "taker_ppm": 50}}, "fee_tiers", "rebate exceeds the lowest taker fee"),
    ({"fee_tiers/regular/taker_ppm": 100_001}, "fee_tiers.regular.taker_ppm", "outside"),
    ({"fee_tiers/regular/taker_ppm": -1}, "fee_tiers.regular.taker_ppm", "outside"),
    ({"fee_tiers/regular/maker_ppm": ...}, "fee_tiers.regular.maker_ppm", "missing or not an integer"),
    ({"fee_tiers/regular/maker_ppm": True}, "fee_tiers.regular.maker_ppm", "missing or not an integer"),
    ({"fee_tiers/regular/maker_ppm": "1000"}, "fee_tiers.regular.maker_ppm", "missing or not an integer"),
    ({"assets/BTC/scale": ...}, "assets.BTC.scale", "missing or not an integer"),
    ({"assets/BTC/scale": 19}, "assets.BTC.scale", "outside"),
    ({"assets/BTC/scale": -1}, "assets.BTC.scale", "outside"),
    ({"assets/BTC": 8}, "assets", "table of tables"),
    ({"markets/BTC-USDT/tick_size": "0.0000001"}, "markets.BTC-USDT.tick_size", "more than 6 decimal places"),
    ({"markets/BTC-USDT/tick_size": 0.01}, "markets.BTC-USDT.tick_size", "missing or not a string"),
    ({"markets/BTC-USDT/tick_size": "abc"}, "markets.BTC-USDT.tick_size", "not a decimal number"),
    ({"markets/BTC-USDT/tick_size": "-0.01"}, "markets.BTC-USDT.tick_size", "out of range"),
    ({"markets/BTC-USDT/tick_size": "0"}, "markets.BTC-USDT", "must be positive"),
    ({"markets/BTC-USDT/tick_size": "99999999999999"}, "markets.BTC-USDT.tick_size", "64 bits"),
    ({"markets/BTC-USDT/lot_size": ...}, "markets.BTC-USDT.lot_size", "missing or not a string"),
    ({"markets/BTC-USDT/min_qty": "0.00015"}, "markets.BTC-USDT.min_qty", "multiples of lot_size"),
    ({"markets/BTC-USDT/min_qty": "200"}, "markets.BTC-USDT.min_qty", "min <= max"),
    ({"markets/BTC-USDT/min_qty": "0"}, "markets.BTC-USDT.min_qty", "positive"),
    ({"markets/BTC-USDT/max_slippage_bps": 0}, "markets.BTC-USDT.max_slippage_bps", "outside"),
    ({"markets/BTC-USDT/max_slippage_bps": 10_001}, "markets.BTC-USDT.max_slippage_bps", "outside"),
    ({"exchange/default_fee_tier": "gold"}, "exchange.default_fee_tier", "unknown fee tier 'gold'"),
    ({"exchange/default_fee_tier": ["regular"]}, "exchange.default_fee_tier", "unknown fee tier"),
    ({"exchange/default_stp": "cancel_newest"}, "exchange.default_stp", "unknown mode"),
    ({"exchange/default_stp": 1}, "exchange.default_stp", "unknown mode"),
    ({"exchange/shards": 0}, "exchange.shards", "outside"),
    ({"exchange/dedup_window": 0}, "exchange.dedup_window", "outside"),
    ({"exchange/earlier_shards": [{"shards": 1}]}, "exchange.earlier_shards", "list of { shards = N"),
    ({"exchange/earlier_shards": {"shards": 1, "below_account": 5}}, "exchange.earlier_shards", "list of"),
    ({"exchange/earlier_shards": [{"shards": 2, "below_account": 5}]}, "exchange.earlier_shards", "must rise"),
    ({"exchange/earlier_shards": [{"shards": 1, "below_account": 0}]}, "exchange.earlier_shards.below_account",
     "outside"),
    ({"exchange/earlier_shards": [{"shards": 1, "below_account": 9}, {"shards": 1, "below_account": 20}]},
     "exchange.earlier_shards", "must rise"),
    ({"exchange": 5}, "exchange", "must be a table"),
    ({"markets": {}}, "markets", "at least one market"),
    ({"fee_tiers": {}}, "fee_tiers", "at least one fee tier"),
    ({"assets": {}}, "assets", "at least one asset"),
])
def test_parse_config_with_bad_value_fails_naming_file_key_and_reason(edits, key, reason):
    error = config_error(raw_with(**edits))
    assert error.key == key
    assert reason in error.reason


def test_parse_config_with_default_document_accepts():
    config = parse_config(copy.deepcopy(DEFAULT_RAW), FILE)
    assert sorted(config.markets) == sorted(DEFAULT_RAW["markets"])


def test_parse_config_with_rebate_equal_to_lowest_taker_accepts():
    config = parse_config(raw_with(**{"fee_tiers/market_maker/maker_ppm": -500}), FILE)
    assert config.fee_tiers["market_maker"].maker_ppm == -500


def test_load_config_with_bad_file_names_the_path(tmp_path):
    text = DEFAULT_CONFIG_PATH.read_text().replace('base = "BTC"', 'base = "XBT"')
    path = tmp_path / "exchange.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.file, info.value.key) == (str(path), "markets.BTC-USDT.base")
    assert "unknown asset 'XBT'" in info.value.reason


def test_load_config_with_invalid_toml_fails_with_config_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[assets.BTC\nscale = 8\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)


def test_load_config_with_missing_file_fails_with_config_error(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)


def test_a_file_that_extends_the_default_changes_only_what_it_names(tmp_path):
    from exchange.config import load_config
    over = tmp_path / "over.toml"
    over.write_text('extends = "default"\n[metrics]\naddress = "0.0.0.0"\n[placement]\nnodes = ["a"]\n')
    config, default = load_config(over), load_config()
    assert config.sections["metrics"]["address"] == "0.0.0.0"
    assert config.sections["metrics"]["port"] == default.sections["metrics"]["port"]        # merged, not replaced
    assert config.sections["placement"] == {"nodes": ["a"]} and config.markets == default.markets
    assert config.risk is not None                      # the built-in rulebook, found from the default's folder
    chained = tmp_path / "chained.toml"
    chained.write_text('extends = "over.toml"\n[metrics]\nport = 9999\n')
    assert (load_config(chained).sections["metrics"]["address"], load_config(chained).sections["metrics"]["port"]) \
        == ("0.0.0.0", 9999)
    looping = tmp_path / "loop.toml"
    looping.write_text('extends = "loop.toml"\n')
    with pytest.raises(ConfigError, match="extends"):
        load_config(looping)
