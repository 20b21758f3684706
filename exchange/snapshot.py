"""Domain state to plain data and back, for snapshots.

``shard_state``/``restore_shard`` and ``market_state``/``restore_market``
capture everything that ``state_hash`` covers plus the replay-protection
memory, as ints, strs, lists and tuples; the remembered events stay messages,
which the writer encodes with ``codec.encode_shallow`` as its JSON ``default``
hook (far faster than converting a million events in Python first). A restored object has the same
``canonical()`` (and so the same hash) as the original; tests assert it.

A shard is the venue's (``exchange/venue.py: new_shard``): its products' state
is a section each (``margin``, ``perp``), restored before the open orders, which
are re-attached to the wallets they are held in (a margin order to its book).
"""
from __future__ import annotations

from exchange.messages.codec import decode, decode_events, hashable, plain
from exchange.config import ExchangeConfig
from exchange.margin.lending import LendingEngine
from exchange.margin.desk import Awaiting, MarginDesk, Then
from exchange.matching.market import MarketEngine
from exchange.matching.orders import RestingOrder
from exchange.perp.desk import PerpAccount, PerpDesk, PerpOrder
from exchange.perp.liquidation import PerpLiquidation
from exchange.perp.mark import BasisAverage
from exchange.perp.pricer import PerpPricer
from exchange.perp.position import MarginMode, Position
from exchange.perp.rules import spec_of
from exchange.accounts.shard import AccountShard, OpenOrder
from exchange.venue import new_market, new_shard

ORDER_FIELDS = ("order_id", "account_id", "side", "price", "total", "remaining", "per_lot", "held",
                "client_order_id", "request_id", "acknowledged", "amend_extra", "book", "auto_repay", "order_type",
                "tif")
BOOK_FIELDS = ("available", "held", "pending", "scaled", "principal", "liquidating", "borrowing")
POOL_FIELDS = ("cash", "borrowed_scaled", "principal_total", "index", "prev_index", "hour", "rate_ppm",
               "total_shares", "reserve", "interest_total", "written_off")


def shard_state(shard: AccountShard) -> dict:
    """The shard's state; its margin section only if the margin desk is plugged in."""
    ledger = shard.ledger
    state = {
        "shard_index": shard.shard_index,
        "order_seq": shard.order_seq,
        "market_seq": dict(shard.market_seq),
        "accounts": [[a.account_id, a.fee_tier, a.available, a.held, sorted(a.client_ids.items())]
                     for _, a in sorted(ledger.accounts.items())],
        "fees": ledger.fees, "deposited": ledger.deposited, "withdrawn": ledger.withdrawn,
        "orders": [[o.market.name, *(plain(getattr(o, f)) for f in ORDER_FIELDS)]
                   for _, o in sorted(shard.orders.items())],
        "shards": shard.shards,
        "results": list(shard.results.items()),      # [((account, request id), command, events), ...]
    }
    if "margin" in shard.products:
        state["margin"] = margin_state(shard.margin)
    if "perp" in shard.products:
        state["perp"] = perp_state(shard.perp)
    if shard.risk is not None:
        state["risk"] = shard.risk.snapshot()
    for name in ("cashier", "otc"):
        if name in shard.products:
            state[name] = shard.products[name].snapshot()
    return state


POSITION_FIELDS = ("lots", "basis", "realized", "fees", "funding", "mode", "leverage", "risk_tier", "margin")
PERP_ORDER_FIELDS = ("order_id", "account_id", "side", "price", "total", "remaining", "per_lot", "held",
                     "reduce_only", "request_id", "client_order_id", "acknowledged", "liquidation", "order_type", "tif")


def perp_state(desk: PerpDesk) -> dict:
    return {"accounts": [[w.account_id, w.cash, w.held,
                          [[m, *(plain(getattr(p, f)) for f in POSITION_FIELDS)] for m, p in sorted(w.positions.items())]]
                         for _, w in sorted(desk.accounts.items())],
            "orders": [[o.market.name, *(plain(getattr(o, f)) for f in PERP_ORDER_FIELDS)]
                       for _, o in sorted(desk.orders.items())],
            "marks": [[m, index, mark] for m, (index, mark) in sorted(desk.marks.items())],
            "zones": [[a, scope, zone] for (a, scope), zone in sorted(desk.zones.items())],
            "liquidations": [[q.n, q.account_id, q.asset, q.equity, sorted(q.shares.items()), sorted(q.results.items()),
                              [[m, p.lots, p.basis] for m, p in sorted(q.positions.items())],
                              sorted(q.bankrupt.items())]
                             for _, q in sorted(desk.liquidations.items())],
            "fees": [[m, desk.fee_income.get(m, 0), desk.fee_swept.get(m, 0)]
                     for m in sorted(set(desk.fee_income) | set(desk.fee_swept))],
            "raised": sorted(desk.raised.items()),
            "compensated": [[m, seq, through] for m, (seq, through) in sorted(desk.compensated.items())]}


