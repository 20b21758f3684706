"""Bootstrap: create (or find) the exchange's actors on a Ray cluster.

One function reads ``config/`` and creates every actor with a stable name in
the ``exchange`` namespace: ``market:<NAME>`` per market, ``shard:<i>`` per
account shard, ``lending`` (the pools), ``liquidator``, ``index``,
``metrics``, with a risk rulebook ``surveillance``, ``treasury`` and ``admin``, and
with an ``[otc]`` table the OTC desk ``otc``. Actors ask for
``num_cpus=0``: they are long-lived
processes that share the machine's cores with the OS scheduler, so a 2-core
local cluster can host them all; Ray's CPU slots stay free for tasks.
``lifetime="detached"`` (used by ``exchange up``) keeps them alive after the
creating driver exits so other drivers can ``connect(address="auto")``. With a
``[placement]`` table each actor is bound to a node slot (``actors/placement.py``).

``create_actors`` mints the deployment's ``Keyring`` (``actors/capability.py``)
unless one is given and hands it to every actor's constructor (Ray re-runs
the constructor with the same arguments on a restart, so it survives
restarts). ``Handles`` never carries it: whoever wants operator powers keeps
the keyring it passed in (``actors.client.operator.OperatorClient``). An embedded
cluster (``init_ray`` without an address) listens on loopback only; see
``docs/SECURITY.md``.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray._private import ray_constants, services
from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

from actors import placement
from actors.capability import Keyring
from actors.index_actor import RemoteIndex
from actors.lending_actor import RemoteLending
from actors.liquidator_actor import RemoteLiquidator
from actors.market_actor import RemoteMarket
from actors.perp_market_actor import RemotePerpMarket
from actors.metrics.recorders import metrics_settings
from actors.metrics.actor import RemoteMetrics
from actors.shard_actor import RemoteShard
from actors.surveillance_actor import RemoteSurveillance
from actors.treasury_actor import RemoteTreasury
from actors.admin_actor import RemoteAdmin
from actors.otc_actor import RemoteOtc
from exchange.config import ExchangeConfig, load_config
from exchange.perp.rules import perp_markets

NAMESPACE = "exchange"
ASYNC_CONCURRENCY = 10_000
LOOPBACK = "127.0.0.1"
# Ray takes loopback as the node's address only where it does not support
# clusters (macOS, Windows); on Linux this switch, read by Ray's own processes
# at start, makes an embedded cluster a loopback-only one.
SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass
class Handles:
    config: ExchangeConfig
    markets: dict           # name -> actor handle
    shards: list            # index -> actor handle
    index: object
    metrics: object = None  # the MetricsActor (None with [metrics] enabled = false)
    lending: object = None  # the LendingPoolActor ("lending")
    liquidator: object = None  # the LiquidatorActor ("liquidator")
    surveillance: object = None  # the SurveillanceActor ("surveillance"), with a risk rulebook
    treasury: object = None      # the TreasuryActor ("treasury"), with a risk rulebook
    admin: object = None         # the AdminActor ("admin"): operator actions, with a risk rulebook
    otc: object = None           # the OtcActor ("otc"): the OTC desk, with an [otc] table


def init_ray(address: str | None = None, num_cpus: int = 2, namespace: str = NAMESPACE) -> None:
    """Start a local Ray cluster (or join ``address``) unless one is connected.

    A local cluster binds every port (GCS, raylet, object manager, workers,
    agents) to 127.0.0.1 and starts no dashboard: the machine's loopback is
    its network perimeter (``docs/SECURITY.md``). Joining a cluster on this
    machine's loopback (``auto`` finding one, or ``127.0.0.1:PORT``), the
    driver stays on loopback too: Ray would otherwise swap 127.0.0.1 for the
    machine's address, where that cluster does not listen.
    """
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    kwargs = dict(namespace=namespace, logging_level="WARNING", log_to_driver=True,
                  configure_logging=True)
    if address:
        found = services.get_ray_address_from_environment(address, None) if address == "auto" else address
        if found and found.rpartition(":")[0] in (LOOPBACK, "localhost"):
            # Ray turns token auth on (its token in ~/.ray) only for a cluster it finds itself
            # ("auto"); the explicit loopback address used here would join without the token
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
            with _loopback_only():
                ray.init(address=f"{LOOPBACK}:{found.rpartition(':')[2]}", _node_ip_address=LOOPBACK, **kwargs)
        else:
            ray.init(address=address, **kwargs)
        return
    with _loopback_only():
        ray.init(num_cpus=num_cpus, include_dashboard=False, dashboard_host=LOOPBACK,
                 _node_ip_address=LOOPBACK, **kwargs)


@contextlib.contextmanager
def _loopback_only():
    """Ray's own switch for a cluster on loopback, for the calls made inside."""
    saved_env, saved_flag = os.environ.get(SINGLE_NODE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_NODE_ENV] = "0"                # inherited by the processes ray.init starts
    ray_constants.ENABLE_RAY_CLUSTER = False         # this process imported Ray already
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(SINGLE_NODE_ENV, None)
        else:
            os.environ[SINGLE_NODE_ENV] = saved_env


