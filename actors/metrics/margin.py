"""Margin, lending and liquidation metric families (fed by the issue-6 actors).

Every child is bound at construction for every configured market (or asset),
so each series exists with value 0 from the moment the exchange is up.
Keys: ``mode`` is ``"cross"`` (then ``market="all"``: one book spans every
market) or ``"isolated"`` (one series per market).

| family | type | labels | unit | fed by |
|---|---|---|---|---|
| ``exchange_margin_level`` | histogram, **replaced** per price tick | market, mode | ratio (assets / liabilities) | shards |
| ``exchange_margin_accounts_at_risk`` | gauge | market, mode | accounts between the warning and liquidation lines | shards |
| ``exchange_liquidations_total`` | counter | market, mode | liquidations started | liquidator |
| ``exchange_liquidations_pending`` | gauge | mode | accounts under liquidation, not yet closed | liquidator |
| ``exchange_bad_debt_total`` | counter | asset | minor units | liquidator |
| ``exchange_insurance_fund_balance`` | gauge | asset | minor units | liquidator |
| ``exchange_lending_supplied`` / ``_borrowed`` | gauge | asset | minor units | lending pool |
| ``exchange_lending_utilization_ratio`` | gauge | asset | borrowed / supplied | lending pool |
| ``exchange_lending_borrow_rate`` / ``_supply_rate`` | gauge | asset | yearly rate as a fraction | lending pool |
| ``exchange_lending_written_off`` | gauge | asset | minor units (bad debt the fund could not cover) | lending pool |

The margin-level histogram is not cumulative over time: each ``levels`` call
replaces that key's whole distribution with the accounts' current levels
(Prometheus stores it as an ordinary histogram; query its buckets directly,
never through ``rate``).
"""
from __future__ import annotations

from bisect import bisect_left

from prometheus_client import Counter, Gauge
from prometheus_client.core import HistogramMetricFamily

PPM = 1_000_000
MARGIN_LEVEL_BUCKETS = (1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 2.0, 3.0, 5.0, 10.0)
MODES = ("cross", "isolated")
CROSS_MARKET = "all"


def margin_keys(markets: list[str]) -> list[tuple[str, str]]:
    """Every (market, mode) series: cross books as market "all", isolated ones per market."""
    return [(CROSS_MARKET, "cross")] + [(m, "isolated") for m in markets]


def book_key(market: str) -> tuple[str, str]:
    """The (market, mode) series of a margin book named as the domain names it
    (``""``: the account's cross book; a market name: its isolated book)."""
    return (CROSS_MARKET, "cross") if market in ("", CROSS_MARKET) else (market, "isolated")


class MarginLevelDistribution:
    """``exchange_margin_level``: the current margin levels of accounts as a histogram,
    one distribution per (market, mode), replaced (not accumulated) by each update."""

    name = "exchange_margin_level"

    def __init__(self, keys: list[tuple[str, str]], buckets: tuple = MARGIN_LEVEL_BUCKETS):
        self.buckets = tuple(buckets)
        self.bounds_ppm = [round(b * PPM) for b in self.buckets]
        self.current: dict[tuple[str, str], tuple[list[int], float]] = {
            key: ([0] * (len(self.buckets) + 1), 0.0) for key in keys}

    def update(self, market: str, mode: str, levels_ppm) -> None:
        """Replace the distribution of (market, mode) with these accounts' margin levels
        (ppm: 1.1 = 1_100_000). Pass only accounts with liabilities; an account
        with none has no margin level."""
        counts = [0] * (len(self.bounds_ppm) + 1)
        bounds, total = self.bounds_ppm, 0
        for level in levels_ppm:
            counts[bisect_left(bounds, level)] += 1
            total += level
        self.current[(market, mode)] = (counts, total / PPM)

    def set_counts(self, market: str, mode: str, counts: list[int], sum_ratio: float = 0.0) -> None:
        """Replace the distribution with precomputed per-bucket counts (not cumulative):
        ``counts[i]`` accounts with level <= ``buckets[i]`` and above the previous
        bound; the last entry counts levels above the highest bound."""
        if len(counts) != len(self.buckets) + 1:
            raise ValueError(f"need {len(self.buckets) + 1} counts, got {len(counts)}")
        self.current[(market, mode)] = (list(counts), float(sum_ratio))

    def collect(self):
        family = HistogramMetricFamily(self.name, "Margin levels of accounts (assets / liabilities), "
                                                  "the current distribution (replaced per price tick)",
                                       labels=["market", "mode"])
        edges = [repr(b) for b in self.buckets] + ["+Inf"]
        for (market, mode), (counts, total) in self.current.items():
            cumulative, running = [], 0
            for edge, count in zip(edges, counts):
                running += count
                cumulative.append((edge, running))
            family.add_metric([market, mode], cumulative, total)
        yield family


