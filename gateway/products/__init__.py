"""The account products over HTTP (issue 18), one section of the API (``gateway/http.py``)
made of one module per product, each in the shapes of its Binance counterpart:

| module | Binance's | what |
|---|---|---|
| ``margin`` | ``/sapi/v1/margin/...`` | borrow, repay, transfers, margin books, margin orders |
| ``perp`` | USD-M ``/fapi/...`` | positions, leverage, brackets, margin type, orders, wallet, mark, funding, income |
| ``convert`` | ``/sapi/v1/convert/...`` | the OTC desk: quote, accept, status |
| ``withdrawals`` | ``/sapi/v1/capital/withdraw/...`` | apply (withdraw permission), history |

``common`` holds what they share (parameters, refusals, sending a command).
"""
from __future__ import annotations

from gateway.products import convert, margin, perp, withdrawals

PRODUCTS = (margin, perp, convert, withdrawals)
ENDPOINTS = [row for product in PRODUCTS for row in product.ENDPOINTS]
WEIGHTS = {name: weight for product in PRODUCTS for name, weight in product.WEIGHTS.items()}


def routes(gateway) -> list:
    return [route for product in PRODUCTS for route in product.routes(gateway)]
