"""Which of the exchange's actors are up, and why the others are not (issue 17).

``status(config)`` reads Ray's actor table and node table (the GCS; no dashboard
needed) for every actor the config calls for (``actors/placement.py:
actor_names``) and says, per actor:

- ``up``: alive, on which node (its slot, with ``[placement]``);
- ``restarting``: its process died and Ray is bringing it back (it recovers from
  its journal, ``actors/durability``);
- ``waiting``: it cannot be scheduled: its node slot's resource is offered by no
  live node (the node was lost: ``actors/placement.py`` says why it waits rather
  than start empty elsewhere);
- ``missing``: no such actor (not created, or killed for good).

``down`` lists the markets and shards (and other actors) not up: what ``exchange
status`` prints first.
"""
from __future__ import annotations

import ray
from ray._private import state as ray_state

from actors import placement
from actors.bootstrap import NAMESPACE

PENDING = ("PENDING_CREATION", "DEPENDENCIES_UNREADY", "RESTARTING")


def status(config) -> dict:
    """Every actor's state, the live nodes' slots, and what is down (module docstring)."""
    plan = placement.plan(config)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    offered = {key.removeprefix(placement.RESOURCE_PREFIX): n["NodeID"]
               for n in nodes for key in n.get("Resources", {}) if key.startswith(placement.RESOURCE_PREFIX)}
    table = {}
    for info in ray_state.actors().values():
        if info.get("Name") and info.get("RayNamespace", NAMESPACE) == NAMESPACE:
            known = table.get(info["Name"])
            if known is None or known["State"] == "DEAD":       # a name's live actor over dead ones
                table[info["Name"]] = info
    actors = {}
    for name, slot in plan.items():
        info = table.get(name)
        if info is None or info["State"] == "DEAD":
            state = "missing"
        elif info["State"] == "ALIVE":
            state = "up"
        elif slot is not None and slot not in offered:
            state = "waiting"
        else:
            state = "restarting"
        node = (info or {}).get("Address", {}).get("NodeID", "") if state == "up" else ""
        actors[name] = {"state": state, "slot": slot, "node": node,
                        "restarts": int((info or {}).get("NumRestarts", 0))}
    down = sorted(name for name, a in actors.items() if a["state"] != "up")
    return {"ok": not down, "down": down, "actors": actors,
            "slots": {slot: node for slot, node in sorted(offered.items())}, "nodes": len(nodes)}


def describe(report: dict) -> str:
    """``status`` as lines a person reads: what is down first, then every actor."""
    lines = ["all actors up" if report["ok"] else
             "DOWN: " + ", ".join(f"{n} ({report['actors'][n]['state']}"
                                  + (f", slot {report['actors'][n]['slot']})" if report['actors'][n]['slot'] else ")")
                                  for n in report["down"])]
    lines.append(f"{report['nodes']} live node(s); slots offered: "
                 + (", ".join(f"{s}={n[:8]}" for s, n in report["slots"].items()) or "none (no [placement])"))
    for name, a in report["actors"].items():
        where = f" slot {a['slot']}" if a["slot"] else ""
        lines.append(f"  {name:<24} {a['state']:<10}{where}{' node ' + a['node'][:8] if a['node'] else ''}"
                     f"{' restarts ' + str(a['restarts']) if a['restarts'] else ''}")
    return "\n".join(lines)
