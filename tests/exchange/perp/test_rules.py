"""``[perp.<MARKET>]`` rules: the rulebook's values when a key is absent, and a bad value
refused with the key it came from (nothing half-parsed)."""
from __future__ import annotations

import pytest

from exchange.config import ConfigError
from exchange.perp.rules import perp_markets
from tests.exchange.perp.test_desk import PERP, perp_config

NS = 10**9


def test_absent_keys_take_the_rulebook_s_values():
    market = perp_markets(perp_config())[PERP]
    assert (market.tiers.base_maintenance_ppm, market.tiers.base_initial_ppm, market.tiers.step_ppm) == \
        (5_000, 10_000, 5_000)                                              # 4.3.2
    assert market.max_draw_ppm == 500_000 and market.adl_drawdown_ppm == 300_000
    assert market.drawdown_window_ns == 86_400 * NS and market.listing_band_ppm == 50_000      # 4.2.7
    assert market.liquidation_notional == 10_000_000 * 10**6
    assert market.fee_share_ppm == 100_000                                # a tenth of the fees to the fund


@pytest.mark.parametrize("key, value", [("adl_drawdown", "0"), ("adl_drawdown", "1.5"), ("max_draw", "0"),
                                        ("liquidation_notional", "0"), ("position_limit", "0.0005"),
                                        ("drawdown_window_s", 0), ("adl_drawdown", 0.3),
                                        ("fee_share", "1.01"), ("fee_share", "-0.1")])
def test_a_bad_value_is_refused_naming_its_key(key, value):
    with pytest.raises(ConfigError) as refused:
        perp_markets(perp_config(**{key: value}))
    assert f"perp.{PERP}.{key}" in str(refused.value)
