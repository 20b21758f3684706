"""Shared kernel: money and its rounding helpers, result codes, routing, containers."""