def create_actors(config_path: str | Path | None = None, detached: bool = False, index_seed: int = 1,
                  data_dir: str | Path | None = None, metrics_port: int | None = None,
                  keyring: Keyring | None = None) -> Handles:
    """Create every actor of the exchange (recovering from ``data_dir`` if it holds state).

    Every actor gets ``keyring`` (a new one is minted if none is given): the
    capabilities its peers call it with and it calls its peers with.

    Actors restart by themselves when their process dies (``max_restarts=-1``)
    and recover from their journal; they find each other by name, so nothing
    has to re-wire them after a restart.
    """
    config_path = str(config_path) if config_path else None
    data = str(Path(data_dir).resolve()) if data_dir else None
    config = load_config(config_path)
    keyring = keyring or Keyring.mint()
    lifetime = "detached" if detached else None

    def at(name: str) -> dict:
        return _options(config, name, lifetime)
    metrics = (RemoteMetrics.options(name="metrics", num_cpus=0, lifetime=lifetime, max_restarts=-1,
                                     **placement.options(config, "metrics"))
               .remote(config_path, metrics_port) if metrics_settings(config)["enabled"] else None)
    shards = [shard_actor(config, config_path, i, data, keyring, lifetime) for i in range(config.shards)]
    markets = {m.name: market_actor(config, config_path, m.name, data, keyring, lifetime) for m in config.market_list}
    markets.update((name, RemotePerpMarket.options(**at(f"market:{name}"))
                    .remote(config_path, name, data, keyring=keyring)) for name in sorted(perp_markets(config)))
    lending = RemoteLending.options(**at("lending")).remote(config_path, data, keyring=keyring)
    liquidator = RemoteLiquidator.options(**at("liquidator")).remote(config_path, data, keyring=keyring)
    index = RemoteIndex.options(**at("index")).remote(config_path, index_seed, keyring=keyring)
    surveillance = (RemoteSurveillance.options(**at("surveillance")).remote(config_path, data, keyring=keyring)
                    if config.risk is not None else None)
    ray.get([s.stats.remote() for s in shards] + [m.stats.remote() for m in markets.values()]
            + [lending.stats.remote(), liquidator.stats.remote()])
    treasury = (RemoteTreasury.options(**at("treasury")).remote(config_path, data, keyring=keyring)
                if config.risk is not None else None)
    admin = (RemoteAdmin.options(**at("admin")).remote(config_path, keyring=keyring)
             if config.risk is not None else None)
    otc = (RemoteOtc.options(**at("otc")).remote(config_path, data, keyring=keyring)
           if "otc" in config.sections else None)
    if surveillance is not None:
        ray.get([surveillance.start.remote(), treasury.start.remote()])   # watching and paying from now on
    if otc is not None:
        ray.get(otc.start.remote())                                         # quoting from the index from now on
    return Handles(config, markets, shards, index, metrics, lending, liquidator, surveillance, treasury, admin,
                   otc)


def market_actor(config: ExchangeConfig, config_path: str | None, name: str, data: str | None, keyring: Keyring,
                 lifetime: str | None = None):
    """The spot market actor ``market:<name>`` (created; its node slot from ``[placement]``)."""
    return RemoteMarket.options(**_options(config, f"market:{name}", lifetime)).remote(config_path, name, data,
                                                                                       keyring=keyring)


def shard_actor(config: ExchangeConfig, config_path: str | None, index: int, data: str | None, keyring: Keyring,
                lifetime: str | None = None):
    """The account shard actor ``shard:<index>`` (created; its node slot from ``[placement]``)."""
    return RemoteShard.options(**_options(config, f"shard:{index}", lifetime)).remote(config_path, index, data,
                                                                                      keyring=keyring)


def _options(config: ExchangeConfig, name: str, lifetime: str | None) -> dict:
    """The options of the actor ``name``: restarted forever, async, and on its node slot (``actors/placement.py``)."""
    return dict(name=name, num_cpus=0, lifetime=lifetime, max_concurrency=ASYNC_CONCURRENCY, max_restarts=-1,
                max_task_retries=0, **placement.options(config, name))


def find_actors() -> Handles:
    """Look up a running exchange's actors by name (this driver must be connected)."""
    first = ray.get_actor("shard:0")
    config = ray.get(first.exchange_config.remote())
    shards = [ray.get_actor(f"shard:{i}") for i in range(config.shards)]
    markets = {name: ray.get_actor(f"market:{name}")
               for name in [m.name for m in config.market_list] + sorted(perp_markets(config))}
    try:
        metrics = ray.get_actor("metrics")
    except ValueError:         # metrics switched off
        metrics = None
    try:
        surveillance, treasury, admin = ray.get_actor("surveillance"), ray.get_actor("treasury"), \
            ray.get_actor("admin")
    except ValueError:         # no rulebook: no surveillance, no treasury, no admin
        surveillance = treasury = admin = None
    try:
        otc = ray.get_actor("otc")
    except ValueError:         # no [otc] desk
        otc = None
    return Handles(config, markets, shards, ray.get_actor("index"), metrics, ray.get_actor("lending"),
                   ray.get_actor("liquidator"), surveillance, treasury, admin, otc)


def destroy_actors(handles: Handles, wait_s: float = 30) -> None:
    """Kill every actor (detached ones are not removed otherwise) and wait, up to ``wait_s``,
    until their names are free (a kill is asynchronous: an exchange created at once could
    find a name still taken)."""
    for actor in [*handles.shards, *handles.markets.values(), handles.index, handles.metrics, handles.lending,
                  handles.liquidator, handles.surveillance, handles.treasury, handles.admin, handles.otc]:
        if actor is None:
            continue
        try:
            ray.kill(actor)
        except Exception:  # already gone
            pass
    names = [f"shard:{i}" for i in range(len(handles.shards))] + [f"market:{m}" for m in handles.markets] \
        + ["index", "metrics", "lending", "liquidator", "surveillance", "treasury", "admin", "otc"]
    deadline = time.monotonic() + wait_s
    for name in names:
        while time.monotonic() < deadline:
            try:
                ray.get_actor(name)
            except ValueError:          # gone (or never there)
                break
            time.sleep(0.05)
