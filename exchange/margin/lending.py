"""Lending pools: the kinked borrow-rate curve, the hourly cumulative interest
index, and ``LendingEngine``, the pools the LendingPoolActor runs. Pure integers.

Rates are parts per million per year. The curve is the one lending protocols
use, with utilization U in ppm:

    R(U) = base + slope1 * U / U_opt                         for U <= U_opt
    R(U) = base + slope1 + slope2 * (U - U_opt) / (1 - U_opt) for U >  U_opt

rounded up (the borrower owes it). Suppliers earn R * U * (1 - reserve),
rounded down; the reserve goes to the exchange's account (``[lending]
reserve_account``) as supply shares minted at each hour's turn, so the
exchange withdraws it like any supplier.

Interest is charged by the hour as centralised margin desks do: a started
hour counts as a whole hour, and the rate in force is read again at the start
of every hour. Accrual is O(1) per pool: a cumulative index (scaled by
``INDEX_SCALE``) grows by ``rate / HOURS_PER_YEAR`` each hour; a borrower's
debt is its scaled principal times the index, rounded up.

A started hour counts whole at both ends: a pool keeps ``prev_index`` (the
index when the current hour began) and a borrow's scaled principal is taken
at it, so the hour of the borrow is charged at once; the next hour's growth
is charged when that hour starts. The rate for an hour is read at its start
from the utilization then (borrowed / (cash + borrowed)).

``LendingEngine.handle(PoolRequest) -> [event]`` serves shards the way a
market engine does (events carry ``market="lending"`` and a ``seq``): borrow
(refused whole, ``POOL_INSUFFICIENT_LIQUIDITY``, when cash cannot cover it),
repay (interest first, then principal; only what is owed is taken, the rest
is handed back), supply and withdraw (shares of the pool's value: cash plus
debt), and accrue (turn the hour). Only an accrual turns the hour: the
``ts_ns`` of a borrow, repay or supply is recorded on its events but never
moves the pool's clock (a request stamped far ahead cannot charge everyone
else; issue 11), so a request is charged at the hour of the pool's last
accrual, which the pool actor's own clock keeps within a minute. Loans are
kept per borrower ``(account, book)``; the pool's ``borrowed_scaled`` is always
the sum of its loans' scaled principals (``check_invariants``).
"""
from __future__ import annotations

from dataclasses import dataclass

from exchange.messages.records import (LENDING, POOL_ACCRUE, POOL_BORROW, POOL_REPAY, POOL_SUPPLY, POOL_WITHDRAW,
                               POOL_WRITE_OFF, Borrowed, DebtWrittenOff, InterestAccrued, LendingRefused,
                               PoolRequest, Repaid, Supplied, SupplyWithdrawn)
from exchange.core.money import PPM
from exchange.core.reasons import Reason

HOURS_PER_YEAR = 8_760
HOUR_NS = 3_600 * 1_000_000_000
INDEX_SCALE = 10**18


