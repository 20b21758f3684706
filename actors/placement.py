"""Where each actor runs on a Ray cluster, and where its data lives (issue 17).

Without a ``[placement]`` table every actor goes wherever Ray puts it: one node, or any.
With one, the exchange is spread over **node slots**:

    [placement]
    nodes = ["a", "b", "c"]      # a Ray node offering the custom resource "exchange-node-a" is slot a
    [placement.pin]              # optional: an actor on a chosen slot
    "market:BTC-USDT" = "b"

- Shards go round the slots in order (``shard:i`` on ``nodes[i % n]``), markets too
  (spot then perpetual, in the config's order, starting after the first shards so a
  market and a shard share a slot only when there are more of them than slots;
  shards added later, ``actors/growth.py``, take the next slots and move no market);
  the other actors (pools, liquidator, index, risk, OTC, metrics) live on the first
  slot. ``[placement.pin]`` overrides any of them.
- An actor asks Ray for a sliver (``SLIVER``) of its slot's resource, so it is
  scheduled only on the node that offers it, and as many actors as need be fit on
  one node.
- **Its data lives on its slot's node**: each actor's LMDB store is a folder of the
  data directory on that node's disk (``--data``: a node-local path, or a
  persistent volume in KubeRay, ``ops/k8s/``). Nothing is shared between actors
  or nodes.
- **A node lost**: its actors die with it and Ray restarts them (``max_restarts``)
  where their resource is offered. No other node offers the lost slot's, so they
  **wait**, unscheduled, until a node offering it joins, and then recover from
  that node's data: the same disk (a restarted machine, a KubeRay pod whose
  persistent volume follows it) brings everything acknowledged back. They never
  start empty elsewhere. Meanwhile ``exchange status`` (``actors/health.py``)
  names them as waiting for their slot; their peers' links hold what they owe
  them and deliver it when they return.

``plan`` is pure (config in, actor name -> slot out); ``options`` is what
``actors/bootstrap.py`` adds to each actor's ``.options(...)``.
"""
from __future__ import annotations

from actors.metrics.recorders import metrics_settings
from exchange.config import ConfigError, ExchangeConfig
from exchange.perp.rules import perp_markets

RESOURCE_PREFIX = "exchange-node-"
SLIVER = 0.001                      # of a slot's resource per actor: a thousand actors fit on one node
SINGLETONS = ("lending", "liquidator", "index", "metrics", "surveillance", "treasury", "admin", "otc")


def resource(slot: str) -> str:
    return f"{RESOURCE_PREFIX}{slot}"


def slots(config: ExchangeConfig) -> list[str]:
    """The configured node slots (none: no placement)."""
    raw = config.sections.get("placement") or {}
    nodes = raw.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n and n.isascii() and
                                              n.replace("-", "").isalnum() for n in nodes) \
            or len(set(nodes)) != len(nodes):
        raise ConfigError("<config>", "placement.nodes", "a list of distinct slot names ([A-Za-z0-9-])")
    return nodes


def actor_names(config: ExchangeConfig) -> list[str]:
    """Every actor the config calls for, by name, in creation order."""
    names = [f"shard:{i}" for i in range(config.shards)]
    names += [f"market:{m.name}" for m in config.market_list] + [f"market:{n}" for n in sorted(perp_markets(config))]
    names += ["lending", "liquidator", "index"]
    if metrics_settings(config)["enabled"]:
        names.append("metrics")
    if config.risk is not None:
        names += ["surveillance", "treasury", "admin"]
    if "otc" in config.sections:
        names.append("otc")
    return names


def plan(config: ExchangeConfig) -> dict[str, str | None]:
    """Actor name -> its slot (None for every actor without a ``[placement]``)."""
    nodes = slots(config)
    names = actor_names(config)
    if not nodes:
        return dict.fromkeys(names)
    pins = (config.sections.get("placement") or {}).get("pin", {})
    for name, slot in pins.items():
        if slot not in nodes:
            raise ConfigError("<config>", f"placement.pin.{name}", f"not a slot of placement.nodes: {slot!r}")
    out: dict[str, str | None] = {}
    markets = [n for n in names if n.startswith("market:")]
    for name in names:
        if name.startswith("shard:"):
            slot = nodes[int(name.split(":")[1]) % len(nodes)]
        elif name.startswith("market:"):
            slot = nodes[(config.routing.counts()[0] + markets.index(name)) % len(nodes)]   # shards added later move none
        else:
            slot = nodes[0]
        out[name] = pins.get(name, slot)
    return out


def options(config: ExchangeConfig, name: str) -> dict:
    """What the actor ``name`` adds to its ``.options(...)``: its slot's resource, if any."""
    slot = plan(config).get(name)
    return {} if slot is None else {"resources": {resource(slot): SLIVER}}
