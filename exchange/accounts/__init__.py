"""Account shards: ledger, holds, replay protection, access rules, the shard's pipeline steps."""
