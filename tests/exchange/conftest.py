"""Fixtures for the domain-core tests: a fresh engine with five funded accounts."""
from __future__ import annotations

import pytest

from tests.exchange.support import Harness, funded_harness


@pytest.fixture
def ex() -> Harness:
    """Engine with ALICE, BOB, CAROL (regular), MAKER (market_maker) and VIP (vip1),
    each holding 10,000,000 USDT, 100 BTC and 1,000 ETH."""
    return funded_harness()
