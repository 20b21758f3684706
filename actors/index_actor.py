"""IndexActor: index prices per asset from weighted component feeds.

Keeps the latest quote of every (asset, source), computes each asset's index
with ``exchange.pricing.index.compute_index`` (stale and outlying components dropped),
and publishes the per-market reference price (in ticks) to every shard.
Prices arrive either from a feed the actor steps itself (the loop ``start``
begins; the demo's seeded random walk) or from ``set_component`` and ``step``
calls with explicit timestamps (tests, external feed adapters), which need
the operator capability. It publishes with the index capability.
"""
from __future__ import annotations

import asyncio
import time

import ray

from actors.capability import Keyring, Role
from actors.feeds import RandomWalkFeed
from actors.metrics.roles import index_metrics
from exchange.config import load_config
from exchange.perp.rules import perp_markets
from exchange.pricing.index import ComponentQuote, IndexPrice, compute_index, index_ticks


class IndexActor:
    def __init__(self, config_path: str | None, seed: int = 1, keyring: Keyring | None = None):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()        # a private one: nobody can call its role methods
        self._as_index = self.keyring.capability(Role.INDEX)
        section = self.config.sections.get("index", {})
        self.quote_asset = self.config.index_quote_asset
        self.stale_ns = int(section.get("stale_ms", 5000)) * 1_000_000
        self.outlier_bps = int(section.get("outlier_bps", 300))
        self.publish_s = int(section.get("publish_ms", 500)) / 1000
        self.feed = RandomWalkFeed(section, self.config.assets[self.quote_asset].scale, seed)
        self.quotes: dict[str, dict[str, ComponentQuote]] = {}
        self.prices: dict[str, IndexPrice] = {}
        self._shards: list = []
        self._liquidator = None
        self._perp_names = sorted(perp_markets(self.config))
        self._perps: list = []
        self._task = None
        self.metrics = index_metrics(self)

    @property
    def shards(self) -> list:
        """Shard handles, looked up by name (so a restarted index actor finds them again)."""
        if len(self._shards) != self.config.shards:
            self._shards = [ray.get_actor(f"shard:{i}") for i in range(self.config.shards)]
        return self._shards

    async def set_component(self, capability, asset: str, source: str, price: int, weight: int, ts_ns: int) -> int:
        """Record one component quote, recompute that asset's index and publish it
        (the answer comes once every shard has the new prices and re-valued its margin books).
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        if asset not in self.config.assets or type(source) is not str or not all(
                type(v) is int for v in (price, weight, ts_ns)):
            raise ValueError("set_component(asset name, source name, price int, weight int, ts_ns int)")
        self.quotes.setdefault(asset, {})[source] = ComponentQuote(source, price, weight, ts_ns)
        price = self._recompute(asset, ts_ns).price
        await asyncio.gather(*self.publish())
        return price

    def _recompute(self, asset: str, now_ns: int) -> IndexPrice:
        index = compute_index(asset, list(self.quotes.get(asset, {}).values()), now_ns,
                              self.stale_ns, self.outlier_bps)
        self.prices[asset] = index
        return index

    def step(self, capability, now_ns: int) -> dict[str, int]:
        """Advance the simulated feed once, recompute and publish.
        Raises ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        return self._step(now_ns)

    def _step(self, now_ns: int) -> dict[str, int]:
        for asset, quotes in self.feed.step(now_ns).items():
            for quote in quotes:
                self.quotes.setdefault(asset, {})[quote.source] = quote
        for asset in self.quotes:
            self._recompute(asset, now_ns)
        self.publish()
        return self.index_prices()

    def publish(self) -> list:
        """Send the per-market reference (ticks) and per-asset index prices to every
        shard, every perpetual market (which prices its mark from it) and the
        liquidator; return the calls' refs."""
        assets = {asset: index.price for asset, index in self.prices.items() if index.price}
        ticks = index_ticks(self.config.market_list, self.quote_asset, assets)
        refs = [shard.set_index_prices.remote(self._as_index, ticks, assets) for shard in self.shards]
        if self._perp_names and not self._perps:
            self._perps = [ray.get_actor(f"market:{name}") for name in self._perp_names]
        now_ns = time.time_ns()
        refs.extend(perp.set_index_prices.remote(self._as_index, assets, now_ns) for perp in self._perps)
        if self._liquidator is None:
            try:
                self._liquidator = ray.get_actor("liquidator")
            except ValueError:        # no liquidator in this deployment (yet)
                return refs
        refs.append(self._liquidator.set_index_prices.remote(self._as_index, assets))
        return refs

    def index_prices(self) -> dict[str, int]:
        return {asset: index.price for asset, index in self.prices.items()}

    async def _run(self, steps: int | None = None) -> None:
        """Step the simulated feed every ``publish_ms`` (forever, or ``steps`` times)."""
        count = 0
        while steps is None or count < steps:
            self._step(time.time_ns())
            count += 1
            await asyncio.sleep(self.publish_s)

    async def start(self) -> bool:
        """Start the background feed loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return True


RemoteIndex = ray.remote(IndexActor)
