"""Exceptions an actor raises to its caller instead of an answer."""
from __future__ import annotations


class OverloadedError(RuntimeError):
    """Refused for now: a ``[limits]`` maximum is reached (nothing changed); ask again later."""
