"""Benchmark: orders over HTTP through the gateway against the Python client handle (issue 18).

Starts every actor on a local Ray cluster (journals on, in a temporary folder) and the
gateway on loopback in this process. ``--processes`` client processes, each with its own
account (market-maker tier: the rulebook's order rates do not stop it) and HMAC key, run
``--concurrency`` bots each for ``--seconds``: a bot places a post-only limit order well
under the market (``POST /api/v3/order``, signed) and cancels it (``DELETE``), again and
again. Every request's latency goes into an HDR histogram.

With ``--gateways N`` the gateway runs apart, as ``exchange gateway --processes N`` (N
processes on one port, keys in their shared store) instead of in this process.

The baseline, in the same run: the same bots, the same number at once, placing and
cancelling through the Python client handle (``execute_async``, one command a call) from
this process. Reported: requests per second and p50/p99/p99.9 of each, and their ratios
(``http_to_handle_rate``, ``http_p50_over_handle_p50``), with Ray's idle call p50.

Usage: python ops/bench/gateway.py --json [--seconds 5] [--processes 2] [--concurrency 8] [--gateways 2]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.bench import report  # noqa: E402

ACCOUNTS = 9_300_001                  # the first bot account; one per client process and one for the handle
PRICE = "30000.00"                    # well under the market: every order rests, then is cancelled


def http_bots(url: str, key: str, secret: str, seconds: float, concurrency: int, out) -> None:
    """One client process: ``concurrency`` bots placing and cancelling over HTTP; puts the
    latencies (seconds), the refusals and the wall-clock start and end of its bots on ``out``
    (its own start-up is not counted)."""
    import aiohttp

    from gateway.auth import hmac_query

    async def main() -> tuple[list, int, float, float]:
        latencies, refused = [], 0
        began, stop = time.time(), time.perf_counter() + seconds
        async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": key},
                                         connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async def call(method: str, path: str, **params):
                nonlocal refused
                params["timestamp"] = time.time_ns() // 1_000_000
                started = time.perf_counter()
                async with session.request(method, f"{url}{path}?{hmac_query(secret, params)}") as response:
                    body = await response.json()
                latencies.append(time.perf_counter() - started)
                refused += response.status != 200
                return body

            async def bot() -> None:
                while time.perf_counter() < stop:
                    placed = await call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER",
                                        quantity="0.0010", price=PRICE)
                    if "orderId" in placed:
                        await call("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=placed["orderId"])
            await asyncio.gather(*(bot() for _ in range(concurrency)))
        return latencies, refused, began, time.time()
    out.put(asyncio.run(main()))


async def handle_bots(client, account: int, seconds: float, bots: int) -> tuple[list, int]:
    """The same bots through the Python client handle, one command a call."""
    from exchange.matching.orders import TimeInForce
    from exchange.messages.records import CancelOrder

    latencies, refused = [], 0
    stop = time.perf_counter() + seconds

    async def call(command) -> list:
        nonlocal refused
        started = time.perf_counter()
        events = (await client.execute_async([command]))[0]
        latencies.append(time.perf_counter() - started)
        refused += any(type(e).__name__.endswith("Rejected") for e in events)
        return events

    async def bot() -> None:
        while time.perf_counter() < stop:
            events = await call(client.order(account, "BTC-USDT", "buy", "0.0010", PRICE, tif=TimeInForce.POST_ONLY))
            booked = [e.order_id for e in events if type(e).__name__ == "OrderBooked"]
            if booked:
                await call(CancelOrder(client.next_request_id(), 0, account, "BTC-USDT", booked[0]))
    await asyncio.gather(*(bot() for _ in range(bots)))
    return latencies, refused


def run(seconds: float, processes: int, concurrency: int, gateways: int = 0) -> dict:
    import ray

    from actors import bootstrap
    from actors.client.exchange_client import ExchangeClient
    from gateway.keys import KeyStore
    from gateway.limits import RateLimiter
    from gateway.server import Gateway, serve
    from ops.bench.ray_rate import idle_call_p50_ms
    from ops.latency import LatencyRecorder

    bootstrap.init_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as data:
        client = ExchangeClient(bootstrap.create_actors(data_dir=data))
        loop = asyncio.new_event_loop()
        served: dict = {}
        try:
            accounts = range(ACCOUNTS, ACCOUNTS + processes + 1)
            for account in accounts:
                assert client.open_account(account, "market_maker").ok
                assert client.deposit(account, "USDT", "100000000").ok
            if gateways:
                keys = KeyStore.open(Path(data) / "gateway")
                url, served["apart"] = serve_apart(Path(data) / "gateway", gateways)
            else:
                keys = KeyStore()
                unlimited = RateLimiter(weight_per_minute=10**12)          # the benchmark measures, it is not policed
                gateway = Gateway(client, keys, per_address=unlimited, per_key=RateLimiter(weight_per_minute=10**12))
                bound = threading.Event()

                def serve_here() -> None:
                    asyncio.set_event_loop(loop)
                    served["runner"], served["port"] = loop.run_until_complete(serve(gateway))
                    bound.set()
                    loop.run_forever()
                threading.Thread(target=serve_here, daemon=True).start()
                bound.wait(30)
                url = f"http://127.0.0.1:{served['port']}"
            idle_p50 = idle_call_p50_ms(300)

            context = multiprocessing.get_context("spawn")
            out = context.Queue()
            workers = []
            for account in accounts[:processes]:
                key, secret = keys.create(account, ["read", "trade"])
                workers.append(context.Process(target=http_bots, args=(url, key, secret, seconds, concurrency, out)))
            for worker in workers:
                worker.start()
            http, http_refused, spans = LatencyRecorder(), 0, []
            for _ in workers:
                latencies, refused, began, ended = out.get(timeout=seconds + 120)
                http.extend(latencies)
                http_refused += refused
                spans.append((began, ended))
            for worker in workers:
                worker.join(30)
            http_s = max(e for _, e in spans) - min(b for b, _ in spans)       # the bots' time, not start-up

            started = time.perf_counter()
            latencies, handle_refused = asyncio.run(handle_bots(client, accounts[-1], seconds, processes * concurrency))
            handle_s = time.perf_counter() - started
            handle = LatencyRecorder()
            handle.extend(latencies)
            http_rate, handle_rate = http.count / http_s, handle.count / handle_s
            hp, bp = http.percentiles((0.5, 0.99, 0.999)), handle.percentiles((0.5, 0.99, 0.999))
            return {"seconds": seconds, "processes": processes, "concurrency_per_process": concurrency,
                    "gateway_processes": gateways or "1 (in the benchmark's process)",
                    "http_requests": http.count, "http_requests_per_s": round(http_rate),
                    **{f"http_{k}": v for k, v in hp.items()}, "http_refused": http_refused,
                    "handle_requests": handle.count, "handle_requests_per_s": round(handle_rate),
                    **{f"handle_{k}": v for k, v in bp.items()}, "handle_refused": handle_refused,
                    "http_to_handle_rate": round(http_rate / handle_rate, 3),
                    "http_p50_over_handle_p50": round(hp["p50_ms"] / bp["p50_ms"], 2),
                    "ray_idle_call_p50_ms": idle_p50, "durability": "sync journals"}
        finally:
            if "apart" in served:
                served["apart"].send_signal(signal.SIGINT)
                served["apart"].wait(30)
            if "runner" in served:
                asyncio.run_coroutine_threadsafe(served["runner"].cleanup(), loop).result(30)
                loop.call_soon_threadsafe(loop.stop)
            bootstrap.destroy_actors(client.handles)
            ray.shutdown()


def serve_apart(keys: Path, processes: int) -> tuple[str, subprocess.Popen]:
    """``exchange gateway --processes N`` on a free loopback port, unpoliced; its URL, once it answers."""
    import ray
    import requests
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gcs_port = ray.get_runtime_context().gcs_address.rpartition(":")[2]
    apart = subprocess.Popen([sys.executable, "-m", "ops.cli", "gateway", "--address", f"127.0.0.1:{gcs_port}",
                              "--listen", f"127.0.0.1:{port}", "--processes", str(processes), "--keys", str(keys),
                              "--weight-per-minute", str(10**12)], stdout=subprocess.DEVNULL)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/api/v3/ping", timeout=2)
            time.sleep(3 * processes)                    # (the others may still be connecting)
            return url, apart
        except requests.ConnectionError:
            time.sleep(0.5)
    apart.kill()
    raise RuntimeError("the gateway processes did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each side runs")
    parser.add_argument("--processes", type=int, default=2, help="HTTP client processes")
    parser.add_argument("--concurrency", type=int, default=8, help="bots per client process (requests in flight)")
    parser.add_argument("--gateways", type=int, default=0,
                        help="run the gateway apart as exchange gateway --processes N (default: in this process)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report(run(args.seconds, args.processes, args.concurrency, args.gateways), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
