"""Demo traffic for ``exchange up``: market makers, takers and cancellers.

- Makers quote a ladder of bids and asks around each market's index price and
  re-quote (cancel + place) every round;
- takers send market and IOC orders that cross the spread;
- cancellers rest orders away from the touch and cancel them.
- margin traders, a lender and a 10x "gambler" (``ops/demo_margin.py``);
- perpetual makers and leveraged traders (``ops/demo_perp.py``);
- an intruder trying what the trust model forbids (``ops/demo_intruder.py``);
- the risk rulebook at work: the cancel ladder, a freeze, a wash-trade alert, a
  large withdrawal's review, a market halt, a raised maintenance rate and a
  compensation from the insurance fund (``ops/demo_risk.py``);
- the OTC desk: firm signed quotes asked and accepted, some left to expire, trades
  settled (crypto at once, fiat once the bank pays, T+1 on credit), a large delivery
  approved by an operator, the desk's inventory hedged on the book (``ops/demo_otc.py``);
- a bot using the gateway as a Binance bot would: orders, reads, a user-data stream, the
  24 h ticker, the transparency page (``ops/demo_gateway.py``).
A live summary line every second: orders/s, trades/s, p50/p99 latency, best
bid/ask and last price per market, the pools' utilization, liquidations, the
insurance fund, each perpetual's mark, basis, funding and open interest, the
intruder's refusals, the risk rulebook's actions, the HTTP bot's requests (by endpoint
group), stream events, history and 24 h ticker, and the conservation audit.
"""
from __future__ import annotations

import asyncio
import random
import time

import ray

from actors import health
from actors.client.exchange_client import ExchangeClient
from exchange.messages.records import CancelOrder, Deposit, OpenAccount
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.core.money import format_decimal
from ops.demo_intruder import Intruder
from ops.demo_margin import MarginDemo
from exchange.perp.rules import spec_of
from ops.demo_perp import MAKERS as PERP_MAKERS, PerpDemo
from ops.demo_gateway import GatewayDemo
from ops.demo_otc import OtcDemo
from ops.demo_risk import RiskDemo
from ops.latency import LatencyRecorder

MAKERS, TAKERS, CANCELLERS = 4, 16, 4
LEVELS = 5


