"""The insurance fund's ledger: per-asset balance, deposits, bad debt, covers in flight.

Money enters the fund only by a recorded deposit (the seed capital from
``[insurance.initial]`` is one, an operator's top-up another) and leaves it
only by a cover: the liquidator decides to credit a book in liquidation with
what it still owes, and the fund is debited at that moment (the decision is
journaled before the ``CoverShortfall`` is sent), the amount recorded as bad
debt. Until the shard has applied the cover it is *in flight*; once applied
it is *credited* (and the shard counts it in ``MarginDesk.fund_in``). So at
every instant, per asset::

    deposited == balance + in flight + credited       (``check_invariants``)

and the exchange-wide audit counts ``balance + in flight`` as the fund's money
and ``deposited`` as an inflow. Pure and deterministic: no clock, no I/O.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Cover:
    """A cover decided and not yet applied by the shard (``request_id`` is its id there)."""
    request_id: str
    n: int                    # the liquidation's number
    shard: int
    account_id: int
    market: str
    asset: str
    amount: int

    def to_plain(self) -> list:
        return [self.request_id, self.n, self.shard, self.account_id, self.market, self.asset, self.amount]


class InsuranceFund:
    """Balances by asset name; every movement is one of ``deposit``, ``draw``, ``settle``."""

    def __init__(self, assets: list[str]):
        self.assets = list(assets)
        self.balance = dict.fromkeys(self.assets, 0)
        self.deposited = dict.fromkeys(self.assets, 0)
        self.bad_debt = dict.fromkeys(self.assets, 0)        # every cover decided, in flight or credited
        self.credited = dict.fromkeys(self.assets, 0)        # covers the shards applied
        self.in_flight: dict[str, Cover] = {}

    # ---- movements ---------------------------------------------------------------------
    def deposit(self, asset: str, amount: int) -> None:
        """Add capital (raises ValueError for an unknown asset or a non-positive amount)."""
        if asset not in self.balance or type(amount) is not int or amount <= 0:
            raise ValueError("unknown asset or non-positive amount")
        self.balance[asset] += amount
        self.deposited[asset] += amount

    def available(self, asset: str) -> int:
        return self.balance.get(asset, 0)

    def cover_amount(self, asset: str, owed: int) -> int:
        """What the fund pays towards ``owed``: min(owed, balance); 0 means write it off."""
        return max(0, min(owed, self.available(asset)))

    def draw(self, cover: Cover) -> None:
        """Debit a decided cover (bad debt) and keep it in flight until ``settle``."""
        assert cover.request_id not in self.in_flight, f"cover {cover.request_id} drawn twice"
        assert 0 < cover.amount <= self.balance[cover.asset], f"cover {cover} exceeds the fund"
        self.balance[cover.asset] -= cover.amount
        self.bad_debt[cover.asset] += cover.amount
        self.in_flight[cover.request_id] = cover

    def settle(self, request_id: str) -> None:
        """The shard applied the cover (a repeated settle changes nothing)."""
        cover = self.in_flight.pop(request_id, None)
        if cover is not None:
            self.credited[cover.asset] += cover.amount

    # ---- views and self-checks ---------------------------------------------------------
    def holdings(self) -> dict[str, int]:
        """Per asset: the fund's money that no book holds yet (balance + covers in flight)."""
        out = dict(self.balance)
        for cover in self.in_flight.values():
            out[cover.asset] += cover.amount
        return out

    def imbalance(self) -> dict[str, int]:
        """Per asset: deposited - balance - in flight - credited (all zero when sound)."""
        held = self.holdings()
        return {a: self.deposited[a] - held[a] - self.credited[a] for a in self.assets}

    def view(self) -> dict:
        return {"balance": dict(self.balance), "deposited": dict(self.deposited), "bad_debt": dict(self.bad_debt)}

    def check_invariants(self) -> None:
        assert min(self.balance.values(), default=0) >= 0, f"negative insurance fund {self.balance}"
        assert all(c.amount > 0 for c in self.in_flight.values()), "a cover in flight of nothing"
        bad = {a: v for a, v in self.imbalance().items() if v}
        assert not bad, f"insurance fund does not balance: {bad}"

    def canonical(self) -> tuple:
        return (tuple(sorted(self.balance.items())), tuple(sorted(self.deposited.items())),
                tuple(sorted(self.bad_debt.items())), tuple(sorted(self.credited.items())),
                tuple(tuple(c.to_plain()) for _, c in sorted(self.in_flight.items())))

    def state_hash(self) -> str:
        return hashlib.sha256(repr(self.canonical()).encode()).hexdigest()

    # ---- plain data ----------------------------------------------------------------------
    def to_plain(self) -> dict:
        return {"format": FORMAT, "balance": dict(self.balance), "deposited": dict(self.deposited),
                "bad_debt": dict(self.bad_debt), "credited": dict(self.credited),
                "in_flight": [c.to_plain() for _, c in sorted(self.in_flight.items())]}

    @classmethod
    def from_plain(cls, assets: list[str], state: dict) -> "InsuranceFund":
        if state.get("format") != FORMAT:
            raise ValueError(f"insurance fund state format {state.get('format')!r}, this code reads {FORMAT}")
        fund = cls(assets)
        for name in ("balance", "deposited", "bad_debt", "credited"):
            getattr(fund, name).update(state[name])
        fund.in_flight = {c[0]: Cover(*c) for c in state["in_flight"]}
        return fund
