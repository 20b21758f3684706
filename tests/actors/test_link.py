"""Ordered exactly-once delivery over links whose messages may arrive out of order."""
from __future__ import annotations

from hypothesis import given, strategies as st

from actors.link import InboundLinks, OutboundLinks


@given(st.permutations(list(range(1, 30))), st.lists(st.integers(1, 29), max_size=20))
def test_inbound_link_with_shuffled_and_repeated_messages_applies_each_once_in_order(order, repeats):
    links, applied = InboundLinks(), []
    for number in order + repeats:
        links.receive("m", number, number, applied.append)
    assert applied == list(range(1, 30))
    assert links.backlog() == 0


def test_inbound_link_with_gap_buffers_until_the_gap_is_filled():
    links, applied = InboundLinks(), []
    links.receive("m", 2, "b", applied.append)
    links.receive("m", 3, "c", applied.append)
    assert applied == [] and links.backlog() == 2
    links.receive("m", 1, "a", applied.append)
    assert applied == ["a", "b", "c"]


def test_outbound_link_numbers_each_receiver_from_one():
    out = OutboundLinks()
    assert [out.next("a"), out.next("b"), out.next("a")] == [1, 1, 2]
