"""Typed results the Python client returns, built from the domain's events.

A rejected result names its reason and says in one line what failed
(``Reason.explanation``): ``result.explanation``, and both its ``repr`` and
``str`` show it."""
from __future__ import annotations

from dataclasses import dataclass, fields

from exchange.messages.records import (AccountOpened, BalanceChanged, Borrowed, Fill, LendingRefused, MarginEnabled,
                                       MarginTransferred, OrderAccepted, OrderAmended, OrderBooked, OrderClosed,
                                       OrderRejected, PerpSettingsChanged, PerpTransferred, Repaid, Supplied,
                                       RiskAction, SupplyWithdrawn)
from exchange.core.reasons import CloseReason, Reason

SUCCESSES = frozenset((AccountOpened, MarginEnabled, Borrowed, Repaid, Supplied, SupplyWithdrawn, PerpTransferred,
                       PerpSettingsChanged))
STATUS_BY_CLOSE = {CloseReason.FILLED: "filled", CloseReason.CANCELLED: "cancelled",
                   CloseReason.EXPIRED_IOC: "expired", CloseReason.EXPIRED_STP: "expired",
                   CloseReason.REJECTED: "rejected"}


class _Explained:
    """What a rejected result shows: its reason's name, number and one-line explanation."""
    __slots__ = ()

    @property
    def explanation(self) -> str:
        """What failed, in one line ("" when nothing was rejected)."""
        return self.reason.explanation if self.reason is not None else ""

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)]
        if self.reason is not None:
            shown.append(f"explanation={self.explanation!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __str__(self) -> str:
        if self.reason is None:
            return repr(self)
        rule = f" [{self.rule}]" if self.rule else ""
        return f"rejected {self.reason.name} ({int(self.reason)}){rule}: {self.explanation}"

    @property
    def rule(self) -> str:
        """The risk rule a rejection cites (``R-4.2.5-cancel-ladder``...), or ""."""
        for event in self.events:
            if type(event) is OrderRejected and event.rule:
                return event.rule
        return ""

    @property
    def risk_actions(self) -> list:
        """The rules this command crossed (``RiskAction``: recorded, alerted or restricting)."""
        return [e for e in self.events if type(e) is RiskAction]


@dataclass(frozen=True, slots=True, repr=False)
class CommandResult(_Explained):
    """Outcome of an account or balance command (open, deposit, withdraw)."""
    request_id: object
    ok: bool
    reason: Reason | None
    available: int | None = None
    held: int | None = None
    events: tuple = ()


@dataclass(frozen=True, slots=True, repr=False)
class OrderResult(_Explained):
    """Outcome of place / cancel / amend: status, fills so far, reason if rejected.

    ``status`` is one of ``open``, ``filled``, ``cancelled``, ``expired``,
    ``rejected``, ``amended``. Quantities are base minor units.
    """
    request_id: object
    ok: bool
    status: str
    order_id: int
    reason: Reason | None
    fills: tuple[Fill, ...]
    remaining: int
    events: tuple

    @property
    def filled_quantity(self) -> int:
        return sum(f.quantity for f in self.fills)


def order_result(request_id, events: list, account_id: int) -> OrderResult:
    order_id, status, reason, remaining = 0, "rejected", None, 0
    fills = []
    for event in events:
        kind = type(event)
        if kind is OrderAccepted:
            order_id, status, remaining = event.order_id, "open", event.quantity
        elif kind is OrderRejected:
            reason, order_id = Reason(event.reason), event.order_id or order_id
            status = "rejected"
        elif kind is Fill:
            fills.append(event)
            if event.taker_account == account_id or event.maker_account == account_id:
                remaining -= event.quantity if event.taker_order_id == order_id else 0
        elif kind is OrderBooked and event.account_id == account_id:
            order_id, status, remaining = event.order_id, "open", event.remaining
        elif kind is OrderClosed and event.account_id == account_id and (not order_id or event.order_id == order_id):
            order_id, remaining = event.order_id, event.remaining
            status = STATUS_BY_CLOSE[CloseReason(event.reason)]
            if event.reason == CloseReason.REJECTED:
                reason = Reason(event.reject_reason)
        elif kind is OrderAmended and event.account_id == account_id:
            order_id, status, remaining = event.order_id, "amended", event.remaining
    return OrderResult(request_id, status != "rejected", status, order_id, reason, tuple(fills), remaining,
                       tuple(events))


def command_result(request_id, events: list) -> CommandResult:
    """Outcome of an account, balance, margin or lending command."""
    for event in events:
        kind = type(event)
        if kind is OrderRejected or kind is LendingRefused:
            return CommandResult(request_id, ok=False, reason=Reason(event.reason), events=tuple(events))
        if kind is BalanceChanged:
            return CommandResult(request_id, ok=True, reason=None, available=event.available, held=event.held,
                                 events=tuple(events))
        if kind is MarginTransferred:
            return CommandResult(request_id, ok=True, reason=None, available=event.margin_available,
                                 events=tuple(events))
    if any(type(e) in SUCCESSES for e in events):
        return CommandResult(request_id, ok=True, reason=None, events=tuple(events))
    return CommandResult(request_id, ok=False, reason=Reason.MALFORMED_COMMAND, events=tuple(events))