@dataclass(frozen=True, slots=True)
class RateCurve:
    base_ppm: int
    slope1_ppm: int
    slope2_ppm: int
    optimal_utilization_ppm: int
    reserve_factor_ppm: int

    def __post_init__(self) -> None:
        if not 0 < self.optimal_utilization_ppm < PPM:
            raise ValueError("optimal utilization must be strictly between 0 and 100%")
        if min(self.base_ppm, self.slope1_ppm, self.slope2_ppm) < 0 or not 0 <= self.reserve_factor_ppm <= PPM:
            raise ValueError("rates must be non-negative and the reserve factor within 0..100%")

    def borrow_rate_ppm(self, utilization_ppm: int) -> int:
        """Yearly borrow rate at ``utilization_ppm`` (0..1e6), rounded up."""
        u = min(max(utilization_ppm, 0), PPM)
        optimal = self.optimal_utilization_ppm
        if u <= optimal:
            return self.base_ppm + -((-self.slope1_ppm * u) // optimal)
        return self.base_ppm + self.slope1_ppm + -((-self.slope2_ppm * (u - optimal)) // (PPM - optimal))

    def supply_rate_ppm(self, utilization_ppm: int) -> int:
        """Yearly supply rate: R * U * (1 - reserve), rounded down."""
        u = min(max(utilization_ppm, 0), PPM)
        return self.borrow_rate_ppm(u) * u * (PPM - self.reserve_factor_ppm) // (PPM * PPM)


def utilization_ppm(borrowed: int, supplied: int) -> int:
    """Borrowed / supplied in ppm (0 for an empty pool), rounded up."""
    if supplied <= 0:
        return 0
    return min(PPM, -((-borrowed * PPM) // supplied))


MAX_ACCRUAL_HOURS = 24 * 366            # hours one accrual may turn (a year)


def hour_of(ts_ns: int) -> int:
    return ts_ns // HOUR_NS


def grow_index(index: int, rate_ppm: int) -> int:
    """The index after one hour at ``rate_ppm`` per year (rounded up: debt never shrinks)."""
    return index + -((-index * rate_ppm) // (PPM * HOURS_PER_YEAR))


def borrow_debt_bound(amount: int, curve: RateCurve) -> int:
    """The most a borrow of ``amount`` can owe the moment the pool applies it: the
    started hour is charged at once, at no more than the curve's top rate, plus
    a unit for each of the two roundings up (scaled principal, then debt). Shards
    count a borrow in flight at this, against the account."""
    top = curve.base_ppm + curve.slope1_ppm + curve.slope2_ppm
    return -((-amount * (PPM * HOURS_PER_YEAR + top)) // (PPM * HOURS_PER_YEAR)) + 2


def scaled_principal(amount: int, index: int) -> int:
    """What a borrow of ``amount`` adds to a scaled balance at ``index`` (rounded up)."""
    return -((-amount * INDEX_SCALE) // index)


def debt_of(scaled: int, index: int) -> int:
    """A scaled balance's debt at ``index`` (rounded up: the borrower owes it)."""
    return -((-scaled * index) // INDEX_SCALE)


def remaining_scaled(rest: int, index: int) -> int:
    """The scaled balance that leaves exactly ``rest`` owed at ``index`` after a
    partial repayment (one unit more only where no scaled balance gives ``rest``
    exactly: rounding goes against the borrower, never against the pool)."""
    scaled = rest * INDEX_SCALE // index
    return scaled if debt_of(scaled, index) >= rest else scaled + 1


class Pool:
    """One asset's pool: cash, loans by borrower, supplier shares, the exchange's reserve."""

    __slots__ = ("asset", "curve", "cash", "borrowed_scaled", "principal_total", "index", "prev_index", "hour",
                 "rate_ppm", "loans", "shares", "total_shares", "reserve", "interest_total", "written_off",
                 "reserve_account")

    def __init__(self, asset: str, curve: RateCurve, reserve_account: int = 1):
        self.asset = asset
        self.curve = curve
        self.reserve_account = reserve_account   # the exchange's account: the reserve is minted to it as shares
        self.cash = 0                     # tokens in the pool
        self.borrowed_scaled = 0          # sum of the loans' scaled principals
        self.principal_total = 0          # sum of the loans' principals
        self.index = INDEX_SCALE          # borrow index including the current hour
        self.prev_index = INDEX_SCALE     # borrow index when the current hour began
        self.hour = -1                    # the current hour (-1: never used)
        self.rate_ppm = 0                 # borrow rate in force for the current hour
        self.loans: dict[tuple, list] = {}     # (account, book) -> [scaled, principal]
        self.shares: dict[int, int] = {}       # supplier account -> shares
        self.total_shares = 0
        self.reserve = 0                  # the exchange's part of accrued interest so far (reserve factor)
        self.interest_total = 0           # all interest accrued (reporting)
        self.written_off = 0              # bad debt the pool gave up on (its suppliers' loss)

    @property
    def borrowed(self) -> int:
        return debt_of(self.borrowed_scaled, self.index)

    def utilization(self) -> int:
        borrowed = self.borrowed
        return utilization_ppm(borrowed, self.cash + borrowed)

    def supplier_value(self) -> int:
        """What all supply shares are worth together (the exchange's included): cash + debt."""
        return self.cash + self.borrowed

    def accrue_to(self, hour: int) -> bool:
        """Turn the hour(s) up to ``hour``, at most ``MAX_ACCRUAL_HOURS`` at a time while
        anybody owes (a clock far ahead cannot wedge the pool: the next accruals
        catch up); return whether the index moved on."""
        if hour <= self.hour:
            return False
        if self.hour < 0 or not self.borrowed_scaled:     # nobody owes: one step to now, no interest
            self.hour = hour - 1
        hour = min(hour, self.hour + MAX_ACCRUAL_HOURS)
        while self.hour < hour:     # each hour re-reads the rate at its start
            self.hour += 1
            before = self.borrowed
            self.rate_ppm = self.curve.borrow_rate_ppm(utilization_ppm(before, self.cash + before))
            self.prev_index = self.index
            self.index = grow_index(self.index, self.rate_ppm)
            interest = self.borrowed - before
            self.interest_total += interest
            part = interest * self.curve.reserve_factor_ppm // PPM
            if part:                  # the reserve: shares worth ``part`` to the exchange's account (floor)
                value = self.supplier_value()
                minted = part if not self.total_shares or value <= part else \
                    part * self.total_shares // (value - part)
                self.shares[self.reserve_account] = self.shares.get(self.reserve_account, 0) + minted
                self.total_shares += minted
                self.reserve += part
        return True

    def loan(self, key: tuple) -> list:
        return self.loans.get(key) or [0, 0]

    def owed(self, key: tuple) -> int:
        return debt_of(self.loan(key)[0], self.index)

    def canonical(self) -> tuple:
        return (self.asset, self.cash, self.borrowed_scaled, self.principal_total, self.index, self.prev_index,
                self.hour, self.rate_ppm, tuple(sorted((k, tuple(v)) for k, v in self.loans.items())),
                tuple(sorted(self.shares.items())), self.total_shares, self.reserve, self.interest_total,
                self.written_off)

    def check_invariants(self) -> None:
        assert self.cash >= 0 and self.reserve >= 0, f"pool {self.asset}: negative cash or reserve"
        assert self.borrowed_scaled == sum(v[0] for v in self.loans.values()), f"pool {self.asset}: scaled sum"
        assert self.principal_total == sum(v[1] for v in self.loans.values()), f"pool {self.asset}: principal sum"
        assert self.total_shares == sum(self.shares.values()), f"pool {self.asset}: shares sum"
        assert all(v[0] > 0 and v[1] >= 0 for v in self.loans.values()), f"pool {self.asset}: empty loan kept"
        assert self.index >= self.prev_index >= INDEX_SCALE, f"pool {self.asset}: index went down"


class LendingEngine:
    """Every lendable asset's pool; ``handle(request) -> [event]`` with a per-engine ``seq``."""

    __slots__ = ("pools", "seq", "name")

    def __init__(self, curves: dict[str, RateCurve], reserve_account: int = 1):
        self.pools = {asset: Pool(asset, curve, reserve_account) for asset, curve in sorted(curves.items())}
        self.seq = 0
        self.name = LENDING

    def handle(self, r: PoolRequest) -> list:
        """Apply one shard request. Refusals (``LendingRefused``), in the order checked:
        NO_LENDING_POOL, NON_POSITIVE_AMOUNT, UNKNOWN_POOL_REQUEST, then
        POOL_INSUFFICIENT_LIQUIDITY (borrow, withdraw) and NO_SUPPLY (withdraw)."""
        if type(r) is not PoolRequest:
            raise TypeError(f"lending cannot handle {type(r).__name__}")
        events: list = []
        if r.kind == POOL_ACCRUE:
            for pool in self.pools.values():
                self._accrue(pool, r.ts_ns, events)
            return events
        pool = self.pools.get(r.asset)
        if pool is None:
            return self._refuse(r, Reason.NO_LENDING_POOL, events)
        if r.amount <= 0:
            return self._refuse(r, Reason.NON_POSITIVE_AMOUNT, events)
        handler = {POOL_BORROW: self._borrow, POOL_REPAY: self._repay, POOL_SUPPLY: self._supply,
                   POOL_WITHDRAW: self._withdraw, POOL_WRITE_OFF: self._write_off}.get(r.kind)
        if handler is None:
            return self._refuse(r, Reason.UNKNOWN_POOL_REQUEST, events)
        return handler(pool, r, events)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _accrue(self, pool: Pool, ts_ns: int, events: list) -> None:
        if pool.accrue_to(hour_of(ts_ns)):
            u = pool.utilization()
            events.append(InterestAccrued(LENDING, self._next(), ts_ns, 0, pool.asset, pool.hour, pool.index,
                                          pool.rate_ppm, pool.curve.supply_rate_ppm(u), u))

    def _refuse(self, r: PoolRequest, reason: Reason, events: list) -> list:
        events.append(LendingRefused(LENDING, self._next(), r.ts_ns, r.account_id, r.book, r.asset, r.ref, r.kind,
                                     r.amount, int(reason)))
        return events

    def _borrow(self, pool: Pool, r: PoolRequest, events: list) -> list:
        if r.amount > pool.cash:
            return self._refuse(r, Reason.POOL_INSUFFICIENT_LIQUIDITY, events)
        key = (r.account_id, r.book)
        loan = pool.loans.setdefault(key, [0, 0])
        scaled = scaled_principal(r.amount, pool.prev_index)     # the started hour is charged at once
        loan[0] += scaled
        loan[1] += r.amount
        pool.borrowed_scaled += scaled
        pool.principal_total += r.amount
        pool.cash -= r.amount
        events.append(Borrowed(LENDING, self._next(), r.ts_ns, r.account_id, r.book, r.asset, r.ref, r.amount,
                               loan[0], loan[1], pool.index))
        return events

    def _repay(self, pool: Pool, r: PoolRequest, events: list) -> list:
        key = (r.account_id, r.book)
        loan = pool.loans.get(key)
        owed = debt_of(loan[0], pool.index) if loan else 0
        taken = min(r.amount, owed)
        interest = min(taken, max(0, owed - loan[1])) if loan else 0
        if loan:
            scaled = loan[0] - remaining_scaled(owed - taken, pool.index) if taken < owed else loan[0]
            principal = taken - interest
            loan[0] -= scaled
            loan[1] -= principal
            pool.borrowed_scaled -= scaled
            pool.principal_total -= principal
            pool.cash += taken
            if not loan[0]:
                pool.principal_total -= loan[1]      # nothing owed: no principal can remain
                loan[1] = 0
                del pool.loans[key]
        after = pool.loans.get(key) or [0, 0]
        events.append(Repaid(LENDING, self._next(), r.ts_ns, r.account_id, r.book, r.asset, r.ref, r.amount, taken,
                             interest, after[0], after[1], pool.index))
        return events

    def _write_off(self, pool: Pool, r: PoolRequest, events: list) -> list:
        """Give a loan up: no money moves; the suppliers' shares are worth that much less."""
        key = (r.account_id, r.book)
        loan = pool.loans.pop(key, None)
        owed = 0
        if loan is not None:
            owed = debt_of(loan[0], pool.index)
            pool.borrowed_scaled -= loan[0]
            pool.principal_total -= loan[1]
            pool.written_off += owed
        events.append(DebtWrittenOff(LENDING, self._next(), r.ts_ns, r.account_id, r.book, r.asset, r.ref, owed, 0, 0,
                                     pool.index))
        return events

    def _supply(self, pool: Pool, r: PoolRequest, events: list) -> list:
        value = pool.supplier_value()
        minted = r.amount if not pool.total_shares or not value else r.amount * pool.total_shares // value
        pool.shares[r.account_id] = pool.shares.get(r.account_id, 0) + minted
        pool.total_shares += minted
        pool.cash += r.amount
        events.append(Supplied(LENDING, self._next(), r.ts_ns, r.account_id, r.asset, r.ref, r.amount,
                               pool.shares[r.account_id]))
        return events

    def _withdraw(self, pool: Pool, r: PoolRequest, events: list) -> list:
        held = pool.shares.get(r.account_id, 0)
        value = pool.supplier_value()
        burned = -((-r.amount * pool.total_shares) // value) if value else 0     # ceil: against the withdrawer
        if not held or not value or burned > held:
            return self._refuse(r, Reason.NO_SUPPLY, events)
        if r.amount > pool.cash:
            return self._refuse(r, Reason.POOL_INSUFFICIENT_LIQUIDITY, events)
        pool.shares[r.account_id] = held - burned
        if not pool.shares[r.account_id]:
            del pool.shares[r.account_id]
        pool.total_shares -= burned
        pool.cash -= r.amount
        events.append(SupplyWithdrawn(LENDING, self._next(), r.ts_ns, r.account_id, r.asset, r.ref, r.amount,
                                      pool.shares.get(r.account_id, 0)))
        return events

    # ---- views and self-checks ------------------------------------------------
    def supplier_balance(self, account_id: int, asset: str) -> int:
        """What an account's supply is worth now (floor)."""
        pool = self.pools[asset]
        shares = pool.shares.get(account_id, 0)
        return shares * pool.supplier_value() // pool.total_shares if shares else 0

    def cash(self) -> dict[str, int]:
        return {asset: pool.cash for asset, pool in self.pools.items()}

    def view(self) -> dict:
        out = {}
        for asset, p in self.pools.items():
            u = p.utilization()
            out[asset] = {"cash": p.cash, "borrowed": p.borrowed, "principal": p.principal_total,
                          "supplied": p.cash + p.borrowed, "utilization_ppm": u, "borrow_rate_ppm": p.rate_ppm,
                          "supply_rate_ppm": p.curve.supply_rate_ppm(u), "index": p.index, "hour": p.hour,
                          "reserve": p.reserve, "interest_total": p.interest_total, "written_off": p.written_off,
                          "loans": len(p.loans),
                          "suppliers": len(p.shares)}
        return out

    def check_invariants(self) -> None:
        for pool in self.pools.values():
            pool.check_invariants()

    def canonical(self) -> tuple:
        return (self.seq, tuple(p.canonical() for p in self.pools.values()))
