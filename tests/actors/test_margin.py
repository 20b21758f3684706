"""Margin trading end to end on real Ray actors: shards, markets, the lending
pool, the index and the liquidator, with LMDB journals in a temp dir.

The config is the default one with two changes a test needs: a zero-fee tier
(so the seed's round numbers hold: 1,000 USDT at 10x borrows exactly 9,000)
lines close under a 10x position's opening level of 111.1% (warning
110.8%, margin call 110.4%; liquidation stays at the rulebook's 110%), and
margin trading on BTC-USDT only.
Time is simulated: the operator turns the pools' hour to times in 2033, ahead
of the wall clock (commands never move it, issue 11), and index quotes carry
explicit timestamps in the same hours.
"""
from __future__ import annotations

import time

import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring
from actors.client.exchange_client import ExchangeClient
from actors.liquidator_actor import account_hash
from actors.client.operator import OperatorClient
from exchange.config import DEFAULT_CONFIG_PATH
from exchange.messages.records import LiquidationStage, LiquidationUpdate, MarginLevelChanged
from exchange.core.reasons import Reason
from tests.margin_reference import HOUR_NS, USDT_CURVE, ReferencePool, ceil
from fractions import Fraction

T0 = 2_000_000_000 * 10**9 // HOUR_NS * HOUR_NS + 30 * 60 * 10**9    # 30 minutes into an hour, in 2033
USDT, BTC = 10**6, 10**8


def usd(whole: int | str) -> int:
    return int(Fraction(str(whole)) * USDT)


def margin_config_text() -> str:
    text = DEFAULT_CONFIG_PATH.read_text()
    text = text.replace("maker_ppm = -100", "maker_ppm = 0")
    text = text.replace("[fee_tiers.regular]", "[fee_tiers.zero]\nmaker_ppm = 0\ntaker_ppm = 0\n\n[fee_tiers.regular]")
    text = text.replace('warning_level = "1.5"', 'warning_level = "1.108"')
    text = text.replace('margin_call_level = "1.3"', 'margin_call_level = "1.104"')
    text = text.replace('markets = ["BTC-USDT", "ETH-USDT"]   #', 'markets = ["BTC-USDT"]   #')
    return text


def start_margin_exchange(root) -> tuple[OperatorClient, object]:
    """A cluster on the margin test config, its data under ``root``: the operator (who holds
    the keyring) and the config's path."""
    path = root / "margin.toml"
    path.write_text(margin_config_text())
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    handles = bootstrap.create_actors(path, data_dir=root / "data", metrics_port=0, keyring=keyring)
    return OperatorClient(handles, keyring), path


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    operator, _ = start_margin_exchange(tmp_path_factory.mktemp("margin"))
    client = operator.client
    client.operator = operator      # index components and accrual are the operator's
    yield client
    bootstrap.destroy_actors(client.handles)
    ray.shutdown()


def set_price(ex: ExchangeClient, asset: str, price: int, ts_ns: int) -> None:
    """One index component (the others never quoted): the index is this price."""
    ex.operator.set_index_component(asset, "sim-alpha", price, 1, ts_ns)


def open_funded(ex: ExchangeClient, account: int, **balances: str) -> None:
    assert ex.open_account(account, "zero").ok
    for asset, amount in balances.items():
        assert ex.deposit(account, asset, amount).ok


