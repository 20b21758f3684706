"""The risk rulebook (seed 003) as running controls: the rules in force
(``rulebook``), the pre-trade gate a shard runs at its door (``gate``), market
modes and the circuit breaker (``modes``), surveillance, withdrawals, operator
actions (``admin``) and the hash-chained audit trail (``audit``). Pure: no Ray,
no I/O, no clock (windows slide on the commands' ``ts_ns``)."""
