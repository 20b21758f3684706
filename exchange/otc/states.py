"""The states an RFQ moves through (``exchange.otc.rfq`` has the diagram), which are final, and the
rule id the desk's audit trail cites."""
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
RULE = "seed-000-otc"       # cited by every entry of the desk's audit trail (RFQs and hedges)
