"""The simulator catches a deliberately injected bug and replays it from its seed:
a market that applies a re-sent request batch again (``tests/sim/broken.py``)."""
from __future__ import annotations

from ops.simulation import Options, simulate
from tests.sim.broken import ForgetfulMarket

BROKEN = Options(classes={"market": ForgetfulMarket})


def test_market_without_rseq_deduplication_is_caught_by_a_seed_that_replays_it():
    caught = next((o for o in (simulate(seed, BROKEN) for seed in range(40)) if not o.ok), None)
    assert caught is not None, "no seed in 0..39 caught a market that applies re-sent batches twice"
    replay = simulate(caught.seed, BROKEN)
    assert (replay.ok, replay.check, replay.failure, replay.step, replay.digest) == \
        (False, caught.check, caught.failure, caught.step, caught.digest)
    assert simulate(caught.seed).ok, "the same seed with the real market passes"