def restore_perp(desk: PerpDesk, state: dict) -> None:
    for market, ppm in state.get("raised", ()):                 # before the orders: they point at the market
        desk.raise_maintenance(market, ppm)
    desk.compensated = {m: (seq, through) for m, seq, through in state.get("compensated", ())}
    for account_id, cash, held, positions in state["accounts"]:
        wallet = desk.accounts[account_id] = PerpAccount(account_id, len(cash))
        wallet.cash[:], wallet.held[:] = cash, held
        for market, *values in positions:
            fields = dict(zip(POSITION_FIELDS, values))
            fields["mode"] = MarginMode(fields["mode"])
            wallet.positions[market] = Position(**fields)
    for market, *values in state["orders"]:
        f = dict(zip(PERP_ORDER_FIELDS, values))
        order = PerpOrder(f["order_id"], f["account_id"], desk.markets[market], f["side"], f["price"], f["total"],
                          f["per_lot"], f["reduce_only"], hashable(f["request_id"]), f["client_order_id"],
                          f["liquidation"], f.get("order_type", 1), f.get("tif", 1))   # (older snapshots: LIMIT, GTC)
        order.remaining, order.held, order.acknowledged = f["remaining"], f["held"], f["acknowledged"]
        desk.add_order(order)
    desk.marks.update((m, (index, mark)) for m, index, mark in state["marks"])
    desk.zones.update(((a, scope), zone) for a, scope, zone in state["zones"])
    for n, account_id, asset, equity, shares, results, positions, bankrupt in state["liquidations"]:
        liquidation = desk.liquidations[n] = PerpLiquidation(n, account_id, asset)
        liquidation.equity = equity
        liquidation.shares = dict((m, share) for m, share in shares)
        liquidation.results = dict((m, result) for m, result in results)
        liquidation.positions = {m: Position(lots=lots, basis=basis) for m, lots, basis in positions}
        liquidation.bankrupt = dict((m, price) for m, price in bankrupt)
    for market, income, swept in state.get("fees", ()):          # absent from snapshots before the fee share
        desk.fee_income[market], desk.fee_swept[market] = income, swept
    desk.index.touch_all(desk.accounts)                          # derived: every position re-valued at the next mark


def margin_state(desk: MarginDesk) -> dict:
    return {"settings": [[a, level, tier] for a, (level, tier) in sorted(desk.settings.items())],
            "books": [[b.account_id, b.market, *(plain(getattr(b, f)) for f in BOOK_FIELDS)]
                      for _, b in sorted(desk.books.items())],
            "pool_index": desk.pool_index, "supplying": desk.supplying, "fund_in": desk.fund_in,
            "awaiting": [[ref, int(w.then), w.request_id, w.order, w.reference_ticks]
                         for ref, w in sorted(desk.awaiting.items())],
            "ref_seq": desk.ref_seq}


def restore_margin(desk: MarginDesk, state: dict) -> None:
    for account, level, tier in state["settings"]:
        desk.settings[account] = (level, tier)
    for account, market, *values in state["books"]:
        book = desk.book(account, market, create=True)
        for field, value in zip(BOOK_FIELDS, values):
            if field == "liquidating":
                book.liquidating = value
            else:
                getattr(book, field)[:] = value
    desk.pool_index[:], desk.supplying[:], desk.fund_in[:] = (state["pool_index"], state["supplying"],
                                                             state["fund_in"])
    for ref, then, request_id, order, reference in state["awaiting"]:
        desk.awaiting[ref] = Awaiting(Then(then), request_id, None if order is None else decode(order), reference)
    desk.ref_seq = state["ref_seq"]


