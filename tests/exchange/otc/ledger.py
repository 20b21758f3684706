"""A test harness: the OTC desk over real shards of the venue (``exchange.venue.new_shard``
with the ``otc`` crossings product), its crossings carried to them and their answers
carried back as a perfect link would, and the conservation of every asset counted
over the shards plus the desk's transit."""
from __future__ import annotations

from exchange.accounts.access import Role
from exchange.accounts.pricing import NO_PRICES
from exchange.core.routing import shard_for
from exchange.messages.records import Deposit, OpenAccount, OrderRejected, OtcCrossed
from exchange.venue import new_shard


class Ledger:
    def __init__(self, config, desk, shards: int = 2):
        self.config = config
        self.desk = desk
        desk.shards = shards
        self.shards = [new_shard(config, i, shards) for i in range(shards)]
        self.deposited: dict[str, int] = {}
        self.held_back: set[int] = set()          # shards whose answers are lost until released

    def shard(self, account: int):
        return self.shards[shard_for(account, len(self.shards))]

    def run(self, shard, cmd, role: Role = Role.CLIENT) -> list:
        admitted = shard.admit(cmd, role)
        if type(admitted) is list:
            return admitted
        return shard.apply_client(admitted.command, NO_PRICES, role)[0]

    def fund(self, account: int, **balances: int) -> None:
        shard = self.shard(account)
        if account not in shard.ledger.accounts:
            self.run(shard, OpenAccount(f"open-{account}", 1, account))
        for asset, amount in balances.items():
            self.run(shard, Deposit(f"dep-{account}-{asset}-{amount}", 1, account, asset, amount))
            self.deposited[asset] = self.deposited.get(asset, 0) + amount

    def available(self, account: int, asset: str) -> int:
        account_ = self.shard(account).ledger.accounts[account]
        return account_.available[self.config.assets[asset].index]

    def read_inventory(self) -> None:
        """What the actor does each tick: the desk account's available balances as inventory."""
        for asset in self.config.assets:
            self.desk.set_inventory(asset, self.available(self.desk.rules.desk_account, asset))

    def pump(self, ts: int, rounds: int = 10) -> list:
        """Carry every unacknowledged crossing to its shard and the answers back, until none is left
        (or only those of held-back shards); the events of each crossing, in order."""
        seen = []
        for _ in range(rounds):
            moved = False
            for shard_index, crossings in sorted(self.desk.outbox.unacked.items()):
                for crossing in list(crossings):
                    (event,) = self.run(self.shards[shard_index], crossing.command(), Role.OTC)
                    seen.append(event)
                    if shard_index in self.held_back:
                        continue
                    assert type(event) is OtcCrossed, event
                    self.desk.crossed(shard_index, event.seq, event.reason, ts)
                    moved = True
            if not moved:
                break
        self.desk.check_invariants()
        return seen

    def imbalance(self) -> dict[str, int]:
        """Per asset: shards + the desk's transit - deposits (0 when sound). A crossing a shard
        applied whose answer the desk has not had yet (lost, or on its way) is transit's too."""
        moving: dict[str, int] = {}
        for shard_index, crossings in self.desk.outbox.unacked.items():
            product = self.shards[shard_index].otc
            for c in crossings:
                if c.seq <= product.seq and c.seq not in product.refused:
                    moving[c.asset] = moving.get(c.asset, 0) - c.amount
        out = {}
        for name, spec in self.config.assets.items():
            held = sum(s.totals()[spec.index] for s in self.shards) + self.desk.outbox.transit.get(name, 0)
            out[name] = held + moving.get(name, 0) - self.deposited.get(name, 0)
        return out

    def assert_conserved(self) -> None:
        assert not any(self.imbalance().values()), self.imbalance()


__all__ = ["Ledger", "OrderRejected"]
