"""Perpetual futures on real Ray with real LMDB: a perpetual market actor priced by index
updates, orders between accounts on different shards, marks and funding pushed to every
shard in seq order, conservation over the cluster, and a perpetual market and a shard
killed and recovered to the same state."""
from __future__ import annotations

from pathlib import Path

import pytest
import ray

from actors import bootstrap
from actors.capability import Role
from exchange.config import DEFAULT_CONFIG_PATH
from exchange.core.routing import shard_for
from exchange.perp.fund import EntryKind, verify
from tests.actors.conftest import accounts_on_shards, funded, settle, wait_until
from tests.actors.test_durability import (cluster, hashes_once_settled, shard_of, start_exchange,  # noqa: F401
                                          wait_for_restart)                                       # (a fixture)

PERP = "BTC-USDT-PERP"
HOUR_NS = 3600 * 10**9
FUNDING_HOURLY = 'position_limit = "5000"\nfunding_interval_s = 3600'     # the default market, hourly funding


@pytest.fixture
def exchange(cluster, tmp_path):
    path = tmp_path / "config.toml"
    text = DEFAULT_CONFIG_PATH.read_text()
    assert f"[perp.{PERP}]" in text and 'position_limit = "5000"' in text
    assert "fee_sweep_s = 5 " in text
    # the fee share is swept by hand here (a periodic sweep landing between two hashes would move them)
    path.write_text(text.replace('position_limit = "5000"', FUNDING_HOURLY, 1).replace("fee_sweep_s = 5 ",
                                                                                      "fee_sweep_s = 3600 ", 1))
    client = start_exchange(str(path), tmp_path / "data")
    yield client
    bootstrap.destroy_actors(client.handles)


def price(exchange, ts_ns: int, usdt: int = 40_000) -> int:
    """What the index actor sends a perpetual market, with the index capability; returns the
    mark once every shard has it (marks reach the shards as pushes, in seq order)."""
    market = exchange.handles.markets[PERP]
    capability = exchange.operator.keyring.capability(Role.INDEX)
    mark = ray.get(market.set_index_prices.remote(capability, {"BTC": usdt * 10**6}, ts_ns))
    wait_until(lambda: all(ray.get(s.perp_marks.remote()).get(PERP, (0, 0))[1] == mark
                           for s in exchange.handles.shards))
    return mark


def isolated_long_against_a_short(exchange, first: int, start: int) -> tuple[int, int]:
    """Alice (from ``first``): a 10x isolated long of 1 BTC at 40,000 (bankruptcy 36,000); Bob,
    on another shard, the short that sold it to her; marked at ``start``."""
    alice, bob, _ = accounts_on_shards(exchange, first)
    funded(exchange, alice, bob)
    for account in (alice, bob):
        assert exchange.transfer_perp(account, "USDT", "50000").ok
    price(exchange, start)
    assert exchange.set_margin_mode(alice, PERP, True).ok and exchange.set_perp_leverage(alice, PERP, 10).ok
    assert exchange.perp_order(bob, PERP, "sell", "1", price="40000").ok
    assert exchange.perp_order(alice, PERP, "buy", "1", price="40000").status == "filled"
    settle(exchange)
    return alice, bob


