"""Journals, snapshots and recovery on LMDB (or in memory)."""
