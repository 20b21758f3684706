"""The states an RFQ moves through (``exchange.otc.rfq`` has the diagram), and which are final."""
from __future__ import annotations

from enum import IntEnum


class RfqState(IntEnum):
    QUOTED = 1
    ACCEPTED = 2
    PAID = 3
    DELIVERED = 4
    SETTLED = 5
    EXPIRED = 6
    CANCELLED = 7


FINAL = (RfqState.SETTLED, RfqState.EXPIRED, RfqState.CANCELLED)
