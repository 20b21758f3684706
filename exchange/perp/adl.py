"""Auto-deleveraging (rulebook 4.2.3; seed 002): what neither the book nor the fund
absorbed is closed against opposite positions, by rank, at the bankruptcy price,
taking only what is needed.

- **Candidates** are the open positions on the other side of the bankrupt one,
  with positive equity (a position with none is being liquidated itself).
- **Rank**: profit ratio x effective leverage when in profit, profit ratio /
  effective leverage when not, where the profit ratio is unrealized PnL at the
  mark over the entry notional and the effective leverage is the notional at
  the mark over the equity behind the position. Highest first; ties go to the
  lower account id. Exact fractions: no float decides who is deleveraged.
- **Only what is needed**: walking the ranking, each candidate gives
  min(its lots, what is left) until nothing is left; nobody is taken from
  beyond that (no overshoot), and the plan says what is left if the
  candidates run out.
- **Self-dealing**: candidates linked to the bankrupt account (same owner or
  linked by an operator) are skipped and listed in the plan, so a fund loss
  can never be steered to a friend's position.
- **Quintiles**: every position's ADL rank as a quintile of its side (5: the
  first to be deleveraged, 1: the last), for the position view.

The plan is data: the caller applies the closes (``Position.fill`` at the
bankruptcy price for both sides) and records the plan in the fund's ledger
with every input, the candidates under pseudonymous ids (``pseudonym``: a
keyed hash, so the public can check the order without learning accounts).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Candidate:
    account_id: int
    lots: int                   # signed, opposite to the bankrupt position
    basis: int                  # signed entry notional
    equity: int                 # what stands behind it (isolated margin + PnL, or the cross account's)


@dataclass(frozen=True, slots=True)
class Take:
    account_id: int
    lots: int                   # absolute lots closed
    score: Fraction


@dataclass(frozen=True, slots=True)
class AdlPlan:
    bankruptcy_price: int
    wanted: int                 # absolute lots to close
    takes: tuple[Take, ...]
    skipped_linked: tuple[int, ...]
    left: int                   # lots no candidate could take (0 when fully closed)


def score(candidate: Candidate, mark: int, k: int) -> Fraction | None:
    """The candidate's ranking score (module docstring); None if it has no positive equity."""
    if candidate.equity <= 0 or candidate.lots == 0:
        return None
    unrealized = candidate.lots * mark * k - candidate.basis
    ratio = Fraction(unrealized, abs(candidate.basis))
    leverage = Fraction(abs(candidate.lots) * mark * k, candidate.equity)
    return ratio * leverage if unrealized > 0 else ratio / leverage


def ranking(candidates: list[Candidate], mark: int, k: int) -> list[tuple[Fraction, Candidate]]:
    """Candidates with positive equity, highest score first, ties to the lower account id."""
    scored = [(s, c) for c in candidates if (s := score(c, mark, k)) is not None]
    scored.sort(key=lambda pair: (-pair[0], pair[1].account_id))
    return scored


def plan(bankrupt_lots: int, bankruptcy_price: int, wanted: int, candidates: list[Candidate], mark: int,
         k: int, linked: frozenset = frozenset()) -> AdlPlan:
    """Which opposite positions close how many lots so that ``wanted`` lots of the
    bankrupt position (``bankrupt_lots``' sign) are closed at ``bankruptcy_price``."""
    opposite = [c for c in candidates if c.lots and (c.lots > 0) != (bankrupt_lots > 0)]
    takes, skipped, left = [], [], wanted
    for s, candidate in ranking(opposite, mark, k):
        if left == 0:
            break
        if candidate.account_id in linked:
            skipped.append(candidate.account_id)
            continue
        taken = min(abs(candidate.lots), left)
        takes.append(Take(candidate.account_id, taken, s))
        left -= taken
    return AdlPlan(bankruptcy_price, wanted, tuple(takes), tuple(skipped), left)


def allocate(ranked: list[tuple[Fraction, Candidate]], wanted: list[int]) -> list[list[tuple[int, int]]]:
    """Several bankrupt positions on one side closed against one ranking (``ranking``), in
    turn: each takes ``(account, lots)`` from the next ranked positions, only what it needs
    (``wanted``: absolute lots), the one before it having taken its own; a position may be
    split between two. The same as ``plan`` for each in turn over what the ones before left,
    without ranking again; one that finds nothing left gets no take."""
    out: list[list[tuple[int, int]]] = []
    place, left_in = 0, abs(ranked[0][1].lots) if ranked else 0
    for want in wanted:
        takes = []
        while want and place < len(ranked):
            taken = min(left_in, want)
            takes.append((ranked[place][1].account_id, taken))
            want -= taken
            left_in -= taken
            if not left_in:
                place += 1
                left_in = abs(ranked[place][1].lots) if place < len(ranked) else 0
        out.append(takes)
    return out


def quintile(place: int, ranked: int) -> int:
    """The quintile of the position at ``place`` (0: the first to go) of ``ranked``: 5 .. 1."""
    return 5 - place * 5 // ranked


def quintiles(candidates: list[Candidate], mark: int, k: int) -> dict[int, int]:
    """Each position's ADL quintile within its side: 5 first to go, 1 last; positions
    without positive equity get none."""
    out: dict[int, int] = {}
    for long_side in (True, False):
        ranked = ranking([c for c in candidates if c.lots and (c.lots > 0) == long_side], mark, k)
        n = len(ranked)
        for position, (_, candidate) in enumerate(ranked):
            out[candidate.account_id] = quintile(position, n)
    return out


@lru_cache(maxsize=1 << 16)
def pseudonym(key: bytes, account_id: int) -> str:
    """A keyed hash of the account id (HMAC-SHA256, 16 hex digits): stable for a key,
    meaningless without it."""
    return hmac.new(key, str(account_id).encode(), hashlib.sha256).hexdigest()[:16]
