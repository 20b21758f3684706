"""Simulated component price feeds for the demo and tests.

A seeded random walk per asset; each component source quotes the walk with a
small seeded deviation of its own. The same seed gives the same prices, so a
demo run or a test is reproducible. (Randomness lives here, outside the pure
domain core.) A CSV replay feed reads ``ts_ns,asset,source,price`` rows.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

from exchange.pricing.index import ComponentQuote
from exchange.core.money import parse_decimal


class RandomWalkFeed:
    def __init__(self, index_config: dict, quote_scale: int, seed: int = 1):
        self.rng = random.Random(seed)
        self.assets = {}
        for asset, section in index_config.get("assets", {}).items():
            self.assets[asset] = {
                "price": parse_decimal(section["start_price"], quote_scale),
                "vol_bps": int(section.get("volatility_bps", 10)),
                "components": [(c["source"], int(c["weight"])) for c in section["components"]],
            }

    def step(self, now_ns: int) -> dict[str, list[ComponentQuote]]:
        """Advance the walk one step; return each asset's component quotes."""
        out = {}
        for asset, state in self.assets.items():
            move = self.rng.gauss(0.0, state["vol_bps"]) / 10_000
            state["price"] = max(1, int(state["price"] * (1 + move)))
            quotes = []
            for source, weight in state["components"]:
                deviation = self.rng.gauss(0.0, 1.0) / 10_000
                quotes.append(ComponentQuote(source, max(1, int(state["price"] * (1 + deviation))), weight, now_ns))
            out[asset] = quotes
        return out


class CsvReplayFeed:
    """Replay ``ts_ns,asset,source,price`` rows (price as a decimal string)."""

    def __init__(self, path: str | Path, quote_scale: int, weights: dict[tuple[str, str], int]):
        with open(path, newline="") as f:
            self.rows = [(int(r["ts_ns"]), r["asset"], r["source"], parse_decimal(r["price"], quote_scale))
                         for r in csv.DictReader(f)]
        self.rows.sort()
        self.position = 0
        self.weights = weights

    def step(self, now_ns: int) -> dict[str, list[ComponentQuote]]:
        out: dict[str, list[ComponentQuote]] = {}
        while self.position < len(self.rows) and self.rows[self.position][0] <= now_ns:
            ts, asset, source, price = self.rows[self.position]
            out.setdefault(asset, []).append(ComponentQuote(source, price, self.weights.get((asset, source), 1), ts))
            self.position += 1
        return out