def wait_for(predicate, timeout_s: float = 30.0, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError("condition not reached in time")


def finished_liquidation(ex: ExchangeClient, account: int, market: str = ""):
    records = [r for r in ex.liquidations(1000) if r["account_hash"] == account_hash(account)
               and r["market"] == market and r.get("outcome") == "finished"]
    return records[-1] if records else None


def pool_money(ex: ExchangeClient) -> dict:
    """What a rejection must not move in the pools (time may turn their hour)."""
    return {asset: (p["cash"], p["borrowed"], p["principal"], p["loans"], p["suppliers"])
            for asset, p in ex.lending_pools().items()}


def account_events(ex: ExchangeClient, account: int) -> list:
    shard = ex._shard(account)
    return [event for _, event in ray.get(shard.events_after.remote(account, 0, 0.2))["events"]]


def test_seed_long_borrows_accrues_and_is_liquidated_repaying_the_pool_first(ex):
    supplier, maker, trader = 101, 102, 103
    ex.operator.accrue_interest(T0)               # the pools' hour: T0's (commands no longer turn it)
    set_price(ex, "BTC", usd(50_000), T0)
    open_funded(ex, supplier, USDT="100000")
    open_funded(ex, maker, BTC="10", USDT="100000")
    open_funded(ex, trader, USDT="1000")
    ex.subscribe(trader)
    assert ex.supply(supplier, "USDT", "50000").ok
    assert ex.enable_margin(trader, "pro", "10x").ok
    assert ex.transfer_margin(trader, "USDT", "1000").ok
    assert ex.place_order(maker, "BTC-USDT", "sell", "0.2", price="50000").ok

    # seed 001: 10x long with 1,000 USDT borrows 9,000 USDT and buys 10,000 USDT of BTC
    opened = ex.margin_order(trader, "BTC-USDT", "buy", "0.2", price="50000", tif="ioc")
    assert opened.status == "filled" and opened.filled_quantity == 20_000_000
    pool = ReferencePool(USDT_CURVE, usd(50_000), T0)
    pool.borrow(usd(9_000))
    book = ex.margin_book(trader)
    assert book["available"] == {"BTC": 20_000_000, "ETH": 0, "USDT": 0}
    assert book["principal"]["USDT"] == usd(9_000)
    assert book["debt"]["USDT"] == pool.debt()               # the started hour is charged at once
    assert book["level_ppm"] == 10_000 * USDT * 10**6 // pool.debt()

    # a day passes: interest by the hour, the rate re-read each hour from utilization
    ex.operator.accrue_interest(T0 + 24 * HOUR_NS)
    pool.advance_to(T0 + 24 * HOUR_NS)
    debt = pool.debt()
    assert debt > usd(9_000)
    book = wait_for(lambda: (b := ex.margin_book(trader))["debt"]["USDT"] == debt and b)   # the new index is pushed
    pools = ex.lending_pools()["USDT"]
    assert pools["borrowed"] == debt and pools["cash"] == usd(41_000)

    # can't take collateral out while under the initial line
    refused = ex.transfer_margin(trader, "BTC", "0.001", to_margin=False)
    assert refused.reason is Reason.BELOW_INITIAL_MARGIN_LEVEL

    # the price slides through the warning line, then the margin-call line
    t = T0 + 24 * HOUR_NS
    warning_price = ceil(Fraction(1_107_000 * debt * 10, 2 * 10**6)) // 10_000 * 10_000     # ~110.7%
    set_price(ex, "BTC", warning_price, t)
    assert ex.margin_book(trader)["zone"] == 1
    call_price = ceil(Fraction(1_102_000 * debt * 10, 2 * 10**6)) // 10_000 * 10_000        # ~110.2%
    set_price(ex, "BTC", call_price, t)
    assert ex.margin_book(trader)["zone"] == 2

    # a bid to sell into, then the index falls under the liquidation line (110%)
    assert ex.place_order(maker, "BTC-USDT", "buy", "0.2", price="49000").ok
    crash = usd(49_400)
    level = 20_000_000 * crash // BTC * 10**6 // debt
    assert level < 1_100_000
    set_price(ex, "BTC", crash, t)
    record = wait_for(lambda: finished_liquidation(ex, trader))

    proceeds = usd(49_000) * 2 // 10                           # 0.2 BTC at the bid, no fee
    book = ex.margin_book(trader)
    assert book["debt"] == {"BTC": 0, "ETH": 0, "USDT": 0} and not book["liquidating"]
    assert book["available"] == {"BTC": 0, "ETH": 0, "USDT": proceeds - debt}   # the remainder is the user's
    assert record["repaid"] == {"USDT": debt} and record["interest_paid"] == {"USDT": debt - usd(9_000)}
    assert record["level_before_ppm"] == level and record["shortfall"] == {}
    assert record["fills"] == [{"market": "BTC-USDT", "price": usd(49_000), "quantity": 20_000_000, "side": 2}]
    assert record["account_hash"] != str(trader) and "account" not in record
    assert record["returned"] == {"USDT": proceeds - debt}
    pools = ex.lending_pools()["USDT"]
    assert pools["borrowed"] == 0 and pools["cash"] == usd(41_000) + debt       # the pool is whole, with interest
    stream = account_events(ex, trader)                        # notifications on the account's stream
    assert [e.zone for e in stream if type(e) is MarginLevelChanged][:3] == [1, 2, 3]
    stages = [e.stage for e in stream if type(e) is LiquidationUpdate]
    assert stages[0] == LiquidationStage.STARTED and stages[-1] == LiquidationStage.FINISHED
    assert LiquidationStage.ORDER in stages
    assert ex.audit()["ok"]


def test_rejections_leave_margin_state_untouched(ex):
    account, other = 201, 202
    open_funded(ex, account, USDT="1000")
    open_funded(ex, other, USDT="10")
    t = T0 + 30 * HOUR_NS
    ex.operator.accrue_interest(t)
    set_price(ex, "BTC", usd(50_000), t)
    assert ex.borrow(account, "USDT", "1").reason is Reason.MARGIN_NOT_ENABLED
    assert ex.enable_margin(account, "L1", "3x").ok
    assert ex.enable_margin(account).reason is Reason.MARGIN_ALREADY_ENABLED
    assert ex.enable_margin(other, "nobody").reason is Reason.UNKNOWN_USER_LEVEL
    assert ex.transfer_margin(account, "USDT", "1000").ok
    before = ex.margin_book(account), ex.balances(account), pool_money(ex)
    # L1 allows liabilities up to 1x equity: 1,000.000001 USDT is over the limit
    assert ex.borrow(account, "USDT", "1000.000001").reason is Reason.ABOVE_BORROW_LIMIT
    # more than the pool holds (nobody supplies BTC here): refused whole by the pool, never partly made up
    assert ex.lending_pools()["BTC"]["cash"] == 0
    assert ex.borrow(account, "BTC", "0.001").reason is Reason.POOL_INSUFFICIENT_LIQUIDITY
    assert ex.repay(account, "USDT", "1").reason is Reason.NOTHING_OWED
    assert ex.transfer_margin(account, "USDT", "1000.000001", to_margin=False).reason \
        is Reason.INSUFFICIENT_BALANCE
    assert ex.transfer_margin(account, "USDT", 0).reason is Reason.NON_POSITIVE_AMOUNT
    assert ex.transfer_margin(account, "DOGE", 1).reason is Reason.UNKNOWN_ASSET
    assert ex.borrow(account, "USDT", 1, market="NOPE-USDT").reason is Reason.UNKNOWN_MARKET
    assert (ex.margin_book(account), ex.balances(account), pool_money(ex)) == before


def test_repay_more_than_owed_takes_only_what_is_owed(ex):
    account = 301
    open_funded(ex, account, USDT="2000")
    t = T0 + 31 * HOUR_NS
    ex.operator.accrue_interest(t)
    assert ex.enable_margin(account, "L2", "3x").ok
    assert ex.transfer_margin(account, "USDT", "2000").ok
    assert ex.borrow(account, "USDT", "100").ok
    owed = ex.margin_book(account)["debt"]["USDT"]
    assert owed > usd(100)
    repaid = ex.repay(account, "USDT", "500")
    assert repaid.ok
    event = repaid.events[-1]
    assert (event.offered, event.taken, event.interest) == (usd(500), owed, owed - usd(100))
    book = ex.margin_book(account)
    assert book["debt"]["USDT"] == 0 and book["available"]["USDT"] == usd(2_100) - owed
    assert ex.transfer_margin(account, "USDT", book["available"]["USDT"], to_margin=False).ok


def test_margin_order_on_a_market_without_margin_is_refused(ex):
    account = 401
    open_funded(ex, account, USDT="100")
    assert ex.enable_margin(account).ok
    assert ex.transfer_margin(account, "USDT", "100").ok
    before = ex.margin_book(account), pool_money(ex)
    result = ex.margin_order(account, "ETH-USDT", "buy", "0.01", price="3000")   # not in margin.markets
    assert result.reason is Reason.MARGIN_NOT_ENABLED
    assert ex.margin_order(account, "NOPE-USDT", "buy", 1, price=1).reason is Reason.UNKNOWN_MARKET
    assert (ex.margin_book(account), pool_money(ex)) == before


def margin_long(ex: ExchangeClient, trader: int, maker: int, t: int, quantity: str, price: str,
                isolated: bool = False, level: str = "pro", tier: str = "10x", collateral: str = "1000") -> None:
    open_funded(ex, trader + 50_000, USDT="20000")                  # a lender, so the pool can lend
    assert ex.supply(trader + 50_000, "USDT", "20000").ok
    open_funded(ex, trader, USDT=collateral)
    assert ex.enable_margin(trader, level, tier).ok
    assert ex.transfer_margin(trader, "USDT", collateral, market="BTC-USDT" if isolated else "").ok
    assert ex.place_order(maker, "BTC-USDT", "sell", quantity, price=price).ok
    opened = ex.margin_order(trader, "BTC-USDT", "buy", quantity, price=price, tif="ioc", isolated=isolated)
    assert opened.status == "filled", opened


def test_gap_below_bankruptcy_is_covered_by_the_insurance_fund_and_the_pool_is_whole(ex):
    trader, maker = 501, 502
    t = T0 + 40 * HOUR_NS
    ex.operator.accrue_interest(t)
    set_price(ex, "BTC", usd(50_000), t)
    open_funded(ex, maker, BTC="10", USDT="100000")
    margin_long(ex, trader, maker, t, "0.2", "50000")
    debt = ex.margin_book(trader)["debt"]["USDT"]
    fund_before = ex.insurance_fund()
    pool_before = ex.lending_pools()["USDT"]
    assert ex.place_order(maker, "BTC-USDT", "buy", "0.2", price="44000").ok    # the gap: the only bid
    set_price(ex, "BTC", usd(44_500), t)
    record = wait_for(lambda: finished_liquidation(ex, trader))
    proceeds = usd(44_000) * 2 // 10
    shortfall = debt - proceeds
    assert shortfall > 0
    # 1% steps off 44,500: 44,055 finds no bid, 43,610 sells at the 44,000 bid
    assert [order[2] for order in record["orders"]] == [usd("44055"), usd("43610")]
    assert record["shortfall"] == {"USDT": shortfall} and record["repaid"] == {"USDT": debt}
    fund_after = ex.insurance_fund()
    assert fund_after["balance"]["USDT"] == fund_before["balance"]["USDT"] - shortfall
    assert fund_after["bad_debt"]["USDT"] == fund_before["bad_debt"]["USDT"] + shortfall
    pool = ex.lending_pools()["USDT"]
    assert pool["borrowed"] == pool_before["borrowed"] - debt and pool["cash"] == pool_before["cash"] + debt
    book = ex.margin_book(trader)
    assert book["available"] == {"BTC": 0, "ETH": 0, "USDT": 0} and book["level_ppm"] is None
    audit = ex.audit()
    assert audit["ok"], audit           # accounts, margin books, pools, fees and the fund balance


def test_short_is_liquidated_by_buying_the_borrowed_base_back(ex):
    supplier, trader, maker = 601, 602, 603
    t = T0 + 41 * HOUR_NS
    ex.operator.accrue_interest(t)
    set_price(ex, "BTC", usd(50_000), t)
    open_funded(ex, supplier, BTC="5")
    open_funded(ex, maker, BTC="10", USDT="1000000")
    open_funded(ex, trader, USDT="10000")
    assert ex.supply(supplier, "BTC", "5").ok
    assert ex.enable_margin(trader, "L3", "3x").ok
    assert ex.transfer_margin(trader, "USDT", "10000").ok
    assert ex.place_order(maker, "BTC-USDT", "buy", "0.3", price="50000").ok
    sold = ex.margin_order(trader, "BTC-USDT", "sell", "0.3", price="50000", tif="ioc")
    assert sold.status == "filled"
    book = ex.margin_book(trader)
    assert book["principal"]["BTC"] == 30_000_000 and book["available"]["USDT"] == usd(25_000)
    assert ex.lending_pools()["BTC"]["borrowed"] == book["debt"]["BTC"]
    set_price(ex, "BTC", usd(80_000), t)                 # 25,000 USDT against 24,000 owed: under 110%
    assert ex.place_order(maker, "BTC-USDT", "sell", "1", price="80000").ok     # the ask after the index: in its band
    record = wait_for(lambda: finished_liquidation(ex, trader))
    bought = sum(f["quantity"] for f in record["fills"])
    assert all(f["side"] == 1 and f["price"] == usd(80_000) for f in record["fills"])
    lot = 10_000
    assert bought == -(-book["debt"]["BTC"] // lot) * lot     # the debt, rounded up to whole lots
    book = ex.margin_book(trader)
    assert book["debt"]["BTC"] == 0 and ex.lending_pools()["BTC"]["borrowed"] == 0
    assert book["available"]["USDT"] == usd(25_000) - bought * usd(80_000) // BTC
    assert ex.audit()["ok"]


def test_isolated_liquidation_leaves_the_accounts_other_positions_untouched(ex):
    trader, maker = 701, 702
    t = T0 + 42 * HOUR_NS
    ex.operator.accrue_interest(t)
    set_price(ex, "BTC", usd(50_000), t)
    open_funded(ex, maker, BTC="10", USDT="1000000")
    margin_long(ex, trader, maker, t, "0.08", "50000", isolated=True, level="L3", tier="10x")  # 1,000 + 3,000 borrowed
    assert ex.deposit(trader, "USDT", "3000").ok
    assert ex.transfer_margin(trader, "USDT", "3000").ok                           # a cross book too
    assert ex.borrow(trader, "USDT", "1000").ok
    cross_before = ex.margin_book(trader)
    assert ex.place_order(maker, "BTC-USDT", "buy", "0.08", price="41000").ok
    set_price(ex, "BTC", usd(41_000), t)                 # 3,280 against ~3,000 owed: under 110%
    record = wait_for(lambda: finished_liquidation(ex, trader, "BTC-USDT"))
    assert record["mode"] == "isolated"
    isolated = ex.margin_book(trader, "BTC-USDT")
    assert isolated["debt"]["USDT"] == 0 and isolated["available"]["BTC"] == 0
    assert ex.margin_book(trader) == cross_before         # the cross book: not a unit moved
    assert finished_liquidation(ex, trader, "") is None
    assert ex.audit()["ok"]


def isolated_liquidations(ex: ExchangeClient) -> int:
    return sum(1 for r in ex.liquidations(10_000) if r["mode"] == "isolated")


def scrape(ex: ExchangeClient) -> dict:
    """Every sample of the exchange's one metrics endpoint: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families
    text = ray.get(ex.handles.metrics.scrape.remote())
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sample(samples: dict, name: str, **labels) -> float:
    """The sum over every actor (shard) of the samples with these labels."""
    return sum(value for (n, have), value in samples.items()
               if n == name and all(dict(have).get(k) == v for k, v in labels.items()))


def test_price_crash_moves_the_margin_level_histogram_and_the_liquidation_counters(ex):
    trader, maker = 801, 802
    t = T0 + 43 * HOUR_NS
    ex.operator.accrue_interest(t)
    set_price(ex, "BTC", usd(50_000), t)
    open_funded(ex, maker, BTC="10", USDT="1000000")
    margin_long(ex, trader, maker, t, "0.08", "50000", isolated=True, level="L3", tier="10x")   # level ~1.33
    set_price(ex, "BTC", usd(50_000), t)              # the next index tick re-values every book
    isolated = dict(market="BTC-USDT", mode="isolated")
    # actors push their samples every second: poll the endpoint gently until this tick's figures are there
    def opened_book_counted(s: dict) -> bool:                  # 1.33 sits in (1.3, 1.5]
        return sample(s, "exchange_margin_level_bucket", le="1.5", **isolated) \
            - sample(s, "exchange_margin_level_bucket", le="1.3", **isolated) >= 1

    wait_for(lambda: opened_book_counted(scrape(ex)), 60, 0.5)
    assert ex.place_order(maker, "BTC-USDT", "buy", "0.08", price="40000").ok
    set_price(ex, "BTC", usd(40_000), t)
    wait_for(lambda: finished_liquidation(ex, trader, "BTC-USDT"))
    set_price(ex, "BTC", usd(40_000), t)              # the next tick: no isolated book owes anything any more
    fund = ex.insurance_fund()["balance"]
    after = wait_for(lambda: (s := scrape(ex))
                     and sample(s, "exchange_liquidations_total", **isolated) == isolated_liquidations(ex)
                     and sample(s, "exchange_margin_level_count", **isolated) == 0 and s, 60, 0.5)
    assert sample(after, "exchange_insurance_fund_balance", asset="USDT") == fund["USDT"]
    assert sample(after, "exchange_liquidations_pending", mode="isolated") == 0


def test_margin_report_shows_pools_fund_and_liquidations_as_the_client_sees_them(ex):
    from ops.margin_report import format_margin_report, margin_report
    trader, maker = 901, 902
    t = T0 + 44 * HOUR_NS
    ex.operator.accrue_interest(t)
    set_price(ex, "BTC", usd(50_000), t)
    open_funded(ex, maker, BTC="10", USDT="1000000")
    margin_long(ex, trader, maker, t, "0.08", "50000", isolated=True, level="L3", tier="10x")
    assert ex.place_order(maker, "BTC-USDT", "buy", "0.08", price="40000").ok
    set_price(ex, "BTC", usd(40_000), t)
    wait_for(lambda: finished_liquidation(ex, trader, "BTC-USDT"))
    report = margin_report(ex, limit=3)
    assert report["pools"] == ex.lending_pools() and report["insurance_fund"] == ex.insurance_fund()
    assert report["liquidations"] == ex.liquidations(3) and report["liquidations"][-1]["account_hash"] \
        == account_hash(trader)
    text = format_margin_report(ex, report)
    usdt = report["pools"]["USDT"]
    assert f"{usdt['utilization_ppm'] / 10_000:.2f}%" in text
    for record in report["liquidations"]:
        assert f"#{record['n']} {record['account_hash']}" in text
    assert f" {trader} " not in text and "insurance fund: " in text
