"""``ops/sim.py``: the seeded, deterministic simulator of the actor protocol (Core v2 §7;
TigerBeetle's VOPR is the model). ``exchange sim`` is the same command.

What is simulated. The real actor-side code, not a model of it: two
``AccountShardActor``s, a ``MarketActor`` per market (BTC-USDT, ETH-USDT), the
``LendingPoolActor`` and the ``LiquidatorActor``, built directly (no Ray) in
one process on one asyncio event loop, with their real links (``Peers``,
outboxes, rseq and link sequence de-duplication), journals and snapshots on
in-memory stores (``Journal.open("memory:<run>", ...)``: the store outlives the
actor object), and recovery through their own constructors. Seeded clients
(four accounts per shard) send spot limit and market orders, cancels,
deposits, withdrawals, supply to and withdrawal from the pool, margin
transfers, borrows, repays and margin orders with auto-borrow, and now and
then re-send an acknowledged request; two traders per shard hold leveraged
longs and shorts (cross and isolated books) near the liquidation line; a
market maker supplies the pools and quotes around the index. The index
(a stand-in) publishes prices that follow one regime per seed (calm, falling,
rising, a crash) to the shards and the liquidator: books fall under the
line, shards hand them to the liquidator, which liquidates them (cascades of
several at once, gaps covered by the insurance fund) while it may crash and
restart in the middle. Not simulated yet: the client library (clients call
``execute`` with packed commands, as it does), the IndexActor itself.

Fault model, every choice drawn from ``random.Random(seed)``:
- reordering and delay: each step delivers one message chosen among all in
  flight (requests and replies alike), so any message can overtake another;
- loss: a request or a reply is lost; the caller sees the call fail and
  ``Peers.call`` (or the client) sends it again;
- duplication: a delivered request is delivered again later; nobody reads
  the second answer;
- crashes at any step: an actor object is dropped with every task it started
  (cancelled mid-handler, its uncommitted journal records lost: after a step
  the loop runs 0, 1, 2 rounds or until idle, so a crash can fall between a
  change of state and its commit); restarts build a new object from the same
  store and run its ``resume()``;
- time: a simulated clock (``actors/clock.py``) moves by 1 ms to an hour
  (the pools' interest hours); an actor's pause (``clock.sleep``: the
  liquidator waiting for a book to refill) is a timer the scheduler fires
  like a message; snapshots are due every 2, 5, 20 commands
  or never (count-based, chosen by the seed).
After the last step the run heals (no more faults, every actor up, every
message delivered oldest first) and the final checks run.

The auditor (``ops/simulation/auditor.py``) decides from what it observed
(the commands sent, their first answers, every fill pushed), not from the
actors' own audit code. After every step: no handler raised; no negative
balance; every acknowledged request is remembered by its shard, and a
re-sent one gets its first answer; acknowledged <= ledger <= sent for
deposits and withdrawals; no two different fills under one market seq and
no shard settled more fill quantity than was pushed to it; no shard credited
more from the insurance fund than the covers sent to it, and the fund holds
at most its start less the covers; no book liquidated twice at once; no
``FinishLiquidation`` sent for a book that still owes; a sampled actor
whose journal is idle, rebuilt from its store, equals the live one (state
hash and link numbers). When nothing is in flight: every asset conserved
(shards' totals + pools' cash + the insurance fund = acknowledged deposits -
withdrawals + the fund's start; covers sent = covers credited). At the end:
everything answered, nothing pending or queued, every fill settled exactly
once per side, no liquidation in progress and no book liquidating or under
the line, every actor rebuilt from its store equal to the live one.

Replay. A run is a function of its seed: one loop and no threads (memory
journals commit inline), no real sleeps, the simulated clock, seeded choices
only; the outcome carries a digest of the whole trace and of the final state
hashes, identical across processes. A failure prints its seed, the failed
check, the step and the last actions; ``ops/sim.py --seed S`` replays it
exactly (``--trace`` prints every action).

Usage: ``ops/sim.py --seeds 1000`` (from ``--start``), ``--seed S``,
``--steps N``, ``--json``, ``--no-crashes/--no-losses/--no-duplicates``.
Exit status 1 if any seed failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):                    # run as a script: ops/sim.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

STEPS = 150                     # ops.simulation.Options.steps (not imported here: `exchange --help` stays light)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run (default 100)")
    parser.add_argument("--start", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--seed", type=int, help="run (replay) this one seed only")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps per seed before healing")
    parser.add_argument("--no-crashes", action="store_true", help="never crash an actor")
    parser.add_argument("--no-losses", action="store_true", help="never lose a message")
    parser.add_argument("--no-duplicates", action="store_true", help="never deliver a request twice")
    parser.add_argument("--config", help="exchange config TOML (default: the built-in one)")
    parser.add_argument("--trace", action="store_true", help="print the last actions of every failing seed "
                        "(with --seed: of the run)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ops.simulation import Options, simulate
    options = Options(steps=args.steps, crashes=not args.no_crashes, losses=not args.no_losses,
                      duplicates=not args.no_duplicates, config_path=args.config)
    seeds = [args.seed] if args.seed is not None else list(range(args.start, args.start + args.seeds))
    started = time.perf_counter()
    failed = []
    bar = tqdm(seeds, desc="seeds", unit="seed", disable=args.no_progress or args.json or len(seeds) == 1)
    for seed in bar:
        outcome = simulate(seed, options)
        if not outcome.ok:
            failed.append(outcome)
            bar.write(outcome.line())
        bar.set_postfix(failed=len(failed))
        if args.seed is not None:
            single = outcome
    seconds = round(time.perf_counter() - started, 2)
    if args.json:
        report = {"seeds": len(seeds), "failed": len(failed), "seconds": seconds,
                  "failures": [vars(o) for o in failed]}
        if args.seed is not None:
            report["outcome"] = vars(single)
        print(json.dumps(report, indent=2))
        return 1 if failed else 0
    if args.seed is not None:
        print(single.line())
        print(json.dumps(single.stats))
        if args.trace or not single.ok:
            print("\n".join("  " + line for line in single.trace))
    else:
        for outcome in failed:
            if args.trace:
                print("\n".join("  " + line for line in outcome.trace))
            print(f"replay: ops/sim.py --seed {outcome.seed}")
        print(f"{len(seeds)} seeds, {len(failed)} failed, {seconds} s")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops/sim.py", description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
