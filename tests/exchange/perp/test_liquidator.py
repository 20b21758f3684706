"""The perpetual liquidator as a step machine: stopped at any request (before the shard
applied it, or after and before its answer came back) and rebuilt from the facts it had
made durable, it finishes every liquidation exactly as an uninterrupted run does: the same
positions, cash, fund balances and chain kinds, nothing applied twice, every unit
conserved. This is what the liquidator actor relies on after a restart."""
from __future__ import annotations

import pytest

from exchange.perp import adl, liquidation
from exchange.perp.fund import PerpFund
from exchange.perp.liquidator import PerpLiquidator, Send, SendAll
from exchange.accounts.access import Role
from tests.exchange.perp.test_desk import ALICE, BOB, CAROL, PERP, check, harness, usdt
from tests.exchange.perp.test_liquidation import TS, deleverage_scenario, isolated_long, mark_at


class Crash(Exception):
    pass


def fund_gap_scenario():
    """Alice's isolated 1 long, the book gapped below her bankruptcy price: the fund pays."""
    ex = harness()
    ex.engine.top_up_perp_fund(PERP, usdt("10000"), TS)
    isolated_long(ex)
    ex.perp(CAROL, 1, usdt("35500"), 1_000_000)            # a bid at 35,500 for 1 BTC (BUY = 1)
    mark_at(ex, 350_000)
    return ex


SCENARIOS = {"deleverage": deleverage_scenario, "fund": fund_gap_scenario}


def run(ex, ts, cut: int | None = None, applied: bool = False) -> tuple[int, list | None]:
    """One round of the Engine's liquidator, stopped at request ``cut`` (before the shard
    applies it, or after when ``applied``). Returns the requests answered and, when it
    stopped, the facts made durable (taken before each command leaves, as the actor does)."""
    engine = ex.engine
    machine = engine.perp_liquidator
    machine.journaling = True
    durable, count = [], [0]

    def answer(request):
        if type(request) is SendAll:             # each command a request of its own: a stop can fall between
            return [answer(Send(command)) for command in request.commands]
        if type(request) is Send:
            durable.extend(machine.take_facts())
        if count[0] == cut and not applied:
            raise Crash
        result = engine.apply(request.command, Role.LIQUIDATOR) if type(request) is Send \
            else liquidation.read(engine.shard.perp, *request)
        if count[0] == cut:
            raise Crash
        count[0] += 1
        return result
    try:
        machine.run(answer, ts)
    except Crash:
        return count[0], durable
    durable.extend(machine.take_facts())
    return count[0], None


def rebuild(ex, entries: list, state: dict, facts: list) -> None:
    """A new machine from the state before the round and the durable facts (a restart)."""
    old = ex.engine.perp_liquidator
    fund = PerpFund(sorted(old.fund.balances), draw_caps=dict(old.fund.caps))
    for entry in entries:
        fund.replay(entry)
    machine = PerpLiquidator(old.markets, fund, old.key)
    machine.restore(state)
    for fact in facts:
        machine.apply(fact)
    ex.engine.perp_liquidator, ex.engine.perp_fund = machine, fund


def outcome(ex) -> tuple:
    desk = ex.engine.shard.perp
    fund = ex.engine.perp_fund
    return ({a: (getattr(desk.accounts[a].positions.get(PERP), "lots", 0), ex.cash(a)) for a in (ALICE, BOB, CAROL)},
            dict(fund.balances), [e.kind for e in fund.entries], desk.liquidations == {})


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_liquidator_stopped_at_any_request_and_rebuilt_from_its_durable_facts_ends_the_same(scenario):
    reference = SCENARIOS[scenario]()
    requests, _ = run(reference, TS)
    assert requests > 5 and not reference.engine.perp_liquidator.open
    expected = outcome(reference)
    for cut in range(requests):
        for applied in (False, True):
            ex = SCENARIOS[scenario]()
            machine = ex.engine.perp_liquidator
            entries, state = [e.to_plain() for e in machine.fund.entries], machine.to_plain()
            _, durable = run(ex, TS, cut, applied)
            assert durable is not None
            rebuild(ex, entries, state, durable)
            for second in range(1, 4):
                if not ex.engine.perp_liquidator.open and not liquidation.due(ex.engine.shard.perp):
                    break
                ex.engine.run_perp_liquidations(TS + second * 10**9)
            assert outcome(ex) == expected, (cut, applied)
            check(ex)


def test_adl_never_closes_an_account_linked_to_the_bankrupt_one():
    """Carol is linked to Alice (one owner): only Bob is deleveraged; what he cannot take stays
    with the liquidation (no overshoot onto anyone else), and the record names the exclusion."""
    ex = deleverage_scenario()
    ex.engine.perp_liquidator.link(ALICE, CAROL)
    assert ex.engine.run_perp_liquidations(TS) == []                 # not finished: 0.5 BTC has no taker
    desk = ex.engine.shard.perp
    assert desk.accounts[CAROL].positions[PERP].lots == -500 and desk.accounts[BOB].positions[PERP].lots == 0
    start, end = (dict(e.details) for e in ex.engine.perp_fund.entries[-2:])
    key = ex.engine.perp_liquidator.key
    assert start["skipped_linked"] == adl.pseudonym(key, CAROL) and CAROL not in (ALICE, BOB)
    assert end["taken"] == f"{adl.pseudonym(key, BOB)}:1000" and end["left"] == 500
    assert [p.lots for p in desk.liquidations[1].positions.values()] == [500]
    check(ex)


