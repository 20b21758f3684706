"""Ray actors around the pure domain core: routing, batching, streams, I/O.

Actors are thin: decode, call ``exchange/``, publish, reply. No business rule
lives here.
"""
