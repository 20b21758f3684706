"""The seeded, deterministic simulator of the actor protocol (Core v2 §7).

One concept per module: ``network`` (simulated handles, messages in flight,
who owns which task), ``cluster`` (the real actors in one process, crashed and
rebuilt from their in-memory stores), ``workload`` (seeded clients),
``auditor`` (the independent checks), ``runner`` (the scheduler: one seed, one
run, one verdict). The design is in the docstring of ``ops/sim.py``.
"""
from ops.simulation.runner import Options, Outcome, simulate

__all__ = ["Options", "Outcome", "simulate"]
