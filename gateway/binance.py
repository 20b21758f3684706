"""Binance's Spot API v3 shapes for our markets and answers (issue 18): symbols,
exchangeInfo, depth, orders and the account, all pure.

- A **symbol** is the market's name without its dash (``BTC-USDT`` -> ``BTCUSDT``).
- **Prices and quantities** travel as decimal strings at the assets' scales
  (``exchange.core.money``): parsed exactly on the way in, formatted exactly on the way
  out, never a float.
- **Order status** follows Binance: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED,
  REJECTED; ``orderId`` is ours; ``clientOrderId`` the client's or ``"x-<orderId>"``.
"""
from __future__ import annotations

from exchange.config import ExchangeConfig, MarketSpec
from exchange.core.money import format_decimal, mul_div_floor
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.perp.rules import perp_markets

ORDER_TYPES = ["LIMIT", "MARKET", "LIMIT_MAKER"]
TIME_IN_FORCE = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok"}
SIDES = {"BUY": "buy", "SELL": "sell"}


def order_kind(order_type: int, tif: int) -> tuple[str, str]:
    """Binance's ``type`` and ``timeInForce`` of an order placed with our ``OrderType`` and
    ``TimeInForce``: a post-only limit is LIMIT_MAKER, and (as Binance shows them) a market
    order and a LIMIT_MAKER say GTC."""
    if order_type == OrderType.MARKET:
        return "MARKET", "GTC"
    if tif == TimeInForce.POST_ONLY:
        return "LIMIT_MAKER", "GTC"
    return "LIMIT", TimeInForce(tif).name


def symbol(market: str) -> str:
    """A market's Binance symbol: its name without dashes (``BTC-USDT-PERP`` -> ``BTCUSDTPERP``)."""
    return market.replace("-", "")


def symbols(config: ExchangeConfig) -> dict[str, MarketSpec]:
    """Binance symbol -> our spot market."""
    return {symbol(spec.name): spec for spec in config.market_list}


def perp_symbols(config: ExchangeConfig) -> dict:
    """Binance symbol -> our perpetual market (``exchange.perp.rules.PerpMarket``)."""
    return {symbol(name): perp for name, perp in perp_markets(config).items()}


def exchange_info(config: ExchangeConfig, server_ms: int, rate_limits: list[dict]) -> dict:
    """``GET /api/v3/exchangeInfo``: every spot market with its filters (tick, lot, sizes)."""
    return {"timezone": "UTC", "serverTime": server_ms, "rateLimits": rate_limits, "exchangeFilters": [],
            "symbols": [_symbol(name, spec) for name, spec in symbols(config).items()]}


def _symbol(name: str, spec: MarketSpec) -> dict:
    base, quote = spec.base, spec.quote
    return {"symbol": name, "status": "TRADING", "baseAsset": base.name, "baseAssetPrecision": base.scale,
            "quoteAsset": quote.name, "quotePrecision": quote.scale, "quoteAssetPrecision": quote.scale,
            "orderTypes": ORDER_TYPES, "icebergAllowed": False, "ocoAllowed": False,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": ["SPOT"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": format_decimal(spec.tick_minor, quote.scale),
                 "maxPrice": "0", "tickSize": format_decimal(spec.tick_minor, quote.scale)},
                {"filterType": "LOT_SIZE", "minQty": format_decimal(spec.min_lots * spec.lot_minor, base.scale),
                 "maxQty": format_decimal(spec.max_lots * spec.lot_minor, base.scale),
                 "stepSize": format_decimal(spec.lot_minor, base.scale)}]}


def depth(spec: MarketSpec, view: dict) -> dict:
    """``GET /api/v3/depth`` from a market actor's depth view (minor units)."""
    price, qty = spec.quote.scale, spec.base.scale
    return {"lastUpdateId": view["seq"],
            "bids": [[format_decimal(p, price), format_decimal(q, qty)] for p, q, _ in view["bids"]],
            "asks": [[format_decimal(p, price), format_decimal(q, qty)] for p, q, _ in view["asks"]]}


