"""exchange.accounts.product: a product plugs into the shard and is called only at the
named points (commands, link events, withdrawals, totals, hold check, state hash);
the venue's shard has the margin desk plugged in; a shard without it is spot only."""
from __future__ import annotations

from typing import NamedTuple

import pytest

from exchange.accounts.pricing import NO_PRICES
from exchange.accounts.shard import AccountShard
from exchange.core.reasons import Reason
from exchange.margin.desk import MARGIN_COMMANDS, MarginDesk
from exchange.messages.records import Deposit, EnableMargin, OpenAccount, OrderRejected, SupplyToPool, Withdraw
from exchange.perp.desk import PerpDesk
from exchange.venue import new_shard
from tests.exchange.support import ALICE, CONFIG


class Probed(NamedTuple):
    """An event on the fake product's link."""
    market: str
    seq: int


class FakeProduct:
    """A hand-written product: records what the shard hands it."""
    name = "probe"
    commands = frozenset((EnableMargin,))
    links = ("probe-link",)
    wallet_type = None

    def __init__(self, block: Reason | None = None):
        self.block = block
        self.seen: list = []
        self.shard = None

    def attach(self, shard) -> None:
        self.shard = shard

    def apply(self, cmd, context):
        self.seen.append(cmd)
        self.shard.followups.append(("probe-link", "follow-up"))
        return ["applied"], None

    def apply_event(self, event) -> list:
        self.seen.append(event)
        return [event]

    def order_closed(self, record, ts_ns: int) -> None:
        raise AssertionError("funds no orders")

    def withdrawal_block(self, account_id: int, prices):
        return self.block

    def wallets(self):
        return ()

    def totals(self) -> list[int]:
        return [1] * len(CONFIG.assets)

    def check_invariants(self) -> None:
        self.seen.append("checked")

    def canonical(self) -> tuple:
        return ("probe", len(self.seen))


def funded_shard(product: FakeProduct) -> AccountShard:
    shard = AccountShard(CONFIG)
    shard.plug(product)
    shard.apply_client(OpenAccount("o", 0, ALICE))
    shard.apply_client(Deposit("d", 0, ALICE, "USDT", 100))
    return shard


def test_plugged_product_with_its_command_applies_it_and_queues_its_follow_ups():
    product = FakeProduct()
    shard = funded_shard(product)
    command = EnableMargin("m", 0, ALICE)
    assert shard.apply_client(command) == (["applied"], None)
    assert product.seen == [command] and shard.probe is product and shard.products == {"probe": product}
    assert shard.take_followups() == [("probe-link", "follow-up")] and shard.take_followups() == ()


def test_plugged_product_with_its_link_gets_each_event_once_in_seq_order():
    product = FakeProduct()
    shard = funded_shard(product)
    assert shard.apply_market(Probed("probe-link", 1)) == [Probed("probe-link", 1)]
    assert shard.apply_market(Probed("probe-link", 1)) == []          # a repeated delivery changes nothing
    assert product.seen == [Probed("probe-link", 1)] and shard.market_seq["probe-link"] == 1


def test_plugged_product_with_a_block_refuses_spot_withdrawals_with_its_reason():
    shard = funded_shard(FakeProduct(Reason.BELOW_INITIAL_MARGIN_LEVEL))
    assert shard.apply_client(Withdraw("w", 0, ALICE, "USDT", 1), NO_PRICES)[0] == \
        [OrderRejected("w", ALICE, int(Reason.BELOW_INITIAL_MARGIN_LEVEL))]


def test_plugged_product_counts_in_totals_invariants_and_the_state_hash():
    product = FakeProduct()
    shard = funded_shard(product)
    usdt = CONFIG.assets["USDT"].index
    assert shard.totals()[usdt] == 101
    shard.check_invariants()
    assert product.seen == ["checked"]
    before = shard.state_hash()
    product.seen.append("changed")
    assert shard.canonical()[-1] == ("probe", 2) and shard.state_hash() != before


def test_plug_with_a_taken_name_or_command_fails():
    shard = AccountShard(CONFIG)
    shard.plug(FakeProduct())
    with pytest.raises(AssertionError, match="taken"):
        shard.plug(FakeProduct())
    other = FakeProduct()
    other.name = "other"
    with pytest.raises(AssertionError, match="commands taken"):
        shard.plug(other)


def test_shard_without_products_with_a_product_command_is_unknown_command():
    shard = AccountShard(CONFIG)
    shard.apply_client(OpenAccount("o", 0, ALICE))
    assert shard.apply_client(SupplyToPool("s", 0, ALICE, "USDT", 1)) == \
        ([OrderRejected("s", ALICE, int(Reason.UNKNOWN_COMMAND))], None)
    assert shard.products == {} and not hasattr(shard, "margin")


def test_venue_shard_with_the_margin_desk_plugged_hands_it_every_margin_command():
    shard = new_shard(CONFIG, 1, 4)
    assert type(shard.margin) is MarginDesk and shard.margin.shard is shard and shard.margin.ledger is shard.ledger
    assert shard.margin.followups is shard.followups
    assert {k for k, p in shard._command_products.items() if p is shard.margin} == MARGIN_COMMANDS
    assert (shard.shard_index, shard.shards) == (1, 4)


def test_venue_shard_with_perpetual_markets_plugs_the_perpetual_desk_after_the_margin_desk():
    shard = new_shard(CONFIG, 0, 2)
    assert type(shard.perp) is PerpDesk and shard.perp.shard is shard
    assert list(shard.products) == ["margin", "perp", "cashier", "otc"]   # the cashier with a risk rulebook, the
                                                                          # OTC crossings with a desk
    assert {k for k, p in shard._command_products.items() if p is shard.perp} == PerpDesk.commands
    assert set(shard.perp.links) == {"BTC-USDT-PERP"} and shard.market_seq["BTC-USDT-PERP"] == 0