def test_perpetual_orders_marks_and_funding_across_shards(exchange):
    long_, short, _ = accounts_on_shards(exchange, 500)
    funded(exchange, long_, short)
    for account in (long_, short):
        assert exchange.transfer_perp(account, "USDT", "50000").ok
    refused = exchange.perp_order(long_, PERP, "buy", "1", price="40000")
    assert not refused.ok and refused.reason.name == "NO_MARK_PRICE"
    start = 1_000 * HOUR_NS
    assert price(exchange, start + 1) == 400_000
    assert exchange.perp_position(long_, PERP) is None
    assert exchange.perp_wallet(long_)["USDT"]["cash"] == 50_000 * 10**6
    assert exchange.set_perp_leverage(long_, PERP, 10).ok
    assert exchange.perp_order(short, PERP, "sell", "1", price="40000").ok
    buy = exchange.perp_order(long_, PERP, "buy", "1", price="40000")
    assert buy.ok and buy.status == "filled", buy
    settle(exchange)
    long_view = wait_until(lambda: exchange.perp_position(long_, PERP))
    short_view = wait_until(lambda: (v := exchange.perp_position(short, PERP)) and v["lots"] and v)
    assert long_view["lots"] == 1_000 and short_view["lots"] == -1_000
    assert long_view["entry_notional"] == -short_view["entry_notional"] == 1_000 * 400_000 * 100
    # an hour later the market settles funding (no premium: the interest, 0.01%) on both shards
    price(exchange, start + HOUR_NS + 5)
    funded_long = wait_until(lambda: (v := exchange.perp_position(long_, PERP))["funding"] and v)
    funded_short = wait_until(lambda: (v := exchange.perp_position(short, PERP))["funding"] and v)
    assert funded_long["funding"] == -funded_short["funding"] == 1_000 * 4_000     # 40,000 x 100 x 0.01% a lot
    assert exchange.perp_prices(PERP)["funding_rate"] == 10_000
    audit = settle(exchange)
    assert audit["ok"], audit
    # a tenth of each shard's fees goes to the fund (rounded down per shard), once
    view = exchange.operator.sweep_perp_fees()
    shares = [(e[3], dict(e[5])) for e in exchange.perp_fund_entries() if e[1] == EntryKind.FEE_SHARE]
    expected = {shard_for(a, 2): view_["fees"] // 10 for a, view_ in ((long_, funded_long), (short, funded_short))}
    assert {d["shard"]: amount for amount, d in shares} == expected and all(expected.values())
    assert view["balances"][PERP] == 1_000_000 * 10**6 + sum(expected.values())
    assert exchange.operator.sweep_perp_fees()["entries"] == view["entries"]       # nothing more to sweep
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(exchange.handles.liquidator.sweep_perp_fees.remote(b"forged"))       # operators only
    assert settle(exchange)["ok"]


def test_verify_offline_closes_an_adl_the_liquidator_left_half_done(exchange, tmp_path):
    """The liquidator stops for good between Bob's close and the liquidation's side of it (a
    hang, then every actor is killed): the store holds half an ADL. ``exchange verify`` closes
    the planned ADL as a restart would and finds every unit."""
    from ops.verify import verify as verify_store
    start = 4_000 * HOUR_NS
    alice, bob = isolated_long_against_a_short(exchange, 1_300, start)
    exchange.operator.arm_crash(exchange.handles.liquidator, "hang:liquidator.perp_send:AbsorbDeleverage")
    price(exchange, start + 10**9, usdt=35_000)
    wait_until(lambda: (v := exchange.perp_position(bob, PERP)) and v["lots"] == 0, 60)      # Bob's half
    assert exchange.perp_position(alice, PERP)["lots"] == 0                  # hers is the liquidation's
    bootstrap.destroy_actors(exchange.handles)
    report = verify_store(str(tmp_path / "data"), str(tmp_path / "config.toml"))
    assert report["ok"], report
    assert report["in_flight"]["adl_plans_closed"] == 1


def test_the_adl_quintile_a_position_shows_ranks_it_among_every_shard_s_positions(exchange):
    """Twelve longs on both shards with different wallets (so different effective leverage and
    ADL scores): the quintile each shows is its place among all twelve, not among its shard's."""
    from fractions import Fraction
    from exchange.perp import adl
    longs, maker = list(range(900, 912)), 950
    funded(exchange, maker, *longs)
    assert len({shard_for(a, 2) for a in longs}) == 2
    assert exchange.transfer_perp(maker, "USDT", "100000").ok
    for i, account in enumerate(longs):
        assert exchange.transfer_perp(account, "USDT", str(2_000 + 1_000 * i)).ok
    start = 3_000 * HOUR_NS
    price(exchange, start)
    assert exchange.perp_order(maker, PERP, "sell", "1.2", price="40000").ok
    for account in longs:
        assert exchange.perp_order(account, PERP, "buy", "0.1", price="40000").status == "filled"
    settle(exchange)
    price(exchange, start + 10**9, 40_400)                       # in profit: score = PnL% x leverage
    views = {a: wait_until(lambda a=a: (v := exchange.perp_position(a, PERP)) and v["adl_score"] and v)
             for a in longs}
    ranked = sorted(longs, key=lambda a: (-Fraction(*views[a]["adl_score"]), a))
    assert len({Fraction(*v["adl_score"]) for v in views.values()}) == 12
    assert {a: views[a]["adl_quintile"] for a in longs} == \
        {a: adl.quintile(place, 12) for place, a in enumerate(ranked)}
    assert views[ranked[0]]["adl_quintile"] == 5 and views[ranked[-1]]["adl_quintile"] == 1


def test_a_perpetual_market_and_a_shard_killed_recover_the_same_state_and_verify_offline(exchange, tmp_path):
    long_, short, _ = accounts_on_shards(exchange, 700)
    funded(exchange, long_, short)
    for account in (long_, short):
        assert exchange.transfer_perp(account, "USDT", "50000").ok
    price(exchange, 2_000 * HOUR_NS)
    assert exchange.perp_order(short, PERP, "sell", "0.5", price="40000").ok
    assert exchange.perp_order(long_, PERP, "buy", "0.2", price="40000").ok
    assert exchange.perp_order(short, PERP, "sell", "0.1", price="41000").ok      # rests
    settle(exchange)
    market, shard = exchange.handles.markets[PERP], shard_of(exchange, long_)
    expected = ray.get([market.state_hash.remote(), shard.state_hash.remote()])
    started = [ray.get(a.stats.remote())["started_ns"] for a in (market, shard)]
    for actor in (market, shard):
        ray.kill(actor, no_restart=False)
    for actor, at in zip((market, shard), started):
        wait_for_restart(actor, at)
    assert hashes_once_settled([market, shard], expected) == expected
    assert price(exchange, 2_000 * HOUR_NS + 10) == ray.get(market.price_view.remote())["mark"]
    assert exchange.perp_order(long_, PERP, "buy", "0.1", price="41000").status == "filled"
    assert settle(exchange)["ok"]
    bootstrap.destroy_actors(exchange.handles)
    from ops.verify import verify
    report = verify(str(tmp_path / "data"), str(tmp_path / "config.toml"))
    assert report["ok"], report


def test_the_insurance_fund_is_public_and_the_audit_recomputes_it_from_the_store(exchange, tmp_path):
    import lmdb
    import orjson
    import subprocess
    import sys
    from actors.durability.storage import pack_record
    from ops.insurance_audit import audit_insurance
    liquidator = exchange.handles.liquidator
    exchange.operator.top_up_perp_fund(PERP, 5_000 * 10**6)
    exchange.operator.top_up_perp_fund(PERP, 1 * 10**6)
    view = exchange.perp_fund()
    seed = 1_000_000 * 10**6                                                # the config's fund_initial
    assert view["balances"] == {PERP: seed + 5_001 * 10**6} and view["entries"] == 3
    assert len(view["rules_hash"]) == 64
    entries = exchange.perp_fund_entries()
    assert verify(entries, view["balances"], view["head"]) == []            # anyone can recompute it
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(liquidator.top_up_perp_fund.remote(b"forged", PERP, 1))     # operators only
    assert settle(exchange)["ok"]                                           # conservation counts the fund
    bootstrap.destroy_actors(exchange.handles)
    data = str(tmp_path / "data")
    report = audit_insurance(data)
    assert report["ok"] and report["entries"] == 3 and report["balances"] == {PERP: seed + 5_001 * 10**6}
    assert report["head"] == view["head"]
    env = lmdb.open(str(tmp_path / "data" / "liquidator"), max_dbs=4)
    journal = env.open_db(b"journal")
    with env.begin(write=True, db=journal) as txn:                           # raise the operator's first top-up
        for key, value in txn.cursor():                                      # (entry 2), with a valid record
            position = int.from_bytes(key, "big")                            # checksum: only the chain can tell
            record = orjson.loads(value[4:])
            if record[0] == 25 and record[1][0] == 2:
                record[1][3] = 50_000 * 10**6
                txn.put(key, pack_record(position, orjson.dumps(record)))
    env.close()
    tampered = audit_insurance(data)
    assert not tampered["ok"] and "entry 2: digest does not match its content" in tampered["problems"]
    cli = subprocess.run([sys.executable, "-m", "ops.cli", "audit", "insurance", "--data", data],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert cli.returncode == 1 and "digest does not match" in cli.stdout


@pytest.mark.parametrize("crash", [None, "liquidator.perp_send:AbsorbDeleverage"])
def test_a_position_due_on_ray_is_deleveraged_against_another_shard_at_the_bankruptcy_price(exchange, crash):
    """Alice (10x isolated long 1 BTC at 40,000: bankruptcy 36,000) and Bob, her short, on another
    shard; the mark falls below her liquidation price with no bid in the book: her shard hands
    her over, the liquidator takes the position over and deleverages Bob at exactly 36,000.
    With ``crash``, the liquidator dies between Bob's close and the liquidation's side of it
    (half an ADL done) and, restarted from its journal, completes it once."""
    start = 3_000 * HOUR_NS
    alice, bob = isolated_long_against_a_short(exchange, 900, start)
    assert exchange.perp_position(alice, PERP)["bankruptcy_price"] == 360_000
    bob_cash = wait_until(lambda: exchange.perp_position(bob, PERP)) and exchange.perp_wallet(bob)["USDT"]["cash"]
    fund_before = exchange.perp_fund()
    liquidator = exchange.handles.liquidator
    started = ray.get(liquidator.stats.remote())["started_ns"]
    if crash:
        exchange.operator.arm_crash(liquidator, crash)
    assert price(exchange, start + 10**9, usdt=35_000) <= 361_800      # at or under her liquidation price
    if crash:
        wait_for_restart(liquidator, started)
    done = wait_until(lambda: (v := exchange.perp_liquidations())["records"] and not v["open"] and v, 60)
    assert len(done["records"]) == 1 and done["records"][0]["fund"] == {PERP: 0}
    assert exchange.perp_position(alice, PERP)["lots"] == 0
    bob_after = wait_until(lambda: (v := exchange.perp_position(bob, PERP)) and v["lots"] == 0 and v)
    assert bob_after["realized"] == 4_000 * 10**6                      # (40,000 - 36,000) x 1, no fee
    assert exchange.perp_wallet(bob)["USDT"]["cash"] == bob_cash + 4_000 * 10**6
    fund = exchange.perp_fund()
    assert fund["balances"] == fund_before["balances"]                  # ADL at bankruptcy: the fund untouched
    entries = exchange.perp_fund_entries()
    kinds = [e[1] for e in entries[fund_before["entries"]:]]
    assert kinds == [EntryKind.ADL_START, EntryKind.ADL_END]             # once, restart or not
    assert dict(map(tuple, entries[-1][5]))["left"] == 0
    assert verify(entries, fund["balances"], fund["head"]) == []
    assert ray.get(liquidator.stats.remote())["started_ns"] != started if crash else True
    audit = settle(exchange)
    assert audit["ok"], audit