def trades(spec: MarketSpec, fills: list) -> list[dict]:
    """``GET /api/v3/trades``: the market's recent trades, oldest first (``id``: its sequence)."""
    base, quote = spec.base.scale, spec.quote.scale
    return [{"id": f.seq, "price": format_decimal(f.price, quote), "qty": format_decimal(f.quantity, base),
             "quoteQty": format_decimal(mul_div_floor(f.price, f.quantity, 10 ** base), quote),
             "time": f.ts_ns // 1_000_000, "isBuyerMaker": f.taker_side == int(Side.SELL), "isBestMatch": True}
            for f in fills]


def price_ticker(symbol: str, spec: MarketSpec, view: dict) -> dict:
    """``GET /api/v3/ticker/price`` from a depth view: the last trade's price."""
    return {"symbol": symbol, "price": format_decimal(view["last_price"], spec.quote.scale)}


def book_ticker(symbol: str, spec: MarketSpec, view: dict) -> dict:
    """``GET /api/v3/ticker/bookTicker`` from a depth view: the best bid and ask ("0" when a side is empty)."""
    (bid, bid_qty, _), (ask, ask_qty, _) = (view["bids"] or [(0, 0, 0)])[0], (view["asks"] or [(0, 0, 0)])[0]
    price, qty = spec.quote.scale, spec.base.scale
    return {"symbol": symbol, "bidPrice": format_decimal(bid, price), "bidQty": format_decimal(bid_qty, qty),
            "askPrice": format_decimal(ask, price), "askQty": format_decimal(ask_qty, qty)}


def order(symbol: str, spec: MarketSpec, result, request: dict, transact_ms: int) -> dict:
    """A placed order's answer (``newOrderRespType`` FULL: with its fills), from the client's
    ``OrderResult`` and the request's parameters."""
    base, quote = spec.base.scale, spec.quote.scale
    filled = result.filled_quantity
    quote_qty = sum(mul_div_floor(f.price, f.quantity, 10 ** base) for f in result.fills)     # exact on the grid
    status = {"open": "PARTIALLY_FILLED" if filled else "NEW", "filled": "FILLED", "cancelled": "CANCELED",
              "expired": "EXPIRED"}.get(result.status, "REJECTED")
    return {"symbol": symbol, "orderId": result.order_id, "orderListId": -1,
            "clientOrderId": request.get("newClientOrderId") or f"x-{result.order_id}",
            "transactTime": transact_ms, "price": request.get("price", "0"), "origQty": request["quantity"],
            "executedQty": format_decimal(filled, base), "cummulativeQuoteQty": format_decimal(quote_qty, quote),
            "status": status, "timeInForce": request.get("timeInForce", "GTC"), "type": request["type"],
            "side": request["side"], "workingTime": transact_ms, "selfTradePreventionMode": "NONE",
            "fills": [{"price": format_decimal(f.price, quote), "qty": format_decimal(f.quantity, base),
                       "commission": format_decimal(f.taker_fee, quote), "commissionAsset": spec.quote.name,
                       "tradeId": f.seq} for f in result.fills]}


def open_order(symbol: str, spec: MarketSpec, view: dict) -> dict:
    """A resting order (the shard's view, minor units) as ``GET /api/v3/order`` shows it."""
    base, quote = spec.base.scale, spec.quote.scale
    executed = view["quantity"] - view["remaining"]
    kind, tif = order_kind(view["order_type"], view["tif"])
    return {"symbol": symbol, "orderId": view["order_id"], "orderListId": -1,
            "clientOrderId": view["client_order_id"] or f"x-{view['order_id']}",
            "price": format_decimal(view["price"], quote), "origQty": format_decimal(view["quantity"], base),
            "executedQty": format_decimal(executed, base), "status": "PARTIALLY_FILLED" if executed else "NEW",
            "timeInForce": tif, "type": kind, "side": Side(view["side"]).name, "isWorking": True}


def account(config: ExchangeConfig, balances: dict[str, tuple[int, int]], permissions: list[str],
            update_ms: int) -> dict:
    """``GET /api/v3/account``: free and locked per asset, decimal strings."""
    scale = {a.name: a.scale for a in config.asset_list}
    return {"makerCommission": 0, "takerCommission": 0, "canTrade": "trade" in permissions,
            "canWithdraw": "withdraw" in permissions, "canDeposit": True, "updateTime": update_ms,
            "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [{"asset": asset, "free": format_decimal(free, scale[asset]),
                          "locked": format_decimal(held, scale[asset])} for asset, (free, held) in balances.items()]}


