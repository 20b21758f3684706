"""exchange.core.money: exact decimal parsing/formatting, int64 bounds, rounding helpers."""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from exchange.core.money import (INT64_MAX, MoneyFormatError, check_int64, format_decimal, mul_div_ceil,
                            mul_div_floor, parse_decimal)

INT64_MIN = -(2**63)
int64s = st.integers(min_value=INT64_MIN, max_value=2**63 - 1)
scales = st.integers(min_value=0, max_value=18)
SETTINGS = settings(max_examples=300, deadline=None, database=None)


def decimal_text(value: int, scale: int) -> str:
    """Independent formatter: Decimal arithmetic with enough precision."""
    with localcontext() as ctx:
        ctx.prec = 60
        return f"{Decimal(value).scaleb(-scale):.{scale}f}"


@SETTINGS
@given(int64s, scales)
def test_format_then_parse_with_any_int64_round_trips(value, scale):
    text = format_decimal(value, scale)
    assert text == decimal_text(value, scale)
    assert parse_decimal(text, scale) == value


@SETTINGS
@given(st.data(), scales)
def test_parse_with_at_most_scale_decimals_matches_decimal_arithmetic(data, scale):
    whole = data.draw(st.integers(min_value=0, max_value=10**(18 - scale) - 1))
    frac_digits = data.draw(st.integers(min_value=0, max_value=scale))
    frac = data.draw(st.text("0123456789", min_size=frac_digits, max_size=frac_digits))
    sign = data.draw(st.sampled_from(["", "-", "+"]))
    text = f"{sign}{whole}.{frac}" if frac_digits else f"{sign}{whole}"
    expected = Decimal(text).scaleb(scale)
    assert expected == expected.to_integral_value()
    value = parse_decimal(text, scale)
    assert value == int(expected)
    assert Decimal(format_decimal(value, scale)) == Decimal(text)


@SETTINGS
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=8),
       st.integers(min_value=1, max_value=9), st.integers(min_value=0, max_value=3))
def test_parse_with_excess_decimals_refuses(whole, scale, last_digit, trailing_zeros):
    text = f"{whole}." + "0" * scale + str(last_digit) + "0" * trailing_zeros
    with pytest.raises(MoneyFormatError):
        parse_decimal(text, scale)


@pytest.mark.parametrize("text,scale,expected", [
    ("1.50", 1, 15),            # trailing zeros beyond the scale are exact, not excess
    ("0.000", 0, 0),
    ("  42  ", 2, 4200),
    (".5", 1, 5),
    ("-0.01", 2, -1),
    ("+7", 0, 7),
])
def test_parse_with_exact_representations_accepts(text, scale, expected):
    assert parse_decimal(text, scale) == expected


@pytest.mark.parametrize("text", ["", " ", ".", "-", "+", "abc", "1e5", "1.2.3", "--1", "+-1", "1,5",
                                  "1 000", "1_000", "0x10", "1.-5", "1. 5", "nan", "inf",
                                  "\u00b2",          # superscript two: str.isdigit() but not a number
                                  "\uff11",          # full-width one
                                  "1.\u0663"])       # Arabic-Indic digit three
def test_parse_with_malformed_text_refuses(text):
    with pytest.raises(MoneyFormatError):
        parse_decimal(text, 4)


@pytest.mark.parametrize("value", [1.5, 1, None, b"1", Decimal("1")])
def test_parse_with_non_string_refuses(value):
    with pytest.raises(MoneyFormatError):
        parse_decimal(value, 2)


@SETTINGS
@given(st.text(alphabet="0123456789.-+ e_\u00b2\u0663\uff11", max_size=14) | st.text(max_size=8),
       st.integers(min_value=0, max_value=8))
def test_parse_with_arbitrary_text_returns_exact_int_or_refuses(text, scale):
    try:
        value = parse_decimal(text, scale)
    except (MoneyFormatError, OverflowError):
        return
    assert type(value) is int and text.strip().isascii()
    assert Decimal(text.strip()) * 10**scale == value   # accepted text means exactly this number


def test_parse_with_int64_bounds_accepts_edges_and_refuses_beyond():
    assert parse_decimal(str(INT64_MAX), 0) == 2**63 - 1
    assert parse_decimal(str(-(2**63)), 0) == -(2**63)
    assert parse_decimal("92233720368.54775807", 8) == 2**63 - 1
    with pytest.raises(OverflowError):
        parse_decimal(str(2**63), 0)
    with pytest.raises(OverflowError):
        parse_decimal(str(-(2**63) - 1), 0)
    with pytest.raises(OverflowError):
        parse_decimal("92233720368.54775808", 8)


@SETTINGS
@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_check_int64_with_any_int_accepts_exactly_the_signed_64_bit_range(value):
    if INT64_MIN <= value <= 2**63 - 1:
        assert check_int64(value) == value
    else:
        with pytest.raises(OverflowError):
            check_int64(value)


big = st.integers(min_value=-(2**70), max_value=2**70)
positive = st.integers(min_value=1, max_value=2**40)


@SETTINGS
@given(big, big, positive)
def test_mul_div_floor_with_any_operands_equals_fraction_floor(a, b, c):
    assert mul_div_floor(a, b, c) == math.floor(Fraction(a * b, c))


@SETTINGS
@given(big, big, positive)
def test_mul_div_ceil_with_any_operands_equals_fraction_ceil(a, b, c):
    assert mul_div_ceil(a, b, c) == math.ceil(Fraction(a * b, c))


@SETTINGS
@given(big, big, positive)
def test_mul_div_floor_and_ceil_with_inexact_quotient_differ_by_one(a, b, c):
    exact = (a * b) % c == 0
    assert mul_div_ceil(a, b, c) - mul_div_floor(a, b, c) == (0 if exact else 1)


def test_format_decimal_with_small_and_negative_values_pads_with_zeros():
    assert format_decimal(-5, 2) == "-0.05"
    assert format_decimal(5, 0) == "5"
    assert format_decimal(0, 3) == "0.000"
    assert format_decimal(123456789, 8) == "1.23456789"
