"""exchange.matching.depth_changes: a local book kept from one snapshot plus the touched
levels read after it always equals the market's book, whatever happened in between
and whoever else read it; what is no longer known is said, not guessed."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exchange.matching.depth_changes import DepthChanges
from exchange.matching.market import MarketEngine
from exchange.messages.records import AmendRequest, CancelRequest
from tests.exchange.matching.test_market import SPEC, submit
from tests.exchange.support import BUY, EXPIRE_MAKER, GTC, IOC, SELL

ALL = 1_000_000                                    # more levels than any book here has


def snapshot(market: MarketEngine) -> tuple[int, dict]:
    view = market.depth(ALL)
    return view["seq"], {"bids": {p: q for p, q, _ in view["bids"]}, "asks": {p: q for p, q, _ in view["asks"]}}


def apply(book: dict, change: dict) -> None:
    for side in ("bids", "asks"):
        for price, qty in change[side]:
            if qty:
                book[side][price] = qty
            else:
                book[side].pop(price, None)


command = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from([BUY, SELL]), st.integers(95, 105), st.integers(1, 5),
              st.sampled_from([GTC, GTC, IOC]), st.integers(1, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("amend"), st.integers(0, 40), st.sampled_from([0, 0, 0, *range(95, 106)]), st.integers(0, 6)),
    st.tuples(st.just("read")),                    # the follower reads its changes
    st.tuples(st.just("other")),                   # someone else reads the book (a REST snapshot)
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(command, min_size=30, max_size=150), st.floats(0, 1))
def test_a_snapshot_plus_the_changes_read_after_it_is_always_the_book(commands, where):
    market = MarketEngine(SPEC)
    start = int(where * len(commands))               # the follower's snapshot: anywhere in the stream
    ids, follower = [], None
    for step, cmd in enumerate(commands):
        if step == start:
            follower = snapshot(market)
        kind = cmd[0]
        if kind == "submit":
            _, side, price, qty, tif, account = cmd
            ids.append((len(ids) + 1, account))
            market.handle(submit(len(ids), account, side, price * 10_000, qty, tif=tif, stp=EXPIRE_MAKER))
        elif kind == "cancel" and ids:
            order_id, account = ids[cmd[1] % len(ids)]
            market.handle(CancelRequest(step, order_id, account, 0))
        elif kind == "amend" and ids:
            order_id, account = ids[cmd[1] % len(ids)]
            market.handle(AmendRequest(step, order_id, account, cmd[2] * 10_000, cmd[3], 1000, 0))
        elif kind == "other":
            market.depth(1)
        elif kind == "read" and follower is not None:
            seq, book = follower
            change = market.depth_changes(seq)
            assert change is not None and change["seq"] == market.seq
            apply(book, change)
            follower = (change["seq"], book)
            assert book == snapshot(market)[1]
            bids, asks = market.depth(1)["bids"], market.depth(1)["asks"]
            assert change["best"] == ([(p, q) for p, q, _ in bids], [(p, q) for p, q, _ in asks])


def test_a_level_made_and_taken_between_two_reads_is_sent_as_gone():
    market = MarketEngine(SPEC)
    market.handle(submit(1, 1, SELL, 1_000_000, 2))
    seq, book = snapshot(market)                       # the follower's last read
    market.handle(submit(2, 2, SELL, 990_000, 1))      # a better ask is made ...
    caught_seq, caught = snapshot(market)              # ... caught by a snapshot read in between ...
    market.handle(submit(3, 3, BUY, 990_000, 1))       # ... and taken
    change = market.depth_changes(caught_seq)
    assert (990_000 * SPEC.tick_minor, 0) in change["asks"]
    apply(caught, change)
    assert caught == snapshot(market)[1]
    assert len(market.depth_changes(seq)["asks"]) == 1          # the older reader gets it as gone too


def test_what_is_no_longer_known_is_none():
    market = MarketEngine(SPEC)
    market.handle(submit(1, 1, BUY, 1_000_000, 1))
    assert market.depth_changes(0) is None                         # changed before its first read
    seq = market.depth(1)["seq"]
    bid = [(1_000_000 * SPEC.tick_minor, SPEC.lot_minor)]
    assert market.depth_changes(seq) == {"market": SPEC.name, "seq": seq, "bids": [], "asks": [], "best": (bid, [])}
    assert market.depth_changes(seq + 1) is None                   # from the future (another life of the market)
    market.handle(submit(2, 1, BUY, 1_000_000, 1))
    restarted = MarketEngine(SPEC)
    restarted.seq = market.seq
    assert restarted.depth_changes(seq) is None                    # a restarted market knows nothing before it


def test_the_oldest_changes_fall_out_and_then_are_refused():
    changes = DepthChanges(capacity=2)
    market = MarketEngine(SPEC)
    market.changes = changes
    first = market.depth(1)["seq"]
    for i in range(3):
        market.handle(submit(i + 1, 1, BUY, 1_000_000 + i * 10_000, 1))
        market.depth(1)
    assert market.depth_changes(first) is None                     # its first entry fell out
    kept = market.depth_changes(changes.floor)["bids"]                # the two entries still kept
    assert [p for p, _ in kept] == [1_020_000 * SPEC.tick_minor, 1_010_000 * SPEC.tick_minor]
