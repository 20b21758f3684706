"""The seeded simulator (Core v2 §7) over a few hundred seeds: the real shard, market
and lending-pool actors under reordered, lost and duplicated messages and crashes,
checked by the independent auditor after every step. A failing seed is printed
with the last actions; replay it with ``ops/sim.py --seed S``."""
from __future__ import annotations

from ops.simulation import Options, simulate

SEEDS = 200


def _report(outcomes) -> str:
    lines = []
    for outcome in outcomes:
        lines.append(outcome.line())
        lines.extend("    " + step for step in outcome.trace[-12:])
        lines.append(f"    replay: .venv/bin/python ops/sim.py --seed {outcome.seed}")
    return "\n".join(lines)


def test_simulator_with_two_hundred_seeds_of_faults_finds_no_violation():
    failed = [o for o in (simulate(seed) for seed in range(SEEDS)) if not o.ok]
    assert not failed, _report(failed)


def test_simulator_with_the_same_seed_replays_exactly():
    first, second = simulate(12345), simulate(12345)
    assert first.ok and first.digest == second.digest and first.stats == second.stats
    assert first.stats["crashes"] and first.stats["lost"] and first.stats["duplicated"]
    assert simulate(12346).digest != first.digest


def test_simulator_without_faults_passes_and_checks_conservation_at_quiet_moments():
    outcome = simulate(3, Options(crashes=False, losses=False, duplicates=False))
    assert outcome.ok, outcome.line()
    assert outcome.stats["crashes"] == 0 and outcome.stats["quiet_checks"] >= 1
