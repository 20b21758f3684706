"""What the account-product sections (margin, perpetuals, convert, withdrawals) share:
reading amounts, assets and flags from a request, refusing with a Binance code, and
sending one client command through the gateway's client.

Amounts are decimal strings parsed exactly at the asset's scale
(``exchange.core.money.parse_decimal``): too many decimals is -1111, anything that is not
a number -1100. What the exchange refuses comes back as its ``Reason`` and is answered
with ``gateway.errors.error``; nothing here decides whether an amount is acceptable.
"""
from __future__ import annotations

from actors.client.results import CommandResult, command_result
from exchange.core.money import MoneyFormatError, parse_decimal
from exchange.core.reasons import Reason
from gateway.errors import error
from gateway.http import Refused, required


def refused(reason: Reason, cancel: bool = False) -> Refused:
    """The refusal a request gets for the exchange's ``reason``."""
    status, body = error(reason, cancel)
    return Refused(status, body["code"], body["msg"])


def decimal(params: dict[str, str], name: str, scale: int) -> int:
    """The mandatory decimal parameter ``name`` in minor units at ``scale``."""
    return parse_amount(required(params, name), name, scale)


def parse_amount(text: str, name: str, scale: int) -> int:
    try:
        return parse_decimal(text, scale)
    except MoneyFormatError as exc:
        code = -1111 if "decimal places" in str(exc) else -1100
        raise Refused(400, code, f"Parameter '{name}' has too much precision or is not a number: {exc}.") from None
    except OverflowError:
        raise Refused(400, -1100, f"Parameter '{name}' is out of range.") from None


def asset(config, params: dict[str, str], name: str, code: int, msg: str):
    """The asset the mandatory parameter ``name`` names (its ``AssetSpec``), or ``code``."""
    spec = config.assets.get(required(params, name))
    if spec is None:
        raise Refused(400, code, msg)
    return spec


def flag(params: dict[str, str], name: str, default: bool = False) -> bool:
    """A Binance boolean parameter ("TRUE"/"FALSE", any case)."""
    value = params.get(name)
    if value is None:
        return default
    if value.upper() not in ("TRUE", "FALSE"):
        raise Refused(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return value.upper() == "TRUE"


def choice(params: dict[str, str], name: str, choices: dict, default=None):
    """The value ``choices`` maps the parameter ``name`` to (``default`` when absent)."""
    value = params.get(name)
    if value is None and default is not None:
        return default
    if value not in choices:
        raise Refused(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return choices[value]


async def command(gateway, cmd) -> CommandResult:
    """Send one account command; its result, or the refusal for its reason."""
    result = command_result(cmd.request_id, (await gateway.client.execute_async([cmd]))[0])
    if not result.ok:
        raise refused(result.reason)
    return result


SIDES = {"BUY": 1, "SELL": 2}                           # exchange.matching.orders.Side
TIME_IN_FORCE = {"GTC": 1, "IOC": 2, "FOK": 3, "GTX": 4}  # TimeInForce; GTX: post-only (Binance futures)
LIMIT, MARKET, POST_ONLY = 1, 2, 4


def order_terms(params: dict[str, str], spec, types: tuple[str, ...]) -> tuple[int, int, int, int, int]:
    """(side, order type, time in force, quantity, price) of a new order on ``spec``'s grid:
    ``LIMIT`` (with ``timeInForce``), ``MARKET`` and, among ``types``, ``LIMIT_MAKER`` (post-only)."""
    side = SIDES.get(required(params, "side"))
    if side is None:
        raise Refused(400, -1117, "Invalid side.")
    kind = required(params, "type")
    if kind not in types:
        raise Refused(400, -1116, "Invalid orderType.")
    tif = POST_ONLY if kind == "LIMIT_MAKER" else TIME_IN_FORCE.get(params.get("timeInForce", "GTC"))
    if tif is None:
        raise Refused(400, -1115, "Invalid timeInForce.")
    quantity = decimal(params, "quantity", spec.base.scale)
    price = decimal(params, "price", spec.quote.scale) if kind != "MARKET" else 0
    return side, MARKET if kind == "MARKET" else LIMIT, tif if kind != "MARKET" else 1, quantity, price