class DemoTraffic:
    def __init__(self, client: ExchangeClient, seed: int = 1, desks: tuple = (None, None), bank_feed=None,
                 gateway: tuple = ()):
        self.client = client
        self.config = client.config
        self.rng = random.Random(seed)
        self.makers = list(range(1_000_001, 1_000_001 + MAKERS))
        self.takers = list(range(2_000_001, 2_000_001 + TAKERS))
        self.cancellers = list(range(3_000_001, 3_000_001 + CANCELLERS))
        self.quotes: dict[int, list[tuple[str, int]]] = {m: [] for m in self.makers}
        self.latency = LatencyRecorder()
        self.orders = 0
        self.rejected = 0
        self.margin = MarginDemo(client, self.rng)
        self.perp = PerpDemo(client, self.rng)
        self.intruder = Intruder(client)
        self.risk = RiskDemo(client, *desks)
        self.otc = OtcDemo(client, bank_feed)
        self.gateway = GatewayDemo(client, *gateway)
        self.rounds = 0

    def fund(self) -> None:
        """Open the demo accounts and give each a large balance of every asset."""
        commands = []
        for account in self.makers + self.takers + self.cancellers + self.perp.accounts():
            commands.append(self.client_open(account))
            for asset in self.config.asset_list:
                commands.append(self.client_deposit(account, asset.name, 10 ** (asset.scale + 7)))
        self.client.execute(commands + self.intruder.fund())
        self.margin.fund()
        self.perp.fund()
        self.risk.fund()
        self.otc.fund()
        self.gateway.fund()

    def client_open(self, account: int) -> OpenAccount:
        """Makers (spot and perpetual) open on the market-maker tier: lower fees, and the risk
        rulebook's order buckets and cancel ladder exempt them (``config/risk.toml``)."""
        maker = account in self.makers or account in PERP_MAKERS
        tier = "market_maker" if maker and "market_maker" in self.config.fee_tiers else ""
        return OpenAccount(f"demo-open:{account}", 0, account, tier)

    def client_deposit(self, account: int, asset: str, amount: int) -> Deposit:
        return Deposit(f"demo-fund:{account}:{asset}", 0, account, asset, amount)

    async def round(self, index_prices: dict[str, int]) -> None:
        """One round of traffic for every market with an index price."""
        commands = []
        client, rng = self.client, self.rng
        for maker in self.makers:
            for market, order_id in self.quotes[maker]:
                commands.append(CancelOrder(client.next_request_id(), time.time_ns(), maker, market, order_id))
            self.quotes[maker] = []
        places = []
        for spec in self.config.market_list:
            index = index_prices.get(spec.base.name)
            if not index:
                continue
            mid = index // spec.tick_minor
            for maker in self.makers:
                for level in range(1, LEVELS + 1):
                    spread = level * max(1, mid // 20_000) + rng.randint(0, 2)
                    qty = rng.randint(1, 20) * spec.min_lots * spec.lot_minor
                    for side, price in ((Side.BUY, mid - spread), (Side.SELL, mid + spread)):
                        places.append(client.order(maker, spec.name, side, qty, price * spec.tick_minor,
                                                   tif=TimeInForce.POST_ONLY))
            for taker in rng.sample(self.takers, 4):
                side = rng.choice((Side.BUY, Side.SELL))
                qty = rng.randint(1, 10) * spec.min_lots * spec.lot_minor
                if rng.random() < 0.5:
                    places.append(client.order(taker, spec.name, side, qty, None, order_type=OrderType.MARKET))
                else:
                    edge = mid + max(1, mid // 5_000) * (1 if side == Side.BUY else -1)
                    places.append(client.order(taker, spec.name, side, qty, edge * spec.tick_minor,
                                               tif=TimeInForce.IOC))
            for canceller in self.cancellers:
                far = mid - max(1, mid // 100) if rng.random() < 0.5 else mid + max(1, mid // 100)
                side = Side.BUY if far < mid else Side.SELL
                places.append(client.order(canceller, spec.name, side, spec.min_lots * spec.lot_minor,
                                           far * spec.tick_minor))
        commands.extend(places)
        commands.extend(self.margin.orders(index_prices))
        commands.extend(self.perp.orders())
        commands.extend(self.risk.orders(index_prices))
        self.rounds += 1
        hostile = self.intruder.attempts_for(self.rounds)
        started = time.perf_counter()
        results = await client.execute_async(commands + hostile)
        self.latency.add(time.perf_counter() - started, len(commands))
        self.orders += len(commands)
        self.intruder.record(results[len(commands):])
        results = results[:len(commands)]
        self.perp.record(commands, results)
        self.risk.record(commands, results)
        self.otc.round()
        await self.gateway.round(index_prices)
        cancels = []
        for cmd, events in zip(commands, results):
            if type(cmd) is CancelOrder:
                continue
            booked = [e for e in events if type(e).__name__ == "OrderBooked"]
            if any(type(e).__name__ == "OrderRejected" for e in events):
                self.rejected += 1
            for e in booked:
                if cmd.account_id in self.quotes:
                    self.quotes[cmd.account_id].append((cmd.market, e.order_id))
                elif cmd.account_id in self.cancellers:
                    cancels.append(CancelOrder(client.next_request_id(), time.time_ns(), cmd.account_id,
                                               cmd.market, e.order_id))
        if cancels:
            started = time.perf_counter()
            await client.execute_async(cancels)
            self.latency.add(time.perf_counter() - started, len(cancels))
            self.orders += len(cancels)


async def run_demo(client: ExchangeClient, duration_s: float | None, demo: bool, printer, seed: int = 1,
                   desks: tuple = (None, None), bank_feed=None, gateway: tuple = ()) -> dict:
    """Drive demo traffic (if ``demo``) and print a summary every second. ``desks``: the risk
    and treasury operators' ``RiskDesk`` for the risk demo (none: it is skipped);
    ``bank_feed``: the operator capability the OTC demo's bank pays fiat trades with;
    ``gateway``: the gateway's URL and the bot's key and secret (none: no HTTP bot)."""
    traffic = DemoTraffic(client, seed, desks, bank_feed, gateway)
    if demo:
        traffic.fund()
    index = client.handles.index
    await index.start.remote()
    if client.handles.lending is not None:
        await client.handles.lending.start_clock.remote()      # pools accrue by the wall clock's hour
    started = time.monotonic()
    last_report, last_orders, last_trades = started, 0, _trades(client)
    window, overall = LatencyRecorder(), LatencyRecorder()
    summary: dict = {}
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            if demo:
                prices = await index.index_prices.remote()
                await traffic.round(prices)
                drained = traffic.latency.drain()
                window.merge(drained)
                overall.merge(drained)
            else:
                await asyncio.sleep(0.2)
            now = time.monotonic()
            if now - last_report >= 1.0:
                stats = client.market_stats()
                trades = sum(s["trades"] for s in stats)
                audit = client.audit()
                pct = window.drain().percentiles()
                summary = {"uptime_s": round(now - started, 1),
                           "orders_per_s": round((traffic.orders - last_orders) / (now - last_report)),
                           "trades_per_s": round((trades - last_trades) / (now - last_report)),
                           "p50_ms": pct["p50_ms"], "p99_ms": pct["p99_ms"],
                           "markets": {s["market"]: _market_view(client, s) for s in stats},
                           **_desks(traffic, demo), "cluster": _cluster(client), "conservation_ok": audit["ok"]}
                printer(summary)
                last_report, last_orders, last_trades = now, traffic.orders, trades
    finally:
        await traffic.gateway.close()          # (its listen key, also when the demo is stopped)
    final_stats = client.market_stats()
    audit = client.audit()
    return {"duration_s": round(time.monotonic() - started, 1), "orders": traffic.orders,
            "rejected": traffic.rejected, "trades": sum(s["trades"] for s in final_stats),
            **overall.percentiles(),
            "markets": {s["market"]: _market_view(client, s) for s in final_stats},
            **_desks(traffic, demo), "cluster": _cluster(client), "conservation_ok": audit["ok"], "imbalance": audit["imbalance"],
            "index_prices": ray.get(index.index_prices.remote())}


def _desks(traffic, demo: bool) -> dict:
    """What each part of the demo did so far (empty without the demo's traffic)."""
    return {"margin": traffic.margin.summary() if demo else {}, "perpetuals": traffic.perp.summary(),
            "intruder": traffic.intruder.summary() if demo else {}, "risk": traffic.risk.summary() if demo else {},
            "otc": traffic.otc.summary() if demo else {}, "gateway": traffic.gateway.summary() if demo else {}}


def _cluster(client: ExchangeClient) -> dict:
    """Where the exchange runs (``actors/health.py``): actors up of those the config calls
    for, live nodes, shards, and the names of any actor down."""
    report = health.status(client.config)
    up = sum(1 for a in report["actors"].values() if a["state"] == "up")
    return {"actors_up": up, "actors": len(report["actors"]), "nodes": report["nodes"],
            "shards": client.config.shards, "down": report["down"]}


def _trades(client: ExchangeClient) -> int:
    return sum(s["trades"] for s in client.market_stats())


def _market_view(client: ExchangeClient, stats: dict) -> dict:
    scale = spec_of(client.config, stats["market"]).quote.scale
    fmt = lambda v: format_decimal(v, scale) if v else None  # noqa: E731
    return {"best_bid": fmt(stats["best_bid"]), "best_ask": fmt(stats["best_ask"]),
            "last": fmt(stats["last_price"]), "trades": stats["trades"], "resting": stats["resting_orders"]}


def format_summary(summary: dict) -> str:
    """One readable line for the live terminal view."""
    markets = "  ".join(f"{name} {m['best_bid'] or '-'} / {m['best_ask'] or '-'} last {m['last'] or '-'}"
                        for name, m in summary["markets"].items())
    margin = summary.get("margin") or {}
    lending = (f"USDT pool {margin['usdt_utilization_pct']}% used, liquidations {margin['liquidations']}, "
               f"fund {margin['insurance_fund_usdt']} USDT  |  ") if margin else ""
    perps = "".join(f"{name} mark {p['mark'] or '-'} basis {p['basis_bps']}bps funding {p['funding_rate_pct']}% "
                    f"OI {p['open_interest']} fund {p['fund']} (fees {p['fee_share']}) liquidations {p['liquidations']} "
                    f"ADL {p['adl_rounds']}  |  "
                    for name, p in (summary.get("perpetuals") or {}).items())
    intruder = summary.get("intruder") or {}
    door = (f"intruder {sum(intruder['refused'].values())}/{intruder['attempts']} refused, balance "
            f"{'untouched' if intruder['balance_untouched'] else 'CHANGED'}  |  ") if intruder else ""
    risk = summary.get("risk") or {}
    rules = (f"rulebook {risk['rulebook']} ladder {_counts(risk['ladder'])} refused {_counts(risk['refused'])} "
             f"alerts {_counts(risk['alerts'])} ETH-USDT {risk['eth_usdt']} withdrawal 1500 BTC "
             f"{risk['withdrawal_1500_btc']} perp maintenance {risk['perp_maintenance']} compensated "
             f"{risk['compensated']} audit {risk['audit_entries']} "
             f"{'verified' if risk['audit_ok'] else 'TAMPERED'}  |  ") if risk else ""
    otc = summary.get("otc") or {}
    last = otc.get("last_quote") or {}
    desk = (f"OTC quotes {otc['quotes']} accepted {otc['accepted']} settled {otc['settled']} (spread "
            f"{otc['income']} USDT) credit paid {otc['credit_paid']} approved {otc['approved']} hedges "
            f"{otc['hedged']}/{otc['hedges']} expired {otc['expired']} refused "
            f"{_counts(otc['refused'])} fiat paid {otc['fiat_paid']} third-party refused "
            f"{otc['third_party_refused']} refunds {otc['refunds']} signatures {'OK' if otc['signatures_ok'] else 'BAD'}"
            + (f" last {last['pair']} {last['side']} {last['price']} (index {last['index']}, spread "
               f"{last['spread_bps']} bps: {_counts(last['breakdown'])}, {last['method']})" if last else "")
            + "  |  ") if otc else ""
    gateway = summary.get("gateway") or {}
    ticker = gateway.get("ticker") or {}
    day = (f"{ticker['symbol']} 24h last {ticker['last']} {'' if ticker['change_pct'].startswith('-') else '+'}"
           f"{ticker['change_pct']}% vol {ticker['volume']} "
           f"trades {ticker['count']}; ") if ticker else ""
    http = (f"gateway {gateway['answered']}/{gateway['requests']} answered ({_counts(gateway['by_group'])}) "
            f"orders {gateway['orders']} cancels {gateway['cancels']} refused {_counts(gateway['refused'])} weight "
            f"{gateway['used_weight']}; user stream {_counts(gateway['user_stream']['events'])}; allOrders "
            f"{_counts(gateway['history']['orders'])} ({_counts(gateway['history']['kinds'])}) "
            f"myTrades {gateway['history']['trades']}; {day}"
            f"transparency {gateway['transparency']['url']}  |  ") if gateway else ""
    cluster = summary.get("cluster") or {}
    where = (f"actors {cluster['actors_up']}/{cluster['actors']} up on {cluster['nodes']} node(s), "
             f"{cluster['shards']} shards" + (f", down {','.join(cluster['down'])}" if cluster["down"] else "")
             + "  |  ") if cluster else ""
    return (f"[{summary['uptime_s']:>6}s] orders/s {summary['orders_per_s']:>6}  trades/s {summary['trades_per_s']:>5}"
            f"  p50 {summary['p50_ms']:.1f}ms p99 {summary['p99_ms']:.1f}ms  |  {markets}  |  {lending}{perps}{door}"
            f"{rules}{desk}{http}{where}conservation {'OK' if summary['conservation_ok'] else 'BROKEN'}")


def _counts(counts: dict) -> str:
    return ",".join(f"{k.split('|')[0].removeprefix('R-')}{'=' if k else ''}{v}" for k, v in counts.items()) or "0"
