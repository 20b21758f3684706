"""Fixed-point money: the one place where decimal text meets integers.

Amounts are Python ints in an asset's smallest unit (BTC scale 8 -> satoshi).
Everything inside the domain is an int; decimal strings are parsed and
formatted only here. Rounding is done by two named helpers, always against the
party that owes (``mul_div_ceil`` for what a user pays, ``mul_div_floor`` for
what a user receives).
"""
from __future__ import annotations

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
PPM = 1_000_000


class MoneyFormatError(ValueError):
    """A decimal string that cannot be represented exactly at the asked scale."""


def parse_decimal(text: str, scale: int) -> int:
    """Parse ``"12.345"`` into an int scaled by ``10**scale``; refuse excess digits.

    Raises MoneyFormatError for malformed text, more fractional digits than the
    scale allows (no silent rounding), or a value outside signed 64 bits.
    """
    if not isinstance(text, str):
        raise MoneyFormatError(f"expected a decimal string, got {type(text).__name__}")
    s = text.strip()
    negative = s.startswith("-")
    if negative or s.startswith("+"):
        s = s[1:]
    whole, dot, frac = s.partition(".")
    if not whole and not frac or not _digits(whole or "0") or (dot and frac and not _digits(frac)):
        raise MoneyFormatError(f"not a decimal number: {text!r}")
    frac = frac.rstrip("0")
    if len(frac) > scale:
        raise MoneyFormatError(f"{text!r} has more than {scale} decimal places")
    value = int(whole or "0") * 10**scale + int((frac or "0").ljust(scale, "0")[:scale] or "0")
    value = -value if negative else value
    check_int64(value)
    return value


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and other scripts' digits."""
    return text.isascii() and text.isdigit()


def format_decimal(value: int, scale: int) -> str:
    """Format a scaled int as a decimal string with exactly ``scale`` places."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}" if scale else f"{sign}{whole}"


def mul_div_floor(a: int, b: int, c: int) -> int:
    """Return floor(a * b / c) exactly (c > 0)."""
    return (a * b) // c


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """Return ceil(a * b / c) exactly (c > 0)."""
    return -((-a * b) // c)


def check_int64(value: int) -> int:
    """Return ``value`` if it fits in signed 64 bits; raise OverflowError otherwise."""
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise OverflowError(f"{value} does not fit in signed 64 bits")
    return value