def test_liquidations_stepped_concurrently_in_any_interleaving_never_race_for_the_same_positions():
    """The liquidator actor steps many liquidations at once: here 80 of them advance one request at a
    time in a random order, then one ADL round plans for all that need it and the deleveraged ones
    are stepped again, interleaved. No ADL close is refused (one plan per side, each liquidation
    taking the next ranked positions), nearly all finish in the first round, the rest in the next,
    and every unit is conserved."""
    from exchange.perp.liquidator import Read, drive
    from ops.bench.liquidation import AFTER, NS, USDT, engine_with_positions
    import random
    ts = 1_000 * NS
    engine = engine_with_positions(160, 3, ts)
    engine.set_index_prices({"BTC": AFTER * USDT})
    engine.mark_perps(ts + NS)
    machine, desk = engine.perp_liquidator, engine.shard.perp
    refused = []

    def answer(request):
        if type(request) is SendAll:
            return [answer(Send(command)) for command in request.commands]
        if type(request) is not Send:
            return liquidation.read(desk, *request)
        events = engine.apply(request.command, Role.LIQUIDATOR)
        if type(request.command).__name__ == "DeleveragePerp" and type(events[0]).__name__ == "OrderRejected":
            refused.append(events[0])
        return events
    rng = random.Random(5)

    def interleaved(numbers) -> None:
        steps = {n: machine.step(n, ts + NS) for n in numbers}
        waiting = {n: next(s) for n, s in steps.items()}
        while waiting:
            n = rng.choice(sorted(waiting))
            try:
                waiting[n] = steps[n].send(answer(waiting[n]))
            except StopIteration:
                del waiting[n]
    assert len(machine.admit(answer(Read(liquidation.DUE)))) == 80
    interleaved(sorted(machine.open))
    deleveraged = drive(machine.deleverage(ts + NS), answer)
    assert len(deleveraged) > 10
    interleaved(deleveraged)
    assert refused == [] and len(machine.open) <= 8
    engine.check_invariants()
    engine.mark_perps(ts + 2 * NS)
    engine.run_perp_liquidations(ts + 2 * NS)
    assert not machine.open and not desk.liquidations
    assert sum(w.positions[PERP].lots for w in desk.accounts.values() if PERP in w.positions) == 0
    engine.check_invariants()


def test_a_fund_drawn_down_past_the_trigger_pays_nothing_and_adl_says_why():
    """The fund lost 40% of its high today (the rule: 30% over a day): Alice's gap is not paid by
    the fund even though its share would cover it; Bob is deleveraged at the bankruptcy price and
    the ADL record carries the drawdown and the rule."""
    from exchange.perp.fund import EntryKind
    ex = fund_gap_scenario()                                    # fund 10,000; a bid at 35,500 under bankruptcy
    ex.engine.perp_fund.record(EntryKind.BANKRUPTCY_LOSS, PERP, -usdt("4000"), TS)
    records = ex.engine.run_perp_liquidations(TS + 10**9)
    assert records and records[0]["fund"] == {PERP: 0}
    kinds = [e.kind for e in ex.engine.perp_fund.entries]
    assert kinds[-2:] == [EntryKind.ADL_START, EntryKind.ADL_END] and kinds.count(EntryKind.BANKRUPTCY_LOSS) == 1
    start = dict(ex.engine.perp_fund.entries[-2].details)
    assert start["fund_drawdown_ppm"] == 400_000 and start["adl_drawdown_ppm"] == 300_000
    assert start["trigger"] == "fund drawn down past the ADL trigger"
    desk = ex.engine.shard.perp
    assert desk.accounts[BOB].positions[PERP].lots == 0                 # deleveraged
    assert not getattr(desk.accounts[CAROL].positions.get(PERP), "lots", 0)   # her bid under bankruptcy untouched
    assert ex.engine.perp_fund.view()["adl_drawdown_ppm"] == {PERP: 300_000}
    desk.check_invariants()
    assert {a: v for a, v in ex.engine.conservation().items() if v} == {"USDT": -usdt("4000")}   # only the loss
                                                                        # this test made up


def test_the_quintile_a_position_shows_is_its_place_in_the_ranking_adl_uses():
    """Every position's ``adl_quintile`` (kept per mark) equals ``adl.quintiles`` over all of
    them, and the first candidate ADL would read is a quintile-5 position on the other side."""
    from ops.bench.liquidation import BEFORE, NS, USDT, engine_with_positions
    engine = engine_with_positions(60, 9, NS)
    engine.set_index_prices({"BTC": (BEFORE - 1_500) * USDT})
    engine.mark_perps(2 * NS)
    desk = engine.shard.perp
    mark = desk.marks[PERP][1]
    expected = adl.quintiles(desk.adl_candidates(PERP), mark, desk.markets[PERP].k)
    shown = {a: desk.position_view(a, PERP)["adl_quintile"] for a, w in desk.accounts.items()
             if getattr(w.positions.get(PERP), "lots", 0)}
    assert shown == {a: expected.get(a) for a in shown} and set(shown.values()) >= {1, 5}
    first_short = desk.adl_ranked(PERP, 1, ())[0]
    assert first_short.lots < 0 and shown[first_short.account_id] == 5
