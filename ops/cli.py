"""The ``exchange`` command: run, load-test and inspect the exchange.

    exchange up [--duration N] [--no-demo] [--json] [--address ADDR]
    exchange loadtest [--markets 2] [--accounts 10000] [--orders 1000000] [--rate R] [--json]
    exchange loadtest --clients 1000 [--drivers 2] [--seconds 10] [--json]
    exchange verify --data ./data [--json]
    exchange chaos --duration 60 --kill-interval 3 [--json]
    exchange margin [--address auto] [--limit 20] [--json]
    exchange status [--address auto] [--config F] [--json]
    exchange gateway [--address auto] [--listen 127.0.0.1:8080] [--processes 2]
    exchange keys create|revoke|list ...

``exchange <command> --help`` documents every option.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from ops import logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exchange", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the exchange (local Ray or --address) and run demo traffic",
                             description="Start every actor from the config, run demo traffic, print a live "
                                         "summary every second. Ctrl-C stops cleanly.")
    _common(up)
    up.add_argument("--duration", type=float, default=None, help="stop after N seconds (default: run until Ctrl-C)")
    up.add_argument("--no-demo", action="store_true", help="run only the core, no demo traffic")
    up.add_argument("--seed", type=int, default=1, help="seed of the demo traffic and simulated feeds")
    up.add_argument("--gateway", default="127.0.0.1:8080", metavar="HOST:PORT",
                    help="serve the HTTP API (Binance Spot v3 REST, docs/API.md) here (default 127.0.0.1:8080; "
                         "a busy port falls back to a free one)")
    up.add_argument("--no-gateway", action="store_true", help="no HTTP API")
    up.set_defaults(handler=cmd_up)

    load = commands.add_parser("loadtest", help="drive the actors hard and report throughput and latency",
                               description="Closed loop by default (--concurrency senders, --batch orders "
                                           "per call); open loop at a fixed offered rate with --rate.")
    _common(load)
    load.add_argument("--markets", type=int, default=2, help="how many configured markets to load")
    load.add_argument("--accounts", type=int, default=10_000)
    load.add_argument("--orders", type=int, default=1_000_000, help="order commands to send in total")
    load.add_argument("--concurrency", type=int, default=8, help="closed loop: concurrent senders")
    load.add_argument("--batch", type=int, default=500, help="closed loop: orders per call")
    load.add_argument("--rate", type=float, default=None, help="open loop: offered orders per second")
    load.add_argument("--tick-ms", type=float, default=5.0, help="open loop: release due orders every N ms")
    load.add_argument("--sweep", action="store_true",
                      help="measure the closed-loop capacity (--orders), then the open loop at each of "
                           "--sweep-steps of it, and report the knee")
    load.add_argument("--sweep-steps", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 0.3, 0.5, 0.7, 0.9],
                      help="sweep: fractions of the capacity to offer (default 0.1,0.3,0.5,0.7,0.9)")
    load.add_argument("--step-seconds", type=float, default=5.0, help="sweep: seconds of orders per step")
    load.add_argument("--knee-p99-ms", type=float, default=25.0, help="sweep: the p99 bound that defines the knee")
    load.add_argument("--zipf", type=float, default=0.6,
                      help="Zipf exponent of account and market activity (0: uniform; default 0.6)")
    load.add_argument("--mix", type=_mix,
                      default="maker=0.5,taker=0.18,sweeper=0.04,canceller=0.18,margin=0.05,perp=0.04,otc=0.01",
                      help="the workload's roles and their weights (ops/workload.py): maker, taker, sweeper, "
                           "canceller (spot), margin, perp, otc; roles the config has no product for get 0 and "
                           "the rest is renormalised (the old spot-only mix: "
                           "maker=0.55,taker=0.2,sweeper=0.05,canceller=0.2)")
    load.add_argument("--report", default="loadtest-report.png",
                      help="write the PNG report here (default loadtest-report.png; '' for none)")
    load.add_argument("--series", action="store_true",
                      help="--json: include the latency distribution and the per-second timeline")
    load.add_argument("--clients", type=_at_least(0, int), default=0,
                      help="many-clients mode: this many independent clients, each with 1-4 orders in flight")
    load.add_argument("--drivers", type=_at_least(1, int), default=2,
                      help="many-clients mode: driver processes to spread them over")
    load.add_argument("--seconds", type=_at_least(0.1, float), default=10.0,
                      help="many-clients mode: how long the clients trade")
    load.add_argument("--seed", type=int, default=7)
    load.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    load.add_argument("--no-durability", action="store_true", help="run without journals (to measure their cost)")
    load.set_defaults(handler=cmd_loadtest)

    check = commands.add_parser("verify", help="check stored state offline: checksums, conservation, holds, replay",
                                description="Check every snapshot and journal record of every actor directory "
                                            "against its checksum, rebuild every actor from its LMDB store (the "
                                            "exchange must be stopped) and check conservation of every asset, "
                                            "that no hold is orphaned, and that replay from the oldest snapshot "
                                            "gives the same state hash. Exit code 1 on any corruption or "
                                            "mismatch, one line per problem.")
    check.add_argument("--data", default="./data", help="data directory (default ./data)")
    check.add_argument("--config", default=None, help="TOML config (default: the built-in one)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--log-level", default="ERROR")
    check.set_defaults(handler=cmd_verify)

    chaos = commands.add_parser("chaos", help="load + random actor kills; report losses and recovery",
                                description="Run the load generator while killing random actors (ray.kill with "
                                            "restart) and SIGKILLing their worker processes; then settle and "
                                            "report acknowledged orders lost, double settlements, conservation "
                                            "and recovery times.")
    _common(chaos)
    chaos.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    chaos.add_argument("--kill-interval", type=float, default=3.0, help="seconds between kills")
    chaos.add_argument("--accounts", type=int, default=200)
    chaos.add_argument("--concurrency", type=int, default=4)
    chaos.add_argument("--batch", type=int, default=200)
    chaos.add_argument("--seed", type=int, default=11)
    chaos.add_argument("--no-progress", action="store_true")
    chaos.add_argument("--report", default="chaos-report.png",
                       help="write the PNG report here (default chaos-report.png; '' for none)")
    chaos.set_defaults(handler=cmd_chaos)

    margin = commands.add_parser("margin", help="lending pools, insurance fund and latest liquidations",
                                 description="Connect to a running exchange (`exchange up`) and show every lending "
                                             "pool (supplied, borrowed, utilization, yearly rates), the insurance "
                                             "fund and the latest public liquidation records (account ids hashed).")
    margin.add_argument("--address", default="auto", help="the Ray cluster the exchange runs on (default auto)")
    margin.add_argument("--limit", type=int, default=20, help="how many liquidation records to show")
    margin.add_argument("--json", action="store_true", help="print the report as JSON (minor units and ppm)")
    margin.add_argument("--log-level", default="ERROR")
    margin.set_defaults(handler=cmd_margin)

    status = commands.add_parser("status", help="which actors are up, and why the others are not",
                                 description="Connect to a running exchange's Ray cluster and show every actor "
                                             "the config calls for: up (and on which node slot), restarting, "
                                             "waiting for its node slot (a lost node: actors/placement.py) or "
                                             "missing. Exit 1 when any is down.")
    status.add_argument("--address", default="auto", help="the Ray cluster the exchange runs on (default auto)")
    status.add_argument("--config", default=None, help="the exchange's TOML config (default: the built-in one)")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.add_argument("--log-level", default="ERROR")
    status.set_defaults(handler=cmd_status)

    audit = commands.add_parser("audit", help="recompute stored ledgers anyone can check (insurance funds, risk trail)",
                                description="Offline checks of ledgers the exchange publishes.")
    audits = audit.add_subparsers(dest="ledger", required=True, metavar="LEDGER")
    insurance = audits.add_parser("insurance", help="the perpetual insurance funds: chain and balances",
                                  description="Read the liquidator's store under --data (the exchange stopped), "
                                              "recompute the perpetual insurance funds' SHA-256 chain and every "
                                              "balance from the entries alone. Exit code 1 on any altered, "
                                              "missing or reordered entry, or a store failing its checksums.")
    insurance.add_argument("--data", default="./data", help="data directory (default ./data)")
    insurance.add_argument("--json", action="store_true", help="print the report as JSON")
    insurance.add_argument("--log-level", default="ERROR")
    insurance.set_defaults(handler=cmd_audit_insurance)
    trail = audits.add_parser("verify", help="the risk audit trail: every actor's hash chain",
                              description="Check the hash chains of the risk audit trail (operator and automatic "
                                          "risk actions): from an export (--file) or the stored state under --data "
                                          "(the exchange stopped). Exit code 1 on any altered, removed or "
                                          "reordered entry.")
    trail.add_argument("--file", default=None, help="an export: {\"chains\": [...]} as RiskDesk.chains() gives")
    trail.add_argument("--data", default="./data", help="data directory when no --file (default ./data)")
    trail.add_argument("--config", default=None, help="TOML config (default: the built-in config/default.toml)")
    trail.add_argument("--export", default=None, help="also write the chains read to this file")
    trail.add_argument("--json", action="store_true", help="print the report as JSON")
    trail.add_argument("--log-level", default="ERROR")
    trail.set_defaults(handler=cmd_audit_verify)

    sim = commands.add_parser("sim", help="seeded deterministic simulator of the actor protocol (no Ray)",
                              description="Run the real shard, market and pool actors in one process under a "
                                          "seeded scheduler that reorders, loses and duplicates messages and "
                                          "crashes actors; an independent auditor checks every step. Same as "
                                          "ops/sim.py (see its --help for the fault model and the checks).")
    __import__("ops.sim", fromlist=["add_arguments"]).add_arguments(sim)
    sim.add_argument("--log-level", default="ERROR")
    sim.set_defaults(handler=lambda args: __import__("ops.sim", fromlist=["run"]).run(args))

    __import__("ops.gateway_cli", fromlist=["add_commands"]).add_commands(commands)

    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    if getattr(args, "json", False):
        _reserve_stdout_for_json()
    return args.handler(args)


def _reserve_stdout_for_json() -> None:
    """With --json, stdout carries exactly one JSON document. Ray (and its C++
    core) write worker notices to file descriptor 1, so fd 1 is pointed at
    stderr and ``print`` writes to a saved copy of the real stdout."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(real, "w", buffering=1)


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--config", default=None, help="TOML config (default: the built-in config/default.toml)")
    sub.add_argument("--address", default=None, help="join a running Ray cluster (e.g. auto) instead of "
                                                     "starting a local one")
    sub.add_argument("--data", default=None, help="data directory for the LMDB journals and snapshots "
                                                  "(up: default ./data; loadtest: default a fresh temporary one)")
    sub.add_argument("--num-cpus", type=int, default=2, help="CPUs for a local Ray cluster")
    sub.add_argument("--json", action="store_true", help="print a machine-readable JSON summary at the end")
    sub.add_argument("--log-level", default="WARNING", help="structured log level (JSON lines on stderr)")


