"""Calls between actors: peers found by name, batching, the wire codec."""