def ticker_24h(symbol: str, spec: MarketSpec, view: dict) -> dict:
    """``GET /api/v3/ticker/24hr`` from a market actor's rolling window (``ticker_24h``).
    ``priceChangePercent`` has three places, truncated toward zero; ``weightedAvgPrice`` is
    the quote volume over the base volume, floored to the quote's scale."""
    base, quote = spec.base.scale, spec.quote.scale
    price = lambda value: format_decimal(value, quote)                           # noqa: E731
    change = view["close"] - view["open"]
    percent = abs(change) * 100_000 // view["open"] * (-1 if change < 0 else 1) if view["open"] else 0
    average = mul_div_floor(view["quote_volume"], 10 ** base, view["volume"]) if view["volume"] else 0
    (bid, bid_qty, _), (ask, ask_qty, _) = ((view["depth"]["bids"] or [(0, 0, 0)])[0],
                                            (view["depth"]["asks"] or [(0, 0, 0)])[0])
    return {"symbol": symbol, "priceChange": price(change), "priceChangePercent": format_decimal(percent, 3),
            "weightedAvgPrice": price(average), "prevClosePrice": price(view["prev_close"]),
            "lastPrice": price(view["close"] or view["depth"]["last_price"]),
            "lastQty": format_decimal(view["last_quantity"], base), "bidPrice": price(bid),
            "bidQty": format_decimal(bid_qty, base), "askPrice": price(ask), "askQty": format_decimal(ask_qty, base),
            "openPrice": price(view["open"]), "highPrice": price(view["high"]), "lowPrice": price(view["low"]),
            "volume": format_decimal(view["volume"], base), "quoteVolume": price(view["quote_volume"]),
            "openTime": view["open_ns"] // 1_000_000, "closeTime": view["close_ns"] // 1_000_000,
            "firstId": view["first_id"], "lastId": view["last_id"], "count": view["count"]}


def past_order(symbol: str, spec: MarketSpec, view: dict) -> dict:
    """An order as the history keeps it (``exchange.accounts.history``), open or closed, as
    ``GET /api/v3/allOrders`` and ``GET /api/v3/order`` show it."""
    base, quote = spec.base.scale, spec.quote.scale
    kind, tif = order_kind(view["order_type"], view["tif"])
    return {"symbol": symbol, "orderId": view["order_id"], "orderListId": -1,
            "clientOrderId": view["client_order_id"] or f"x-{view['order_id']}",
            "price": format_decimal(view["price"], quote), "origQty": format_decimal(view["quantity"], base),
            "executedQty": format_decimal(view["executed"], base),
            "cummulativeQuoteQty": format_decimal(view["quote_executed"], quote), "status": view["status"],
            "timeInForce": tif, "type": kind, "side": Side(view["side"]).name,
            "time": view["time_ns"] // 1_000_000, "updateTime": view["update_ns"] // 1_000_000,
            "isWorking": view["status"] in ("NEW", "PARTIALLY_FILLED"), "workingTime": view["time_ns"] // 1_000_000,
            "origQuoteOrderQty": "0", "selfTradePreventionMode": "NONE"}


def my_trade(symbol: str, spec: MarketSpec, trade: dict) -> dict:
    """One of the account's trades (the history's), as ``GET /api/v3/myTrades`` shows it; the
    commission is in the quote asset, negative for a maker's rebate."""
    base, quote = spec.base.scale, spec.quote.scale
    return {"symbol": symbol, "id": trade["trade_id"], "orderId": trade["order_id"], "orderListId": -1,
            "price": format_decimal(trade["price"], quote), "qty": format_decimal(trade["quantity"], base),
            "quoteQty": format_decimal(trade["quote_quantity"], quote),
            "commission": format_decimal(trade["fee"], quote), "commissionAsset": spec.quote.name,
            "time": trade["time_ns"] // 1_000_000, "isBuyer": trade["is_buyer"], "isMaker": trade["is_maker"],
            "isBestMatch": True}
