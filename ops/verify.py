"""``exchange verify --data DIR``: check stored state offline, without Ray.

First it checks every actor directory's store: every snapshot and every
journal record against its checksum, the journal for gaps, and whether a
restart could reach a verified state (``Store.problems``); a store in a
format this code does not read is reported too. Every problem is one line;
if an actor cannot be recovered, the report stops there (exit 1, no
traceback). Then it rebuilds every actor from its LMDB store the way a restart would (newest
intact snapshot + journal), then finishes what a restart would finish:
requests a shard had journaled but a market (or the lending pool) had not
applied are applied, pushes not delivered are delivered, and insurance-fund
covers the liquidator had journaled are applied (receivers de-duplicate, as
live), and perpetual ADLs the liquidator planned and did not finish are
closed as its restart would. On that state it checks:
- conservation of every asset: balances of all accounts and margin books on
  all shards + the fee accounts + the lending pools' cash + the insurance
  fund (and the perpetual fee share a shard moved that the fund has not
  recorded yet) + the OTC desk's transit = deposits - withdrawals + deposits into the fund, to the
  smallest unit;
- no orphaned hold: every held amount belongs to a live order, and every live
  order is funded (``AccountShard.check_invariants``);
- replay: rebuilding each actor from its *oldest* kept snapshot and the whole
  journal after it gives the same state hash as from the newest.
The exchange must not be running on this directory. Exit code 1 on any
corruption or mismatch, with a report saying which check failed and where.
"""
from __future__ import annotations

import logging
from pathlib import Path

from actors.durability.journal import Journal
from actors.lending_actor import LendingPoolActor
from actors.liquidator_actor import LiquidatorActor
from actors.market_actor import MarketActor
from actors.otc_actor import OtcActor
from actors.perp_market_actor import PerpMarketActor
from actors.shard_actor import AccountShardActor
from actors.durability.storage import FormatError, RecoveryError
from exchange.config import load_config
from exchange.core.routing import shard_for
from exchange.perp.compensation import in_flight as compensations_in_flight
from exchange.perp.fees import in_flight as fee_shares_in_flight
from exchange.perp.liquidator import drive
from exchange.perp.rules import perp_markets
from exchange.messages.records import LENDING
from exchange.accounts.access import Role
from exchange.accounts.pricing import NO_PRICES
from exchange.conservation import imbalance


def _rebuild(config_path, data_dir: str, oldest: bool = False):
    """Every actor rebuilt from its store; if one refuses, the ones built are closed."""
    config = load_config(config_path)
    built: list = []

    def build(make, *args, **kwargs):
        built.append(make(*args, **kwargs))
        return built[-1]
    try:
        shards = [build(AccountShardActor, config_path, i, data_dir, oldest) for i in range(config.shards)]
        markets = {m.name: build(MarketActor, config_path, m.name, data_dir, oldest) for m in config.market_list}
        markets.update((name, build(PerpMarketActor, config_path, name, data_dir, oldest))
                       for name in sorted(perp_markets(config)))
        markets[LENDING] = build(LendingPoolActor, config_path, data_dir, oldest)     # served like a market
        liquidator = build(LiquidatorActor, config_path, data_dir, oldest, seed_fund=False)
    except BaseException:
        _close(built, {})
        raise
    return config, shards, markets, liquidator


def _close(shards, markets, liquidator=None) -> None:
    for actor in [*shards, *markets.values(), liquidator]:
        if actor is not None and actor.journal.enabled:
            actor.journal.store.close()


def _hashes(shards, markets) -> dict[str, str]:
    out = {s.name: s.state_hash() for s in shards}
    out.update({m.actor_name: m.state_hash() for m in markets.values()})
    return out


def _finish_in_flight(shards, markets, liquidator) -> dict:
    """Apply undelivered requests and pushes (and insurance-fund covers the
    liquidator journaled but a shard had not applied), as the restarted actors
    would, until nothing is left in flight (answers can call for follow-ups)."""
    requests = pushes = covers = 0
    for send in liquidator.liquidator.pending_covers(0):          # the domain's covers drawn, not settled
        shard, cover = shards[send.shard], send.command
        admitted = shard.shard.admit(cover, Role.LIQUIDATOR)
        if admitted.key not in shard.shard.results and admitted.key not in shard.pending:
            shard._accept(admitted, NO_PRICES)
            covers += 1
    for _ in range(100):
        moved = 0
        for shard in shards:
            shard.links.release_all()
            for market_name, link in shard.links.items():
                market = markets[market_name]
                fresh = [entry for entry in link.take() if entry[0] > market.applied_rseq[shard.index]]
                if fresh:
                    market._apply(shard.index, fresh)
                    requests += len(fresh)
                    moved += len(fresh)
        for market in markets.values():
            market.links.release_all()
            for index, link in market.links.items():
                queued = link.take()
                if queued:
                    shards[index]._apply_push(market.name, queued, market._top())
                    pushes += len(queued)
                    moved += len(queued)
        if not moved:
            break
    adls = _close_planned_adls(shards, liquidator)     # closes on the desks: nothing for the links
    return {"requests_applied": requests, "pushes_delivered": pushes, "fund_covers_applied": covers,
            "adl_plans_closed": adls}


