"""The round-trip benchmark's floor (``ops/bench/roundtrip.py``): the critical path's
shape with no exchange in it really journals at both hops, so the floor it prints
includes the two synced commits the exchange's path has. Correctness only; speed
is the benchmark's to print."""
from __future__ import annotations

import ray

from actors import bootstrap
from actors.durability.storage import LmdbStore
from ops.bench.roundtrip import floor_p50_ms


def test_the_floor_commits_every_call_at_both_hops(tmp_path):
    bootstrap.init_ray(num_cpus=2)
    try:
        assert floor_p50_ms(30, str(tmp_path)) > 0
        assert floor_p50_ms(5, None) > 0                       # without journals: nothing written
    finally:
        ray.shutdown()
    for hop in ("floor-a", "floor-b"):
        store = LmdbStore(tmp_path / hop)
        assert store.last_position() == 50                     # 20 warm-up calls and 30 timed ones
        assert [record for _, record in store.read_after(49)] == [b"x" * 300]
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["floor-a", "floor-b"]
