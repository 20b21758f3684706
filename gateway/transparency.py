"""The public transparency section (issue 18): the insurance funds and their hash chain,
every auto-deleveraging (ADL) with its inputs, the liquidations and the rules in force, as
JSON, and the page that shows them with a live book (``gateway/static/transparency.*``).

| endpoint | what |
|---|---|
| ``GET /fapi/v1/insuranceBalance`` | Binance's shape: each perpetual market's fund (``symbol`` for one) |
| ``GET /api/v1/public/insuranceFund`` | the perpetual funds (per market) and the margin fund (per asset), the chain's head and the server's check of it |
| ``GET /api/v1/public/insuranceFund/history`` | the perpetual funds' chained entries (``fromId``, ``limit``): each with its hash, the previous hash and the exact text hashed |
| ``GET /api/v1/public/adl`` | every ADL plan (``ADL_START`` entry) with its inputs and what it took (its ``ADL_END``) |
| ``GET /api/v1/public/liquidations`` | finished perpetual and spot-margin liquidations |
| ``GET /api/v1/public/rules`` | the hashes of the rules in force, each with the text it is the SHA-256 of |
| ``GET /transparency`` (``/`` redirects) | the page; ``/static/transparency.js``, ``.css`` |

Everything is security NONE. Amounts and prices are decimal strings at the assets' scales
(``format_decimal``), ratios decimal strings (ppm / 10^6), times milliseconds.

**Pseudonyms.** No account id is ever shown. The perpetual liquidator already publishes
its accounts as ``exchange.perp.adl.pseudonym``: the first 16 hex digits of
HMAC-SHA256 under the venue's ``[perp_fund] pseudonym_key`` of the account id. Those
names are inside the fund's hash chain (the ADL entries), so the gateway shows them as
they are: changing them would break the chain a reader verifies. The spot-margin
liquidator publishes ``account_hash``, an unkeyed SHA-256 of the account id, which anyone
can reverse by trying ids; the gateway shows instead the first 16 hex digits of
HMAC-SHA256 under the same key of that hash. So an account keeps one name per kind of
liquidation, and neither can be traced back without the key.

**The chain.** The gateway keeps the entries it has read (they never change) and reads
only the new ones; it checks them with ``exchange.perp.fund.verify`` against the balances
and head the fund publishes, and answers the result. Each entry carries ``body``, the
canonical text its digest covers after the previous digest, so a browser recomputes
``sha256(prevHash + body)`` itself.

**Rules.** The perpetual rules' hash and the risk rulebook's digest are the domain's
(``exchange.perp.rules.rules_hash``; shard 0's ``Rulebook.digest``, with its canonical
text when it is still the configured one). ``config`` is the SHA-256 of the canonical JSON of the config's public trading rules
(assets, markets, fee tiers, margin, lending, perpetuals, the insurance seed), computed
by ``exchange/published.py`` and published with the text, so anyone can recompute it.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path

from aiohttp import web

from exchange.core.money import format_decimal
from exchange.perp.fund import GENESIS, EntryKind, entry_text, verify
from exchange.perp.liquidator import pseudonym_key
from exchange.perp.rules import perp_markets, rules_hash, rules_text
from exchange.published import config_text_and_hash
from gateway.binance import symbol
from gateway.http import Refused, integer, json_response

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"transparency.js": "application/javascript", "transparency.css": "text/css"}
HISTORY_LIMIT_MAX = 1_000
PAGE_LIMIT_MAX = 1_000            # ADL events and liquidations per answer
CHAIN_CACHED_MAX = 1_000_000      # entries the gateway keeps to check the chain; past it, it stops checking
RATIO = 6                                         # ppm as a decimal
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                               "form-action 'self'; frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

_PAGE = ("get", "/transparency", "NONE", 1, "The transparency page (HTML)", [])
ENDPOINTS = [
    ("get", "/fapi/v1/insuranceBalance", "NONE", 1, "Insurance fund balance snapshot (each perpetual market's)",
     [("symbol", {"type": "string", "example": "BTCUSDTPERP"}, False)]),
    ("get", "/api/v1/public/insuranceFund", "NONE", 1,
     "The insurance funds: perpetual (per market, hash-chained) and margin (per asset)", []),
    ("get", "/api/v1/public/insuranceFund/history", "NONE", 5, "The perpetual funds' chained entries",
     [("fromId", {"type": "integer", "minimum": 1}, False),
      ("limit", {"type": "integer", "minimum": 1, "maximum": HISTORY_LIMIT_MAX}, False)]),
    ("get", "/api/v1/public/adl", "NONE", 10, "Every auto-deleveraging with its inputs (pseudonymous)",
     [("symbol", {"type": "string", "example": "BTCUSDTPERP"}, False),
      ("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX}, False)]),
    ("get", "/api/v1/public/liquidations", "NONE", 10, "Finished perpetual and margin liquidations (pseudonymous)",
     [("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX}, False)]),
    ("get", "/api/v1/public/rules", "NONE", 5, "The hashes of the rules in force and what each hashes", []),
    _PAGE,
    ("get", "/", "NONE", 1, "Redirects to /transparency", []),
    ("get", "/static/{name}", "NONE", 1, "The transparency page's script and style sheet",
     [("name", {"type": "string", "enum": sorted(FILES)}, True)]),
]
WEIGHTS = {"transparency.insuranceBalance": 1, "transparency.fund": 1, "transparency.history": 5,
           "transparency.adl": 10, "transparency.liquidations": 10, "transparency.rules": 5, "transparency.page": 1,
           "transparency.root": 1, "transparency.static": 1}


def routes(gateway) -> list:
    section = Transparency(gateway)
    return [web.get("/fapi/v1/insuranceBalance", section.insurance_balance, name="transparency.insuranceBalance"),
            web.get("/api/v1/public/insuranceFund", section.fund, name="transparency.fund"),
            web.get("/api/v1/public/insuranceFund/history", section.history, name="transparency.history"),
            web.get("/api/v1/public/adl", section.adl, name="transparency.adl"),
            web.get("/api/v1/public/liquidations", section.liquidations, name="transparency.liquidations"),
            web.get("/api/v1/public/rules", section.rules, name="transparency.rules"),
            web.get("/transparency", section.page, name="transparency.page"),
            web.get("/", section.root, name="transparency.root"),
            web.get("/static/{name}", section.static, name="transparency.static")]


class Transparency:
    """The section's handlers, the chain read so far and the page's files."""

    def __init__(self, gateway):
        self.gateway = gateway
        config = gateway.client.config
        self.perps = {name: perp.spec for name, perp in perp_markets(config).items()}
        self._key = pseudonym_key(config)
        self._config = config
        self._entries: list[list] = []          # the chain as read: entries never change once written
        self._problems: list[str] = []
        self._reading = asyncio.Lock()
        self._files = {name: (STATIC / name).read_bytes() for name in (*FILES, "transparency.html")}

    @property
    def _liquidator(self):
        return self.gateway.client.handles.liquidator

    # ---- the funds and their chain ------------------------------------------------------
    async def _chain(self) -> tuple[dict, list[list], list[str]]:
        """The perpetual funds' view, every entry up to it and the problems ``verify`` finds."""
        view = await self._liquidator.perp_fund_view.remote()
        async with self._reading:
            count = view["entries"]
            if count > CHAIN_CACHED_MAX:
                return view, self._entries, [f"the chain is longer than {CHAIN_CACHED_MAX} entries: "
                                             "check it with `exchange audit insurance`"]
            grew = len(self._entries) < count
            while len(self._entries) < count:
                after = len(self._entries)
                self._entries += await self._liquidator.perp_fund_entries.remote(
                    after, min(HISTORY_LIMIT_MAX, count - after))
            if grew or not self._entries:
                self._problems = verify(self._entries[:count], view["balances"], view["head"])
            return view, self._entries[:count], self._problems

    async def insurance_balance(self, request: web.Request) -> web.Response:
        """Binance's ``GET /fapi/v1/insuranceBalance``: one group per market (each has its own fund)."""
        params, _, _ = await self.gateway.params(request)
        wanted = params.get("symbol")
        if wanted is not None and wanted not in {symbol(m) for m in self.perps}:
            raise Refused(400, -1121, "Invalid symbol.")
        view = await self._liquidator.perp_fund_view.remote()
        now_ms = self.gateway.clock_ms()
        groups = [{"symbols": [symbol(market)],
                   "assets": [{"asset": self.perps[market].quote.name, "updateTime": now_ms,
                               "marginBalance": format_decimal(balance, self.perps[market].quote.scale)}]}
                  for market, balance in sorted(view["balances"].items())
                  if wanted in (None, symbol(market))]
        return json_response(groups[0] if wanted else groups)

    async def fund(self, request: web.Request) -> web.Response:
        view, entries, problems = await self._chain()
        margin = await self._liquidator.insurance_fund.remote()
        now_ms = self.gateway.clock_ms()
        assets = self._config.assets
        perpetual = []
        for market, balance in sorted(view["balances"].items()):
            spec = self.perps[market]
            perpetual.append({
                "symbol": symbol(market), "market": market, "asset": spec.quote.name,
                "marginBalance": format_decimal(balance, spec.quote.scale),
                "maxDrawRatio": format_decimal(view["max_draw_ppm"][market], RATIO),
                "adlDrawdownRatio": format_decimal(view["adl_drawdown_ppm"].get(market, 0), RATIO),
                "drawdownWindowSeconds": view["drawdown_window_s"].get(market, 0),
                "flows": {kind: format_decimal(units, spec.quote.scale)
                          for kind, units in view["flows"].get(market, {}).items()},
                "adlRounds": view["adl_rounds"].get(market, 0), "updateTime": now_ms})
        margin_fund = [{"asset": asset, "marginBalance": format_decimal(balance, assets[asset].scale),
                        "deposited": format_decimal(margin["deposited"].get(asset, 0), assets[asset].scale),
                        "badDebt": format_decimal(margin["bad_debt"].get(asset, 0), assets[asset].scale),
                        "updateTime": now_ms}
                       for asset, balance in sorted(margin["balance"].items(), key=lambda a: assets[a[0]].index)]
        return json_response({"perpetual": perpetual, "margin": margin_fund,
                              "chain": {"entries": view["entries"], "head": view["head"], "genesis": GENESIS,
                                        "verified": not problems, "problems": problems,
                                        "rulesHash": rules_hash(self._config)},
                              "serverTime": now_ms})

    async def history(self, request: web.Request) -> web.Response:
        params, _, _ = await self.gateway.params(request)
        first = integer(params, "fromId", 1)
        limit = integer(params, "limit", 500)
        if first < 1:
            raise Refused(400, -1100, "'fromId' must be at least 1.")
        if not 1 <= limit <= HISTORY_LIMIT_MAX:
            raise Refused(400, -1100, f"'limit' must be between 1 and {HISTORY_LIMIT_MAX}.")
        _, entries, _ = await self._chain()
        return json_response([self._entry(e) for e in entries[first - 1:first - 1 + limit]])

    def _entry(self, data: list) -> dict:
        n, kind, market, amount, ts_ns, details, prev, digest = data
        spec = self.perps.get(market)
        return {"id": n, "type": EntryKind(kind).name, "symbol": symbol(market), "market": market,
                "asset": spec.quote.name if spec else "",
                "amount": format_decimal(amount, spec.quote.scale) if spec else str(amount),
                "time": ts_ns // 1_000_000, "details": {key: str(value) for key, value in details},
                "prevHash": prev, "hash": digest, "body": entry_text(n, kind, market, amount, ts_ns, details)}

    # ---- ADL and liquidations -----------------------------------------------------------
    async def adl(self, request: web.Request) -> web.Response:
        params, _, _ = await self.gateway.params(request)
        limit = integer(params, "limit", 500)
        if not 1 <= limit <= PAGE_LIMIT_MAX:
            raise Refused(400, -1100, f"'limit' must be between 1 and {PAGE_LIMIT_MAX}.")
        wanted = params.get("symbol")
        if wanted is not None and wanted not in {symbol(m) for m in self.perps}:
            raise Refused(400, -1121, "Invalid symbol.")
        _, entries, _ = await self._chain()
        finished = await self._liquidator.perp_liquidations.remote(PAGE_LIMIT_MAX)
        accounts = {r["liquidation"]: r["account"] for r in finished["records"]}
        events, open_plans = [], {}                    # (market, liquidation) -> its plans not ended yet, in order
        for n, kind, market, _, ts_ns, details, _, _ in entries:
            if kind not in (EntryKind.ADL_START, EntryKind.ADL_END) or wanted not in (None, symbol(market)):
                continue
            detail = dict(details)
            key = (market, detail["liquidation"])
            if kind == EntryKind.ADL_START:
                event = self._adl_start(n, market, ts_ns, detail, accounts.get(detail["liquidation"]))
                events.append(event)
                open_plans.setdefault(key, []).append(event)
            elif open_plans.get(key):
                self._adl_end(open_plans[key].pop(0), n, market, detail)
        return json_response(events[-limit:])

    def _adl_start(self, n: int, market: str, ts_ns: int, detail: dict, account: str | None) -> dict:
        spec = self.perps[market]
        price = lambda ticks: format_decimal(ticks * spec.tick_minor, spec.quote.scale)  # noqa: E731
        ranked = [entry.rsplit(":", 1) for entry in detail.get("ranked", "").split(";") if entry]
        return {"id": n, "symbol": symbol(market), "market": market, "time": ts_ns // 1_000_000,
                "liquidation": detail["liquidation"], "account": account,
                "quantity": self._lots(spec, detail["lots"]), "bankruptcyPrice": price(detail["bankruptcy_price"]),
                "markPrice": price(detail["mark"]),
                "fundBalance": format_decimal(detail["fund_balance"], spec.quote.scale),
                "maxDrawRatio": format_decimal(detail["max_draw_ppm"], RATIO),
                "fundDrawdownRatio": format_decimal(detail["fund_drawdown_ppm"], RATIO),
                "adlDrawdownRatio": format_decimal(detail["adl_drawdown_ppm"], RATIO),
                "trigger": detail["trigger"],
                "ranking": [{"account": who, "score": score} for who, score in ranked],
                "skippedLinked": [who for who in detail.get("skipped_linked", "").split(";") if who],
                "reduced": [], "left": None, "endId": None}

    def _adl_end(self, event: dict, n: int, market: str, detail: dict) -> None:
        spec = self.perps[market]
        taken = [entry.rsplit(":", 1) for entry in detail.get("taken", "").split(";") if entry]
        event.update(reduced=[{"account": who, "quantity": self._lots(spec, int(lots))} for who, lots in taken],
                     left=self._lots(spec, detail["left"]), endId=n)

    async def liquidations(self, request: web.Request) -> web.Response:
        params, _, _ = await self.gateway.params(request)
        limit = integer(params, "limit", 100)
        if not 1 <= limit <= PAGE_LIMIT_MAX:
            raise Refused(400, -1100, f"'limit' must be between 1 and {PAGE_LIMIT_MAX}.")
        perp, margin = await asyncio.gather(self._liquidator.perp_liquidations.remote(limit),
                                            self._liquidator.liquidation_records.remote(limit))
        return json_response({"perpetual": {"open": perp["open"], "finished": perp["finished"],
                                            "records": [self._perp_record(r) for r in perp["records"]]},
                              "margin": [self._margin_record(r) for r in margin]})

    def _perp_record(self, record: dict) -> dict:
        markets = record.get("markets", [])
        scale = self.perps[markets[0]].quote.scale if markets else 0
        return {"id": record["liquidation"], "account": record["account"], "time": record["ts_ns"] // 1_000_000,
                "symbols": [symbol(m) for m in markets], "markets": markets,
                "equityTaken": format_decimal(record.get("equity_taken", 0), scale),
                "fund": {m: format_decimal(amount, self.perps[m].quote.scale)
                         for m, amount in sorted(record.get("fund", {}).items())},
                "unreconciled": bool(record.get("unreconciled"))}

    def _margin_record(self, record: dict) -> dict:
        assets, markets = self._config.assets, self._config.markets
        amounts = lambda field: {a: format_decimal(v, assets[a].scale)   # noqa: E731
                                 for a, v in sorted(record.get(field, {}).items())}
        index_scale = assets[self._config.index_quote_asset].scale
        level = record.get("level_before_ppm")
        fills = []
        for fill in record.get("fills", []):
            spec = markets[fill["market"]]
            fills.append({"symbol": symbol(fill["market"]), "side": "BUY" if fill["side"] == 1 else "SELL",
                          "price": format_decimal(fill["price"], spec.quote.scale),
                          "qty": format_decimal(fill["quantity"], spec.base.scale)})
        return {"id": record["n"], "account": self._rekeyed(record["account_hash"]),
                "symbol": symbol(record["market"]) if record["market"] else "", "mode": record["mode"],
                "outcome": record.get("outcome", ""), "reason": record.get("reason", ""),
                "startTime": record["started_ns"] // 1_000_000,
                "finishTime": record.get("finished_ns", 0) // 1_000_000,
                "marginLevelBefore": None if level is None else format_decimal(level, RATIO),
                "marginLevelAfter": format_decimal(record.get("level_after_ppm", 0), RATIO),
                "indexPrices": {a: format_decimal(p, index_scale) for a, p in sorted(record["index_prices"].items())},
                "fills": fills, "repaid": amounts("repaid"), "interestPaid": amounts("interest_paid"),
                "shortfall": amounts("shortfall"), "writtenOff": amounts("written_off"),
                "returned": amounts("returned"), "remainingDebt": amounts("remaining_debt")}

    def _rekeyed(self, account_hash: str) -> str:
        return hmac.new(self._key, account_hash.encode(), hashlib.sha256).hexdigest()[:16]

    @staticmethod
    def _lots(spec, lots: int) -> str:
        return format_decimal(lots * spec.lot_minor, spec.base.scale)

    # ---- the rules in force -------------------------------------------------------------
    async def rules(self, request: web.Request) -> web.Response:
        config = self._config
        config_text, config_hash = config_text_and_hash(config)
        live = await self.gateway.client.handles.shards[0].rulebook.remote()
        rulebook = None
        if live is not None:
            text = repr(config.risk.canonical()) if config.risk is not None and \
                config.risk.digest() == live["digest"] else None
            rulebook = {"hash": live["digest"], "text": text,
                        "hashes": "SHA-256 of the rulebook's canonical form (Python repr of every rule's id, "
                                  "action and parameters and the operators' roles); the text is given while "
                                  "the rulebook is the configured one",
                        "rules": live["rules"], "operators": live["operators"]}
        return json_response({
            "config": {"hash": config_hash, "text": config_text,
                       "hashes": "SHA-256 of this canonical JSON of the config's public trading rules: assets, "
                                 "markets, fee tiers, margin, lending, perpetuals, the insurance seed "
                                 "(exchange/published.py)"},
            "perpetualRules": {"hash": rules_hash(config), "text": rules_text(config),
                               "hashes": "SHA-256 of the [perp.*] sections as configured (canonical JSON)"},
            "rulebook": rulebook, "serverTime": self.gateway.clock_ms()})

    # ---- the page ------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._files["transparency.html"], content_type="text/html", charset="utf-8",
                            headers=SECURITY_HEADERS)

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/transparency"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            raise Refused(404, -1000, "Unknown file.")
        return web.Response(body=self._files[name], content_type=FILES[name], charset="utf-8",
                            headers=SECURITY_HEADERS)