class MarginMetrics:
    """What a shard reports about its margin accounts."""

    def __init__(self, registry, markets: list[str]):
        keys = margin_keys(markets)
        self.distribution = MarginLevelDistribution(keys)
        registry.register(self.distribution)
        gauge = Gauge("exchange_margin_accounts_at_risk", "Accounts between the warning and the liquidation line",
                      ["market", "mode"], registry=registry)
        self._at_risk = {key: gauge.labels(*key) for key in keys}

    def levels(self, market: str, mode: str, levels_ppm) -> None:
        """Replace the margin-level distribution of (market, mode); see ``MarginLevelDistribution.update``."""
        self.distribution.update(market, mode, levels_ppm)

    def at_risk(self, market: str, mode: str, accounts: int) -> None:
        """Set how many accounts are between the warning and liquidation lines."""
        self._at_risk[(market, mode)].set(accounts)


class LiquidationMetrics:
    """What the liquidator reports: liquidations, backlog, bad debt, insurance fund."""

    def __init__(self, registry, markets: list[str], assets: list[str]):
        counter = Counter("exchange_liquidations", "Liquidations started", ["market", "mode"], registry=registry)
        self._liquidations = {key: counter.labels(*key) for key in margin_keys(markets)}
        pending = Gauge("exchange_liquidations_pending", "Accounts under liquidation, not yet closed",
                        ["mode"], registry=registry)
        self._pending = {mode: pending.labels(mode) for mode in MODES}
        bad_debt = Counter("exchange_bad_debt", "Losses beyond an account's collateral, in asset minor units",
                           ["asset"], registry=registry)
        self._bad_debt = {a: bad_debt.labels(a) for a in assets}
        fund = Gauge("exchange_insurance_fund_balance", "Insurance fund balance, in asset minor units",
                     ["asset"], registry=registry)
        self._fund = {a: fund.labels(a) for a in assets}

    def liquidated(self, market: str, mode: str = "", count: int = 1) -> None:
        """Count liquidations started on a book (``market=""`` or ``"all"``: a cross book)."""
        child = self._liquidations.get(book_key(market) if mode != "cross" else (CROSS_MARKET, "cross"))
        if child is not None:
            child.inc(count)

    def pending(self, mode: str, accounts: int) -> None:
        self._pending[mode].set(accounts)

    def bad_debt(self, asset: str, amount_minor: int) -> None:
        """Add bad debt (an amount the fund or the pool had to absorb)."""
        self._bad_debt[asset].inc(amount_minor)

    def insurance_fund(self, asset: str, balance_minor: int) -> None:
        self._fund[asset].set(balance_minor)


class LendingMetrics:
    """What the lending pool reports per asset."""

    def __init__(self, registry, assets: list[str]):
        def per_asset(name: str, documentation: str) -> dict:
            gauge = Gauge(name, documentation, ["asset"], registry=registry)
            return {a: gauge.labels(a) for a in assets}
        self.assets = frozenset(assets)
        self._supplied = per_asset("exchange_lending_supplied", "Supplied to the pool, in asset minor units")
        self._borrowed = per_asset("exchange_lending_borrowed", "Borrowed from the pool, in asset minor units")
        self._utilization = per_asset("exchange_lending_utilization_ratio", "Borrowed / supplied")
        self._borrow_rate = per_asset("exchange_lending_borrow_rate", "Borrow rate per year, as a fraction")
        self._supply_rate = per_asset("exchange_lending_supply_rate", "Supply rate per year, as a fraction")
        self._written_off = per_asset("exchange_lending_written_off", "Bad debt the pool wrote off when the "
                                      "insurance fund could not cover it (its suppliers' loss), in asset minor units")

    def pool(self, asset: str, supplied_minor: int, borrowed_minor: int, utilization_ppm: int,
             borrow_rate_ppm: int, supply_rate_ppm: int, written_off_minor: int = 0) -> None:
        """Set one pool's figures (amounts in minor units, ratio and yearly rates in ppm)."""
        self._supplied[asset].set(supplied_minor)
        self._borrowed[asset].set(borrowed_minor)
        self._utilization[asset].set(utilization_ppm / PPM)
        self._borrow_rate[asset].set(borrow_rate_ppm / PPM)
        self._supply_rate[asset].set(supply_rate_ppm / PPM)
        self._written_off[asset].set(written_off_minor)