def restore_shard(config: ExchangeConfig, state: dict) -> AccountShard:
    """The venue's shard (``new_shard``) in ``state``. A shard of the exchange routes by the
    config's layout, also when the snapshot was taken before shards were added (its count
    is then one of the layout's earlier ones); a stand-alone shard keeps its own count."""
    routing = config.routing if state["shards"] in config.routing.counts() else state["shards"]
    shard = new_shard(config, state["shard_index"], routing)
    shard.order_seq = state["order_seq"]
    shard.market_seq.update(state["market_seq"])
    ledger = shard.ledger
    for account_id, tier, available, held, client_ids in state["accounts"]:
        account = ledger.open(account_id, tier)
        account.available[:] = available
        account.held[:] = held
        account.client_ids.update((k, v) for k, v in client_ids)
    ledger.fees[:], ledger.deposited[:], ledger.withdrawn[:] = state["fees"], state["deposited"], state["withdrawn"]
    if "margin" in state:
        restore_margin(shard.margin, state["margin"])
    if "perp" in state:
        restore_perp(shard.perp, state["perp"])
    if "risk" in state and shard.risk is not None:
        shard.risk.restore(state["risk"], shard.ledger.accounts)
    for name in ("cashier", "otc"):
        if name in state and name in shard.products:
            shard.products[name].restore(state[name])
    books = shard.margin.books
    for market_name, *values in state["orders"]:
        fields = dict(zip(ORDER_FIELDS, values))
        account_id, book = fields["account_id"], fields.get("book")
        wallet = ledger.accounts[account_id] if book is None else books[(account_id, book)]
        order = OpenOrder(fields["order_id"], account_id, config.markets[market_name], fields["side"],
                          fields["price"], fields["total"], fields["per_lot"], fields["held"],
                          fields["client_order_id"], hashable(fields["request_id"]), book,
                          fields.get("auto_repay", False), wallet, fields.get("order_type", 1), fields.get("tif", 1))
        order.remaining, order.acknowledged, order.amend_extra = (fields["remaining"], fields["acknowledged"],
                                                                  fields["amend_extra"])
        shard.orders[order.order_id] = order
    for (account_id, request_id), command, events in state["results"]:
        shard.results.remember((account_id, request_id), decode(command), decode_events(events))
    return shard


def market_state(market: MarketEngine) -> dict:
    book = market.book
    orders = []
    for side in (book.bids, book.asks):
        for price in side.prices_best_first():
            orders.extend(list(o.key()) for o in side.levels[price].queue if o.remaining)
    state = {"name": market.name, "seq": market.seq, "last_price": market.last_price,
             "trade_count": market.trade_count, "orders": orders}
    if market.guard is not None:
        state["guard"] = market.guard.snapshot()
    return state


def restore_market(config: ExchangeConfig, state: dict) -> MarketEngine:
    market = new_market(config, spec_of(config, state["name"]))
    market.seq, market.last_price, market.trade_count = state["seq"], state["last_price"], state["trade_count"]
    for key in state["orders"]:
        market.book.add(RestingOrder(*key))
    if market.guard is not None and "guard" in state:
        market.guard.restore(state["guard"])
    return market


def lending_state(engine: LendingEngine) -> dict:
    return {"seq": engine.seq,
            "pools": [[asset, *(getattr(p, f) for f in POOL_FIELDS),
                       [[a, b, v[0], v[1]] for (a, b), v in sorted(p.loans.items())],
                       sorted(p.shares.items())] for asset, p in engine.pools.items()]}


def restore_lending(config: ExchangeConfig, state: dict) -> LendingEngine:
    engine = LendingEngine(config.lending, config.reserve_account)
    engine.seq = state["seq"]
    for asset, *values in state["pools"]:
        pool = engine.pools[asset]
        for field, value in zip(POOL_FIELDS, values):
            setattr(pool, field, value)
        loans, shares = values[len(POOL_FIELDS):]
        pool.loans = {(a, b): [scaled, principal] for a, b, scaled, principal in loans}
        pool.shares = {a: n for a, n in shares}
    return engine


def pricer_state(pricer: PerpPricer) -> dict:
    """A perpetual market's price state (``exchange.perp.pricer``)."""
    return {"basis": pricer.basis.to_plain(), "premiums": list(pricer.premiums.samples),
            "closed": [list(c) for c in pricer.closed], "funding_rate": pricer.funding_rate,
            "next_funding_ns": pricer.next_funding_ns, "mark": pricer.mark}


def restore_pricer(pricer: PerpPricer, state: dict) -> None:
    pricer.basis = BasisAverage.from_plain(state["basis"])
    pricer.premiums.samples[:] = state["premiums"]
    pricer.closed = [tuple(c) for c in state["closed"]]
    pricer.funding_rate, pricer.next_funding_ns, pricer.mark = (state["funding_rate"], state["next_funding_ns"],
                                                                state["mark"])
