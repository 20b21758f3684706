"""Benchmark: the OTC desk's request-for-quote front end through the actors (issue 16).

Starts every actor on a local Ray cluster with LMDB journals in a temporary folder,
sets index prices, funds the desk's account and a few clients, then measures:

- **quotes per second**: ``--concurrency`` clients inquiring at once for ``--seconds``
  (each a firm quote priced, signed and journaled before its answer; ``quotes_per_s``);
- **the RFQ round trip**, one client at a time: inquiry -> quote -> acceptance, both
  answered (``round_trip_p50_ms``/``p99_ms``), ``--trips`` times, buying and selling in
  turn. A crypto-paid acceptance is answered settled: the desk's inventory locked and
  the client's payment taken (one call to each shard), then the delivery and the
  payout (another), each leg journaled by the shard and the desk;

beside Ray's idle call p50 measured in the same run (``ray_idle_call_p50_ms``: one call at
a time to an idle actor) and the ratio of the round trip to two idle calls (a round trip is
two calls). Quotes are checked against the desk's public key as they come
(``signatures_ok``).

Usage: python ops/bench/otc.py --json [--seconds 5] [--concurrency 8] [--trips 300]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402

CLIENTS = range(9_200_001, 9_200_017)


def run(seconds: float, concurrency: int, trips: int) -> dict:
    import ray

    from actors import bootstrap
    from actors.capability import Keyring
    from actors.client.operator import OperatorClient
    from exchange.messages.records import Deposit, OpenAccount
    from exchange.otc.signing import verify
    from ops.bench.ray_rate import idle_call_p50_ms

    bootstrap.init_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as data:
        keyring = Keyring.mint()
        operator = OperatorClient(bootstrap.create_actors(data_dir=data, keyring=keyring), keyring)
        client, otc = operator.client, operator.client.handles.otc
        try:
            for asset, usdt in (("BTC", 50_000), ("ETH", 2_500)):
                operator.set_index_component(asset, "bench-feed", usdt * 10**6, 1, time.time_ns())
            desk = int(client.config.sections["otc"]["desk_account"])
            commands = []
            stock = {"BTC": 500, "ETH": 5_000, "USDT": 50_000_000}     # inside [otc.inventory]'s limits
            for account in (desk, *CLIENTS):
                commands.append(OpenAccount(f"bench-open:{account}", 0, account))
                commands += [Deposit(f"bench:{account}:{a.name}", 0, account, a.name,
                                     (stock[a.name] if account == desk else 10 ** 8) * 10 ** a.scale)
                             for a in client.config.asset_list]
            client.execute(commands)
            while not ray.get(otc.inquire.remote(CLIENTS[0], "BTC-USDT", "buy", 2 * 10**8, 0, "crypto"))["ok"]:
                time.sleep(0.1)                     # the desk has its inventory and an index
            key = ray.get(otc.public_key.remote())
            idle_p50 = idle_call_p50_ms(300)
            unsigned = refused = 0

            async def quoting() -> int:
                done, stop = 0, time.perf_counter() + seconds

                async def worker(account: int) -> None:
                    nonlocal done, unsigned, refused
                    side = "buy"
                    while time.perf_counter() < stop:
                        answer = await otc.inquire.remote(account, "BTC-USDT", side, 2 * 10**8, 0, "crypto")
                        refused += not answer["ok"]
                        unsigned += answer["ok"] and not verify(key, answer["quote"], answer["signature"])
                        done += 1
                        side = "sell" if side == "buy" else "buy"
                await asyncio.gather(*(worker(a) for a in list(CLIENTS)[:concurrency]))
                return done
            started = time.perf_counter()
            quotes = asyncio.run(quoting())
            quotes_per_s = quotes / (time.perf_counter() - started)
            samples = []
            for i in range(trips):
                account = CLIENTS[i % len(CLIENTS)]
                t0 = time.perf_counter()
                side = ("buy", "sell")[(i // len(CLIENTS)) % 2]    # each client buys, then sells
                answer = ray.get(otc.inquire.remote(account, "BTC-USDT", side, 2 * 10**8, 0, "crypto"))
                if not answer["ok"]:
                    raise RuntimeError(f"round trip {i}: the inquiry was refused: {answer}")
                accepted = ray.get(otc.accept.remote(account, answer["quote"]["id"]))
                samples.append(time.perf_counter() - t0)
                refused += accepted.get("state") != "settled"
            samples.sort()
            p50, p99 = samples[len(samples) // 2] * 1000, samples[min(len(samples) - 1, int(len(samples) * .99))] * 1000
            return {"quotes": quotes, "quotes_per_s": round(quotes_per_s), "concurrency": concurrency,
                    "round_trips": trips, "round_trip_p50_ms": round(p50, 3), "round_trip_p99_ms": round(p99, 3),
                    "ray_idle_call_p50_ms": idle_p50,
                    "round_trip_p50_to_two_idle_calls": round(p50 / (2 * idle_p50), 2),
                    "refused": refused, "signatures_ok": unsigned == 0}
        finally:
            bootstrap.destroy_actors(operator.handles)
            ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the clients quote at once")
    parser.add_argument("--concurrency", type=int, default=8, help="clients inquiring at once")
    parser.add_argument("--trips", type=int, default=300, help="inquiry -> acceptance round trips, one at a time")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report(run(args.seconds, args.concurrency, args.trips), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
