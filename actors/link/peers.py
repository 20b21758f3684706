"""Calls to other actors of the exchange, found by name and retried until answered.

Actors restart by themselves and keep their names, so a peer is looked up by
name (and looked up again after a failure) rather than wired in once. Every
message between actors is safe to send again (receivers de-duplicate), so a
failed call is simply repeated after a short pause until the peer answers.

The lookup is a port: ``RESOLVER`` (a name -> handle function, ``ray.get_actor``
by default) and the pause ``RETRY_DELAY_S`` are read at the moment of use, so
the seeded simulator (``ops/simulation``) installs simulated handles and a zero
pause with ``use_resolver``; the Ray path is the same code, a handle being
resolved only when it is not cached.
"""
from __future__ import annotations

import asyncio
import logging

import ray

RETRY_DELAY_S = 0.2
RESOLVER = ray.get_actor            # name -> handle whose ``method.remote(*args)`` is awaitable
log = logging.getLogger("exchange.peers")


def use_resolver(resolver, retry_delay_s: float) -> tuple:
    """Install ``resolver`` and the retry pause for every ``Peers``; return the previous
    pair, so the caller can put it back (``use_resolver(*previous)``)."""
    global RESOLVER, RETRY_DELAY_S
    previous = (RESOLVER, RETRY_DELAY_S)
    RESOLVER, RETRY_DELAY_S = resolver, retry_delay_s
    return previous


class Peers:
    """Handles to the actors named ``name_format.format(key)``."""

    def __init__(self, name_format: str, names: dict | None = None):
        self.name_format = name_format
        self.names = names or {}            # keys whose actor is named otherwise
        self._handles: dict = {}
        self._told: set = set()             # (key, method) whose remote error was logged in full

    def name(self, key) -> str:
        return self.names.get(key) or self.name_format.format(key)

    def handle(self, key):
        handle = self._handles.get(key)
        if handle is None:
            handle = self._handles[key] = RESOLVER(self.name(key))
        return handle

    async def call(self, key, method: str, *args):
        """Call ``method`` on peer ``key`` until it answers; return the answer."""
        while True:
            try:
                return await getattr(self.handle(key), method).remote(*args)
            except Exception as exc:   # the peer is restarting: the same message again
                detail = ""
                if isinstance(exc, ray.exceptions.RayTaskError):    # the peer raised: say what, once in a row
                    detail = f": {str(exc).strip().splitlines()[-1]}"
                    if (key, method) not in self._told:
                        self._told.add((key, method))
                        log.error("%s.%s raised:\n%s", self.name(key), method, exc)
                log.warning("%s.%s failed (%s%s); retrying", self.name(key), method, type(exc).__name__, detail)
                self._handles.pop(key, None)
                await asyncio.sleep(RETRY_DELAY_S)
