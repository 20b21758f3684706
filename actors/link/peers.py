"""Calls to other actors of the exchange, found by name and retried until answered.

Actors restart by themselves and keep their names, so a peer is looked up by
name (and looked up again after a failure) rather than wired in once. Every
message between actors is safe to send again (receivers de-duplicate), so a
failed call is simply repeated after a short pause until the peer answers.
"""
from __future__ import annotations

import asyncio
import logging

import ray

RETRY_DELAY_S = 0.2
log = logging.getLogger("exchange.peers")


class Peers:
    """Handles to the actors named ``name_format.format(key)``."""

    def __init__(self, name_format: str, names: dict | None = None):
        self.name_format = name_format
        self.names = names or {}            # keys whose actor is named otherwise
        self._handles: dict = {}

    def name(self, key) -> str:
        return self.names.get(key) or self.name_format.format(key)

    def handle(self, key):
        handle = self._handles.get(key)
        if handle is None:
            handle = self._handles[key] = ray.get_actor(self.name(key))
        return handle

    async def call(self, key, method: str, *args):
        """Call ``method`` on peer ``key`` until it answers; return the answer."""
        while True:
            try:
                return await getattr(self.handle(key), method).remote(*args)
            except Exception as exc:   # the peer is restarting: the same message again
                log.warning("%s.%s failed (%s); retrying", self.name(key), method,
                            type(exc).__name__)
                self._handles.pop(key, None)
                await asyncio.sleep(RETRY_DELAY_S)