def cmd_up(args: argparse.Namespace) -> int:
    from actors import bootstrap
    from actors.capability import Keyring, Role
    from actors.client.exchange_client import ExchangeClient
    from actors.client.risk import RiskDesk
    from exchange.perp.rules import perp_markets
    from ops.demo import format_summary, run_demo

    log = logging.getLogger("exchange.up")
    args.data = args.data or "./data"
    Path(args.data).mkdir(parents=True, exist_ok=True)
    bootstrap.init_ray(address=args.address, num_cpus=args.num_cpus)
    keyring = Keyring.mint()                 # kept here: the demo's risk operators act with it
    handles = bootstrap.create_actors(args.config, detached=bool(args.address), data_dir=args.data, keyring=keyring)
    client = ExchangeClient(handles, owns_cluster=True)
    operator = keyring.capability(Role.OPERATOR)
    desks = ((RiskDesk(handles, operator, "demo-risk"), RiskDesk(handles, operator, "demo-treasury"))
             if handles.surveillance is not None else (None, None))
    logs.event(log, "exchange started", markets=list(client.config.markets), shards=client.config.shards,
               data=args.data)
    if not args.json:
        markets = [*client.config.markets, *(f"{name} (perpetual)" for name in perp_markets(client.config))]
        print(f"exchange up: markets {', '.join(markets)}; {client.config.shards} shards; "
              f"data {args.data}. Ctrl-C to stop.", flush=True)
        _print_metrics_help(client.handles)
    printer = (lambda s: None) if args.json else (lambda s: print(format_summary(s), flush=True))
    stop = asyncio.Event()

    async def runner() -> dict:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        stop_gateway, bot = await _start_gateway(client, args, log)
        try:
            return await demo_until_stopped(bot)
        finally:
            if stop_gateway is not None:
                await stop_gateway()

    async def demo_until_stopped(bot: tuple) -> dict:
        demo = asyncio.create_task(run_demo(client, args.duration, not args.no_demo, printer, args.seed, desks,
                                            operator, bot))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({demo, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if demo in done:
            stopper.cancel()
            return demo.result()
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo                      # (the HTTP bot closes its stream while the gateway still serves)
        return {"stopped": "signal", "conservation_ok": client.audit()["ok"]}

    try:
        summary = asyncio.run(runner())
    finally:
        client.shutdown()
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(f"stopped; conservation {'OK' if summary.get('conservation_ok') else 'BROKEN'}")
    return 0 if summary.get("conservation_ok") else 1


async def _start_gateway(client, args: argparse.Namespace, log) -> tuple:
    """Serve the HTTP API (``gateway/``) at ``--gateway`` (a busy port: any free one), its keys in
    the durable store ``exchange keys`` manages (``<--data>/gateway``), with a key for the demo's
    HTTP bot, printed once. Returns ``stop`` (a coroutine function: stop serving, revoke the
    bot's key, close the store) and the bot's ``(url, key, secret)``; ``(None, ())`` with
    ``--no-gateway``."""
    if args.no_gateway:
        return None, ()
    from gateway.keys import KeyStore
    from gateway.server import Gateway, serve
    from ops.demo_gateway import BOT
    host, _, port = args.gateway.rpartition(":")
    keys_dir = Path(args.data) / "gateway"
    keys = KeyStore.open(keys_dir)
    gateway = Gateway(client, keys)
    try:
        served, bound = await serve(gateway, host or "127.0.0.1", int(port))
    except OSError:
        served, bound = await serve(gateway, host or "127.0.0.1", 0)
    url = f"http://{host or '127.0.0.1'}:{bound}"
    key, secret = keys.create(BOT, ["read", "trade"])

    async def stop() -> None:
        await served.cleanup()
        keys.revoke(key)                    # minted for this run: none piles up live across runs
        keys.close()
    logs.event(log, "gateway serving", url=url, keys=str(keys_dir))
    if not args.json:
        print(f"gateway: {url}/api/v3/... (Binance-style REST and WebSocket, docs/API.md)\n"
              f"  transparency page {url}/transparency\n"
              f"  the demo bot's key {key}\n"
              f"      and its secret {secret} (shown this once; the key is revoked at stop)\n"
              f"  keys of your own: exchange keys create --account N (kept in {keys_dir}; "
              f"HMAC-SHA256 over the query, as Binance signs)", flush=True)
    return stop, (url, key, secret)


def _print_metrics_help(handles) -> None:
    """Where the metrics are, and how to point Prometheus and Grafana at them."""
    import ray
    if handles.metrics is None:
        print("metrics: off ([metrics] enabled = false)", flush=True)
        return
    host, port = ray.get(handles.metrics.address.remote())
    root = Path(__file__).resolve().parent
    print(f"metrics: http://{host}:{port}/metrics (every actor, label `actor`)\n"
          f"  prometheus --config.file={root / 'prometheus/prometheus.yml'} --storage.tsdb.path=./data/prometheus "
          f"--web.listen-address=127.0.0.1:9090\n"
          f"    (scrapes 127.0.0.1:9464{'' if port == 9464 else f'; edit its target to {host}:{port}'}; "
          f"alert rules {root / 'prometheus/alerts.yml'})\n"
          f"  docker run --rm --network host -v {root / 'grafana/provisioning'}:/etc/grafana/provisioning "
          f"-v {root / 'grafana/dashboards'}:/var/lib/grafana/dashboards/exchange grafana/grafana\n"
          f"    (Grafana on http://127.0.0.1:3000, admin/admin; dashboards in folder Exchange)", flush=True)


def _report(args: argparse.Namespace, result: dict, ok: bool) -> int:
    """Print a result as one JSON document (--json) or aligned key: value lines."""
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0 if ok else 1


def _mix(text: str) -> dict:
    from ops.workload import parse_mix
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _at_least(low, kind):
    """An argparse type: a ``kind`` (int, float) of at least ``low``, else a usage error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below the minimum {low}")
        return value
    return parse


def cmd_loadtest(args: argparse.Namespace) -> int:
    from ops.loadtest import run_loadtest
    result = run_loadtest(args)
    return _report(args, result, result.get("conservation_ok", False))


def cmd_verify(args: argparse.Namespace) -> int:
    from actors.durability.storage import FormatError, RecoveryError
    from ops.verify import verify
    try:
        report = verify(args.data, args.config)
    except (RecoveryError, FormatError) as exc:          # a message, never a traceback
        report = {"ok": False, "problems": [str(exc)]}
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(f"verify {args.data}: {'OK' if report['ok'] else 'FAILED'}")
        for problem in report.get("problems", [report.get("error")]):
            if problem:
                print(f"  - {problem}")
        for asset, off in report.get("imbalance", {}).items():
            print(f"  {asset:>6}: {'balanced' if not off else f'off by {off}'}")
    return 0 if report["ok"] else 1


def cmd_audit_insurance(args: argparse.Namespace) -> int:
    from ops.insurance_audit import audit_insurance, format_report
    report = audit_insurance(args.data)
    print(json.dumps(report) if args.json else format_report(args.data, report))
    return 0 if report["ok"] else 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from ops.risk_audit import chains_from_data, chains_from_file, format_report, report
    chains = chains_from_file(args.file) if args.file else chains_from_data(args.data, args.config)
    if args.export:
        with open(args.export, "w") as f:
            json.dump({"chains": chains}, f)
    result = report(chains)
    print(json.dumps(result) if args.json else format_report(result))
    return 0 if result["ok"] else 1


def cmd_margin(args: argparse.Namespace) -> int:
    from actors.client.exchange_client import ExchangeClient
    from ops.margin_report import format_margin_report, margin_report
    client = ExchangeClient.connect(args.address)
    report = margin_report(client, args.limit)
    print(json.dumps(report, default=str) if args.json else format_margin_report(client, report))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from actors import bootstrap, health
    from exchange.config import load_config
    bootstrap.init_ray(args.address)
    report = health.status(load_config(args.config))
    print(json.dumps(report) if args.json else health.describe(report))
    return 0 if report["ok"] else 1


def cmd_chaos(args: argparse.Namespace) -> int:
    from ops.chaos import run_chaos
    result = run_chaos(args)
    return _report(args, result, result["acked_lost"] == 0 and result["double_settlements"] == 0
                   and result["conservation_ok"])


if __name__ == "__main__":
    sys.exit(main())
