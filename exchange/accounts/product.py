"""The product seam: how a product (margin now; perpetuals and OTC next) plugs
into an ``AccountShard`` without the accounts layer importing it.

Products import ``accounts``, never the reverse (``tests/test_layering.py``).
They are chosen and composed in one place, ``exchange/venue.py: new_shard``
(called by the Engine, the snapshot and the shard actor), with
``AccountShard.plug(product)``. The shard then calls a product only at these
named points:

- ``commands``: the command types it applies. ``apply_client`` hands them to
  ``apply(cmd, context)`` through a dict built once at ``plug``, so the spot
  path pays one membership test, as it did before there was a seam;
- ``links``: the peers whose events it applies (margin: the lending pool;
  a perpetuals product: its perpetual markets). ``apply_market`` checks the
  event's ``seq`` as for any market, then hands it to ``apply_event``;
- ``wallet_type``: the kind of wallet it funds orders from (margin:
  ``MarginBook``; None if it funds none). An order held in one
  (``AccountShard.fund_order(cmd, terms, wallet)``) settles against it as a
  spot order settles against its account; when it closes the product is told
  (``order_closed``: margin repays debt with what the order acquired);
- ``withdrawal_block(account_id, prices)``: why a spot withdrawal must wait
  (a ``Reason``), or None;
- ``totals()``, ``wallets()``, ``check_invariants()``, ``canonical()``: what
  the shard's conservation totals, its hold check and its state hash include;
- follow-up requests: a product appends ``(link, request)`` to the shard's
  ``followups`` (it gets the list at ``attach``) and the caller sends them on
  behalf of the same request.

In return a product may use the shard's ``ledger``, ``config``,
``order_terms``, ``hold_terms``, ``fund_order`` and ``open_orders``. A
product is reachable as ``shard.<name>`` (``shard.margin``) and in
``shard.products``.
"""
from __future__ import annotations

from typing import Iterable, Protocol

from exchange.accounts.pricing import PriceContext
from exchange.core.reasons import Reason


class Wallet(Protocol):
    """Funds an order can be held in: a spot account, or a product's wallet."""
    account_id: int
    available: list[int]        # by asset index
    held: list[int]


class Product(Protocol):
    """What the shard calls on a product it was composed with (module docstring)."""
    name: str                   # the shard attribute it is reachable as
    commands: frozenset         # the command types it applies
    links: tuple[str, ...]      # the peers whose events it applies
    wallet_type: type | None    # the wallets it funds orders from; each has a ``market`` (the order's ``book``)

    def attach(self, shard) -> None:
        """Called once by ``AccountShard.plug``, after ``shard.<name>`` is set."""

    def apply(self, cmd, context: PriceContext) -> tuple[list, object | None]:
        """Apply one of ``commands``: (events, a request for a peer or None)."""

    def apply_event(self, event) -> list:
        """Apply an event from one of ``links``; return the client-visible events."""

    def order_closed(self, record, ts_ns: int) -> None:
        """An order held in one of this product's wallets closed (its hold is released)."""

    def withdrawal_block(self, account_id: int, prices) -> Reason | None:
        """Why ``account_id`` may not withdraw spot funds now, or None."""

    def wallets(self) -> Iterable[Wallet]:
        """Every wallet orders may be held in, for the shard's hold check."""

    def totals(self) -> list[int]:
        """Per asset index: everything the product holds on this shard."""

    def check_invariants(self) -> None:
        """Assert the product's own invariants."""

    def canonical(self) -> tuple:
        """The product's state as plain values, for the shard's state hash."""
