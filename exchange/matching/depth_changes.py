"""Which price levels of a book changed since a given market sequence: the source of
the exact depth diffs a client keeps a local book from (``gateway/streams.py``).

The book notes each price whose level it changes (``BookSide.touched``: a set, so it
stays as small as the prices touched). Every read of the book (``MarketEngine.depth``,
``MarketEngine.depth_changes``) first *marks* the market's sequence: what was touched
since the last mark becomes one entry ``(seq, bid prices, ask prices)``. A reader that
last saw sequence ``S`` (a mark: every read marks) then gets the union of the entries
after ``S``. Each price is sent with its quantity now, so a level made and taken
between two reads is sent as gone: a client whose snapshot caught it drops it, which a
diff of two top-of-book views cannot do.

Nothing is added per command: the cost is one set insert per level changed, and the
bookkeeping happens at reads. The entries are bounded (``capacity``); a reader older
than the oldest kept entry, or older than the engine itself (a restarted market),
gets ``None`` and must start again from a snapshot: the gateway then leaves a gap in
``U``/``u``, Binance's sign to resynchronize.
"""
from __future__ import annotations

from collections import deque

CAPACITY = 4_096


class DepthChanges:
    __slots__ = ("entries", "floor")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.entries: deque[tuple[int, frozenset, frozenset]] = deque(maxlen=capacity)
        self.floor: int | None = None            # the earliest sequence a reader may ask from

    def mark(self, seq: int, book) -> None:
        """Close what the book touched up to ``seq`` into an entry."""
        bids, asks = book.bids.touched, book.asks.touched
        if self.floor is None:
            self.floor = seq                     # what came before the first read is not known
        elif bids or asks:
            entries = self.entries
            if len(entries) == entries.maxlen:
                self.floor = entries[0][0]       # the oldest entry falls out: its changes are lost
            entries.append((seq, frozenset(bids), frozenset(asks)))
        bids.clear()
        asks.clear()

    def since(self, seq: int, now: int) -> tuple[set[int], set[int]] | None:
        """The bid and ask prices touched after ``seq`` (up to the last mark, ``now``),
        or None when that is no longer known."""
        if self.floor is None or seq < self.floor or seq > now:
            return None
        bids: set[int] = set()
        asks: set[int] = set()
        for at, b, a in reversed(self.entries):
            if at <= seq:
                break
            bids |= b
            asks |= a
        return bids, asks
