"""The OTC desk in the shapes of Binance Convert (``/sapi/v1/convert/...``, issue 18): ask
for a firm quote, accept it, read its status. The desk (``actors/otc_actor.py``,
``exchange/otc``) prices, checks and settles; this module maps Binance's from/to
wording onto a pair and a side and shapes the answers.

- ``fromAsset`` -> ``toAsset`` names a pair the desk may quote and a side: from the quote
  asset to the base is a buy (``BTC-USDT``: USDT -> BTC), the other way a sell. Exactly
  one of ``fromAmount`` and ``toAmount`` is given: the desk quotes a base quantity or a
  quote notional.
- Trades are paid from the account's spot balance (``walletType=SPOT``, the desk's
  "crypto" method) and settle at acceptance (T+0); a quote lives the desk's
  ``quote_ttl_s`` (``validTime`` is not negotiable).
- ``quoteId`` and ``orderId`` are both the desk's RFQ id. ``ratio`` is ``toAsset`` per
  ``fromAsset``, ``inverseRatio`` the reverse, each at its asset's scale (rounded down).
- ``orderStatus``: ``PROCESS`` (quoted), ``ACCEPT_SUCCESS`` (accepted, settling),
  ``SUCCESS`` (settled), ``FAIL`` (expired or cancelled). Only the account's own RFQs are
  shown, and only while the desk holds them (``[otc] retain_s``).
"""
from __future__ import annotations

from aiohttp import web

from exchange.core.money import format_decimal, mul_div_floor
from exchange.core.reasons import Reason
from gateway.auth import Permission
from gateway.http import Refused, json_response, required
from gateway.products.common import asset, parse_amount, refused

DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
TEXT = {"type": "string"}
STATUS = {"quoted": "PROCESS", "accepted": "ACCEPT_SUCCESS", "paid": "ACCEPT_SUCCESS",
          "delivered": "ACCEPT_SUCCESS", "settled": "SUCCESS", "expired": "FAIL", "cancelled": "FAIL"}

ENDPOINTS = [
    ("post", "/sapi/v1/convert/getQuote", "USER_DATA", 20, "A firm quote from the OTC desk",
     [("fromAsset", TEXT, True), ("toAsset", TEXT, True), ("fromAmount", DECIMAL, False), ("toAmount", DECIMAL, False),
      ("walletType", {"type": "string", "enum": ["SPOT"]}, False)]),
    ("post", "/sapi/v1/convert/acceptQuote", "TRADE", 20, "Accept a quote before it expires",
     [("quoteId", TEXT, True)]),
    ("get", "/sapi/v1/convert/orderStatus", "USER_DATA", 10, "An RFQ of this account",
     [("orderId", TEXT, False), ("quoteId", TEXT, False)]),
]
WEIGHTS = {"convert.getQuote": 20, "convert.acceptQuote": 20, "convert.orderStatus": 10}


def routes(gateway) -> list:
    convert = Convert(gateway)
    return [web.post("/sapi/v1/convert/getQuote", convert.get_quote, name="convert.getQuote"),
            web.post("/sapi/v1/convert/acceptQuote", convert.accept_quote, name="convert.acceptQuote"),
            web.get("/sapi/v1/convert/orderStatus", convert.order_status, name="convert.orderStatus")]


class Convert:
    def __init__(self, gateway):
        self.gateway = gateway
        self.config = gateway.client.config
        self.pairs = {(spec.quote.name, spec.base.name): (spec, "buy") for spec in self.config.market_list}
        self.pairs.update({(spec.base.name, spec.quote.name): (spec, "sell") for spec in self.config.market_list})

    async def get_quote(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.READ)
        invalid = (-1130, "Data sent for parameter 'fromAsset' or 'toAsset' is not valid.")
        source = asset(self.config, params, "fromAsset", *invalid)
        target = asset(self.config, params, "toAsset", *invalid)
        found = self.pairs.get((source.name, target.name))
        if found is None:
            raise Refused(400, *invalid)
        spec, side = found
        if params.get("walletType", "SPOT") != "SPOT":
            raise Refused(400, -1130, "Data sent for parameter 'walletType' is not valid: SPOT only.")
        if ("fromAmount" in params) == ("toAmount" in params):
            raise Refused(400, -1102, "Exactly one of 'fromAmount' and 'toAmount' must be sent.")
        base_given = ("fromAmount" in params) == (side == "sell")      # the amount named is the base's
        name = "fromAmount" if "fromAmount" in params else "toAmount"
        amount = parse_amount(params[name], name, (spec.base if base_given else spec.quote).scale)
        answer = await self.gateway.client.handles.otc.inquire.remote(
            key.account_id, spec.name, side, amount if base_given else 0, 0 if base_given else amount, "crypto", "t+0")
        quote = _quote(answer)
        return json_response({"quoteId": quote["id"], **_amounts(spec, quote),
                              "validTimestamp": quote["expires_ns"] // 1_000_000})

    async def accept_quote(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.TRADE)
        answer = await self.gateway.client.handles.otc.accept.remote(key.account_id, required(params, "quoteId"))
        quote = _quote(answer)
        return json_response({"orderId": quote["id"], "createTime": self.gateway.clock_ms(),
                              "orderStatus": STATUS[answer["state"]]})

    async def order_status(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.READ)
        rfq_id = params.get("orderId") or params.get("quoteId")
        if not rfq_id:
            raise Refused(400, -1102, "Either orderId or quoteId must be sent.")
        rfq = await self.gateway.client.handles.otc.rfq.remote(rfq_id)
        if rfq is None or rfq["quote"]["account"] != key.account_id:
            raise refused(Reason.UNKNOWN_QUOTE)
        quote = rfq["quote"]
        spec = self.config.markets[quote["pair"]]
        history = rfq.get("history") or [{"ts_ns": 0}]
        return json_response({"orderId": quote["id"], "orderStatus": STATUS[rfq["state"]], **_amounts(spec, quote),
                              "createTime": history[0]["ts_ns"] // 1_000_000})


def _quote(answer: dict) -> dict:
    """The desk's quote from its answer, or the refusal for its reason."""
    if not answer.get("ok"):
        raise refused(Reason[answer["reason"]])
    return answer["quote"]


def _amounts(spec, quote: dict) -> dict:
    """fromAsset/toAsset, their amounts and the two ratios of a quote (minor units inside)."""
    base, quote_asset = spec.base, spec.quote
    price = quote["price"]                                        # quote minor units per whole base
    base_per_quote = format_decimal(mul_div_floor(10 ** quote_asset.scale, 10 ** base.scale, price), base.scale)
    per_base = format_decimal(price, quote_asset.scale)
    quantity, notional = format_decimal(quote["quantity"], base.scale), format_decimal(quote["notional"],
                                                                                      quote_asset.scale)
    if quote["side"] == "buy":
        return {"fromAsset": quote_asset.name, "fromAmount": notional, "toAsset": base.name, "toAmount": quantity,
                "ratio": base_per_quote, "inverseRatio": per_base}
    return {"fromAsset": base.name, "fromAmount": quantity, "toAsset": quote_asset.name, "toAmount": notional,
            "ratio": per_base, "inverseRatio": base_per_quote}
