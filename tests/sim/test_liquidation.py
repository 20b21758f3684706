"""The liquidator in the simulator: liquidations (cascades, gaps the insurance fund
covers, liquidator crashes in the middle) replay exactly from their seed, and the
auditor's liquidation checks catch a liquidator that forgets to settle its covers."""
from __future__ import annotations

from actors.liquidator_actor import LiquidatorActor
from ops.simulation import Options, simulate

LIQUIDATING_SEEDS = range(12, 21)


class LeakyLiquidator(LiquidatorActor):
    """Pays every cover twice: the drawn cover is sent again under a new request id."""

    async def _send(self, shard: int, command) -> list:
        events = await super()._send(shard, command)
        if type(command).__name__ == "CoverShortfall":
            await super()._send(shard, command._replace(request_id=command.request_id + ":again"))
        return events


def test_simulator_with_a_falling_index_liquidates_covers_gaps_and_replays_exactly():
    outcomes = [simulate(seed) for seed in LIQUIDATING_SEEDS]
    assert all(o.ok for o in outcomes), [o.line() for o in outcomes if not o.ok]
    covered = next(o for o in outcomes if o.stats["covers"] and o.stats["books_liquidated"] >= 2)
    replay = simulate(covered.seed)
    assert (replay.digest, replay.stats) == (covered.digest, covered.stats)


def test_liquidator_paying_a_cover_twice_is_caught_by_a_seed_that_replays_it():
    broken = Options(classes={"liquidator": LeakyLiquidator})
    caught = next((o for o in (simulate(seed, broken) for seed in range(40)) if not o.ok), None)
    assert caught is not None, "no seed in 0..39 caught a liquidator paying covers twice"
    assert caught.check in ("cover applied twice", "conservation", "insurance fund"), caught.line()
    replay = simulate(caught.seed, broken)
    assert (replay.check, replay.failure, replay.step, replay.digest) == \
        (caught.check, caught.failure, caught.step, caught.digest)


def test_liquidation_of_a_cross_book_with_an_open_order_sells_its_collateral_before_finishing():
    """Seed 2 found it: the liquidator read the book under the cancelled order's market (the
    spot market's absent isolated book, None) and finished with debt and collateral left."""
    outcome = simulate(2)
    assert outcome.ok, outcome.line()