def _finish_crossings(shards, desk) -> int:
    """Carry the OTC desk's unanswered crossings to their shards and the answers back, as its
    restart would, until none is left (an answer can call for another: a return)."""
    applied = 0
    for _ in range(100):
        waiting = [c for _, crossings in sorted(desk.outbox.unacked.items()) for c in crossings]
        if not waiting:
            break
        for crossing in waiting:
            shard = shards[crossing.shard]
            admitted = shard.shard.admit(crossing.command(), Role.OTC)
            (event,) = admitted if type(admitted) is list else shard._accept(admitted, NO_PRICES, Role.OTC)[0]
            desk.crossed(crossing.shard, event.seq, event.reason, crossing.ts_ns)
            applied += 1
    return applied


def _close_planned_adls(shards, liquidator) -> int:
    """Close every perpetual ADL the liquidator planned and did not finish, as its restart
    would (``PerpLiquidator.close_planned``: the same request ids, so what a shard applied is
    answered from its replay memory, never applied twice)."""
    perp, ts_ns = liquidator.perp, max(s.last_ts_ns for s in shards)

    def answer(request):
        shard = shards[shard_for(request.command.account_id, shards[0].config.routing)]
        admitted = shard.shard.admit(request.command, Role.LIQUIDATOR)
        if type(admitted) is list:
            return admitted
        known = shard.shard.recall(admitted)
        return known if known is not None else shard._accept(admitted, NO_PRICES)[0]
    planned = sorted(perp.adl)
    for n, name in planned:
        drive(perp.close_planned(n, name, ts_ns), answer)
    return len(planned)


def check_stores(data_dir: str, config_path: str | None = None) -> list[str]:
    """Every corruption in every actor directory under ``data_dir``, one line each."""
    config = load_config(config_path)
    problems: list[str] = []
    for directory in sorted(p for p in Path(data_dir).iterdir() if (p / "data.mdb").is_file()):
        try:
            journal = Journal.for_actor(data_dir, directory.name, config)
        except FormatError as exc:
            problems.append(str(exc))
            continue
        problems.extend(journal.store.problems())
        journal.store.close()
    return problems


def _once(problems: list[str], problem: str) -> list[str]:
    return problems if problem in problems else [*problems, problem]


def verify(data_dir: str, config_path: str | None = None) -> dict:
    """Check ``data_dir`` (module docstring); ``ok`` is False on any problem."""
    if not Path(data_dir).is_dir():
        return {"ok": False, "error": f"no data directory at {data_dir}"}
    logger = logging.getLogger("exchange")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)            # refusals are reported below, not logged as well
    try:
        return _verify(data_dir, config_path)
    finally:
        logger.setLevel(level)


def _verify(data_dir: str, config_path: str | None) -> dict:
    problems = check_stores(data_dir, config_path)
    try:
        config, shards, markets, liquidator = _rebuild(config_path, data_dir)
    except (RecoveryError, FormatError) as exc:
        return {"ok": False, "problems": _once(problems, str(exc))}
    newest = _hashes(shards, markets)
    recovery = {a.name if hasattr(a, "index") else a.actor_name: a.recovery for a in [*shards, *markets.values()]}
    in_flight = _finish_in_flight(shards, markets, liquidator)
    otc = OtcActor(config_path, data_dir, snapshot_s=1e12) if "otc" in config.sections else None
    if otc is not None:
        in_flight["otc_crossings_applied"] = _finish_crossings(shards, otc.desk)
    for shard in shards:
        try:
            shard.shard.check_invariants()
        except AssertionError as exc:
            problems.append(f"{shard.name}: {exc}")
    ledgers = [s.shard.ledger for s in shards]
    holdings, deposited = liquidator.fund_totals()
    swept = [s.perp_fees_swept() for s in shards]
    perps, fund = perp_markets(config), liquidator.perp_fund
    for moving in (fee_shares_in_flight(perps, swept, fund.fees_through),    # moved by a shard, not recorded yet
                   compensations_in_flight(perps, [s.perp_compensated() for s in shards], fund.paid)):   # paid, not
        for asset, amount in moving.items():                                                      # credited yet
            holdings[asset] = holdings.get(asset, 0) + amount
    for asset, amount in (otc.desk.outbox.transit.items() if otc is not None else ()):
        holdings[asset] = holdings.get(asset, 0) + amount                        # the OTC desk's transit
    off = imbalance(config.asset_list, [s.shard.totals() for s in shards], [g.deposited for g in ledgers],
                    [g.withdrawn for g in ledgers], markets[LENDING].engine.cash(), holdings, deposited)
    problems += [f"conservation: {name} off by {value} minor units" for name, value in off.items() if value]
    _close(shards, markets, liquidator)
    if otc is not None:
        otc.journal.store.close()
    try:
        _, shards_old, markets_old, liquidator_old = _rebuild(config_path, data_dir, oldest=True)
    except (RecoveryError, FormatError) as exc:
        problems.append(f"replay from the oldest snapshot: {exc}")
        shards_old = markets_old = None
    oldest = _hashes(shards_old, markets_old) if shards_old is not None else {}
    if shards_old is not None:
        _close(shards_old, markets_old, liquidator_old)
    for name, digest in newest.items():
        if name in oldest and oldest[name] != digest:
            problems.append(f"replay: {name} from its oldest snapshot hashes {oldest[name][:12]}, "
                            f"from its newest {digest[:12]}")
    return {"ok": not problems, "problems": problems, "imbalance": off, "in_flight": in_flight,
            "recovery": recovery, "state_hashes": newest,
            "open_orders": sum(len(s.shard.orders) for s in shards),
            "accounts": sum(len(s.shard.ledger.accounts) for s in shards)}
