"""``exchange gateway`` and ``exchange keys``: the HTTP API served on its own, by several
processes, and its API keys managed from the shell (issue 18).

    exchange gateway [--address auto] [--listen 127.0.0.1:8080] [--processes 2] [--keys ./data/gateway]
    exchange keys create --account 7 [--permissions read,trade] [--ip 10.0.0.5 ...] [--ed25519-public-key HEX]
    exchange keys revoke KEY
    exchange keys list [--json]

**Several processes.** ``exchange gateway --processes N`` starts N processes, each a
driver of the exchange's Ray cluster with its own event loop, all listening on the same
address (``SO_REUSEPORT``: the kernel spreads connections over them). They share the
durable key store (``gateway/keys.py``: LMDB under ``--keys``), so a key created or
revoked with ``exchange keys`` holds in every one at its next request. Rate limits and
WebSocket connections are counted per process (decision in docs/DECISIONS.md).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys

from ops import logs

KEYS_DIR = "./data/gateway"


def add_commands(commands) -> None:
    gateway = commands.add_parser("gateway", help="serve the HTTP and WebSocket API (docs/API.md) from N processes",
                                  description="Serve the Binance-style HTTP and WebSocket API of a running exchange "
                                              "(exchange up) from --processes processes sharing --listen. Ctrl-C "
                                              "stops them all.")
    gateway.add_argument("--address", default="auto", help="the Ray cluster the exchange runs on (default auto)")
    gateway.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                         help="where to serve (default 127.0.0.1:8080)")
    gateway.add_argument("--processes", type=int, default=2, help="gateway processes sharing --listen (default 2)")
    gateway.add_argument("--keys", default=KEYS_DIR, help=f"the durable API key store (default {KEYS_DIR})")
    gateway.add_argument("--weight-per-minute", type=int, default=6_000,
                         help="request weight each address and each key may spend a minute, per process "
                              "(default 6000, Binance's)")
    gateway.add_argument("--log-level", default="WARNING")
    gateway.set_defaults(handler=cmd_gateway)

    keys = commands.add_parser("keys", help="create, revoke and list the gateway's API keys",
                               description="Manage the API keys in the durable store every gateway process reads "
                                           "(--keys). A new HMAC key's secret is printed this once and never again.")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key for an account (its secret shown once)")
    create.add_argument("--account", type=int, required=True, help="the account the key trades for")
    create.add_argument("--permissions", default="read,trade", help="comma-separated: read, trade, withdraw")
    create.add_argument("--ip", action="append", default=[], help="an address the key may be used from "
                                                                  "(repeat; none: any)")
    create.add_argument("--ed25519-public-key", default=None, metavar="HEX",
                        help="an Ed25519 key (32 bytes, hex): the owner keeps the private key; no secret is made")
    revoke = actions.add_parser("revoke", help="revoke a key at once, in every gateway process")
    revoke.add_argument("key")
    actions.add_parser("list", help="every key: account, permissions, addresses, revoked (no secret)")
    for sub in (create, revoke, actions.choices["list"]):
        sub.add_argument("--keys", default=KEYS_DIR, help=f"the durable API key store (default {KEYS_DIR})")
        sub.add_argument("--json", action="store_true", help="print the answer as JSON")
        sub.add_argument("--log-level", default="WARNING")
        sub.set_defaults(handler=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    from gateway.keys import KeyStore
    store = KeyStore.open(args.keys)
    try:
        if args.action == "create":
            public = bytes.fromhex(args.ed25519_public_key) if args.ed25519_public_key else None
            try:
                key, secret = store.create(args.account, args.permissions.split(","), args.ip, public)
            except ValueError as exc:
                print(f"exchange keys create: {exc}", file=sys.stderr)
                return 2
            answer = {"apiKey": key, "secretKey": secret, "account": args.account}
            text = f"key {key}\nsecret {secret} (shown this once)" if secret else f"key {key} (Ed25519)"
        elif args.action == "revoke":
            if not store.revoke(args.key):
                print(f"exchange keys revoke: no key {args.key}", file=sys.stderr)
                return 1
            answer, text = {"apiKey": args.key, "revoked": True}, f"revoked {args.key}"
        else:
            rows = [{"apiKey": key, "account": r["account"], "kind": r["kind"], "permissions": r["permissions"],
                     "ips": r["ips"], "revoked": r["revoked"]} for key, r in sorted(store.records().items())]
            answer = {"keys": rows}
            text = "\n".join(f"{r['apiKey']}  account {r['account']}  {r['kind']}  {','.join(r['permissions'])}"
                             f"{'  ips ' + ','.join(r['ips']) if r['ips'] else ''}{'  REVOKED' if r['revoked'] else ''}"
                             for r in rows) or "no keys"
    finally:
        store.close()
    print(json.dumps(answer) if args.json else text)
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    """Start ``--processes`` children serving ``--listen`` and wait; a signal stops them all."""
    if args.processes < 1:
        print("exchange gateway: --processes must be at least 1", file=sys.stderr)
        return 2
    if os.environ.get("EXCHANGE_GATEWAY_CHILD"):
        return asyncio.run(_serve_one(args))
    host, _, port = args.listen.rpartition(":")
    command = [sys.executable, "-m", "ops.cli", "gateway", "--address", args.address, "--listen", args.listen,
               "--keys", args.keys, "--weight-per-minute", str(args.weight_per_minute), "--log-level", args.log_level]
    children = [subprocess.Popen(command, env={**os.environ, "EXCHANGE_GATEWAY_CHILD": "1"})
                for _ in range(args.processes)]
    print(f"gateway: http://{host or '127.0.0.1'}:{port}/api/v3/... from {args.processes} processes "
          f"(pids {', '.join(str(c.pid) for c in children)}); keys {args.keys}. Ctrl-C to stop.", flush=True)
    stopping = []

    def stop(signum, frame) -> None:
        stopping.append(signum)
        for child in children:
            child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    codes = [child.wait() for child in children]
    return 0 if stopping or not any(codes) else 1


async def _serve_one(args: argparse.Namespace) -> int:
    """One gateway process: connect to the exchange, serve until SIGTERM or SIGINT."""
    from actors.client.exchange_client import ExchangeClient
    from gateway.keys import KeyStore
    from gateway.limits import RateLimiter
    from gateway.server import Gateway, serve
    log = logging.getLogger("exchange.gateway")
    client = ExchangeClient.connect(args.address)
    keys = KeyStore.open(args.keys)
    host, _, port = args.listen.rpartition(":")
    gateway = Gateway(client, keys, per_address=RateLimiter(args.weight_per_minute),
                      per_key=RateLimiter(args.weight_per_minute))
    runner, bound = await serve(gateway, host or "127.0.0.1", int(port), reuse_port=True)
    logs.event(log, "gateway process serving", pid=os.getpid(), port=bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
    keys.close()
    client.shutdown()                   # (a connected client leaves the exchange running)
    return 0
