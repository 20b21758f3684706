"""The real actors of an exchange in one process, each crashed and rebuilt at will.

Slots by actor name (``shard:<i>``, ``market:<name>``: a spot market, or a
``PerpMarketActor`` for each ``[perp.*]`` market, ``lending``, ``liquidator``),
each holding the live ``Incarnation`` or None while down. A crash kills the
incarnation (its tasks cancelled, whatever it had not committed lost) and drops
the object; a restart builds a new object from the same in-memory store (the
constructor recovers from snapshot + journal, as on Ray) and then runs its own
``resume()``, the re-send Ray schedules with ``current_actor.resume.remote()``.
``rebuild(name)`` builds a throw-away copy from the store, for the auditor to
compare with the live one (nothing its recovery sends leaves it). Which
classes are built is a parameter, so a test can run a deliberately broken
variant.

Beside the actors, stand-ins that are always up and never journaled: the
``index`` (``IndexFeed``: the prices the run last published, which the
liquidator asks for after a restart; the publications themselves are the
scheduler's, ``runner``).
"""
from __future__ import annotations

import asyncio
import contextvars

from actors.capability import Keyring
from actors.lending_actor import LendingPoolActor
from actors.liquidator_actor import LiquidatorActor
from actors.market_actor import MarketActor
from actors.shard_actor import AccountShardActor
from exchange.messages.records import LENDING
from actors.perp_market_actor import PerpMarketActor
from exchange.perp.rules import perp_markets
from ops.simulation.network import CURRENT, Incarnation

DEFAULT_CLASSES = {"shard": AccountShardActor, "market": MarketActor, "lending": LendingPoolActor,
                   "liquidator": LiquidatorActor}
LIQUIDATOR = "liquidator"


class IndexFeed:
    """The index as the liquidator sees it: the latest prices by asset the run published."""

    def __init__(self):
        self.prices: dict[str, int] = {}

    def index_prices(self) -> dict[str, int]:
        return dict(self.prices)


class Cluster:
    def __init__(self, config, data_dir: str, classes: dict | None = None, config_path: str | None = None):
        self.config = config
        self.config_path = config_path
        self.data_dir = data_dir
        self.keyring = Keyring.mint()
        self.classes = {**DEFAULT_CLASSES, **(classes or {})}
        self.builders = {f"shard:{i}": self._shard_builder(i) for i in range(config.shards)}
        for market in config.market_list:
            self.builders[f"market:{market.name}"] = self._market_builder(market.name)
        for name in sorted(perp_markets(config)):       # linked to every shard
            self.builders[f"market:{name}"] = self._perp_builder(name)
        self.builders[LENDING] = lambda: self.classes["lending"](config_path, data_dir, keyring=self.keyring)
        self.builders[LIQUIDATOR] = lambda: self.classes["liquidator"](config_path, data_dir, keyring=self.keyring)
        self.slots: dict[str, Incarnation | None] = dict.fromkeys(self.builders)
        self.lives = dict.fromkeys(self.builders, 0)
        self.index = IndexFeed()
        self.services = {"index": Incarnation("index", self.index, 1)}

    def _shard_builder(self, index: int):
        return lambda: self.classes["shard"](self.config_path, index, self.data_dir, keyring=self.keyring)

    def _market_builder(self, market: str):
        return lambda: self.classes["market"](self.config_path, market, self.data_dir, keyring=self.keyring)

    def _perp_builder(self, market: str):
        return lambda: PerpMarketActor(self.config_path, market, self.data_dir, keyring=self.keyring)

    @property
    def names(self) -> list[str]:
        return list(self.builders)

    def knows(self, name: str) -> bool:
        return name in self.builders or name in self.services

    def live(self, name: str) -> Incarnation | None:
        return self.slots.get(name) or self.services.get(name)

    def down(self) -> list[str]:
        return [name for name, slot in self.slots.items() if slot is None]

    def up(self) -> list[str]:
        return [name for name, slot in self.slots.items() if slot is not None]

    def actor(self, name: str):
        slot = self.slots[name]
        return None if slot is None else slot.actor

    def start(self, name: str) -> None:
        """Build ``name`` from its store (recovering) and let it re-send what it owes."""
        assert self.slots[name] is None, f"{name} is up"
        self.lives[name] += 1
        incarnation = Incarnation(name, self.builders[name](), self.lives[name])
        self.slots[name] = incarnation
        context = contextvars.copy_context()
        context.run(CURRENT.set, incarnation)
        asyncio.get_running_loop().create_task(incarnation.actor.resume(), context=context)

    def crash(self, name: str) -> None:
        incarnation = self.slots[name]
        self.slots[name] = None
        incarnation.kill()

    def rebuild(self, name: str):
        """A new object recovered from ``name``'s store, not wired to anything: built as a dead
        incarnation, so whatever its recovery would send (a shard replaying a mark tells the
        liquidator) or start goes nowhere."""
        ghost = Incarnation(name, None, 0)
        ghost.dead = True
        token = CURRENT.set(ghost)
        try:
            return self.builders[name]()
        finally:
            CURRENT.reset(token)
