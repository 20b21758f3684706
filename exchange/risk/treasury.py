"""The treasury: the exchange's custody between the chain and the ledger (rulebook 4.4.1,
4.4.4, 5.2.2.3).

- **Deposits** arrive on the chain at each account's deposit address
  (``address``); the ``DepositTracker`` (``exchange.risk.chain``) credits each one
  once, at its asset's confirmation count (``[treasury] confirmations``: BTC 3,
  the rulebook's 3-6), as a ``Deposit`` command whose request id is the
  transaction's (a re-sent credit is a replay, never a second credit). An asset's
  deposits can be suspended (a double spend, a main-net upgrade); a deposit that
  vanishes before its count is never credited.
- **Hot and cold** (``exchange.risk.wallets``): a credited deposit lands in hot,
  the part above the asset's ceiling (``[treasury] hot_ceiling``) goes to cold.
- **Withdrawals** the cashier approved are paid from hot: broadcast, reported
  ``SettleWithdrawal`` sent with the txid, and confirmed at the asset's
  confirmation count. When hot is short the withdrawal waits and a cold-to-hot
  refill is requested, which a treasury operator approves (``approve_refill``).
- **Reconciliation**: hot + cold + what is broadcast and not yet confirmed equals
  the deposits credited less the withdrawals paid, always
  (``check_invariants``); ``reconcile(ledger)`` compares the wallets with what
  the shards' cashiers say went through the chain.

The chain here is ``SimulatedChain`` (a real deployment puts a node client per
asset behind the ``ChainWatcher`` port). Pure: the caller gives the time and
carries the commands to the shards; ``snapshot``/``restore`` keep the chain,
the tracker and the wallets.
"""
from __future__ import annotations

from exchange.core.money import parse_decimal
from exchange.messages.records import Deposit, SettleWithdrawal
from exchange.risk.chain import ChainDeposit, DepositTracker, SimulatedChain, _Tx
from exchange.risk.wallets import WalletReason, Wallets

SENT, CONFIRMED = 1, 2
DEFAULT_CONFIRMATIONS = 3           # the rulebook's BTC minimum (3-6)


class Treasury:
    def __init__(self, config):
        section = config.sections.get("treasury", {})
        confirmations = section.get("confirmations", {})
        ceilings = section.get("hot_ceiling", {})
        self.assets = {a.name: a for a in config.asset_list}
        self.required = {name: int(confirmations.get(name, DEFAULT_CONFIRMATIONS)) for name in self.assets}
        self.ceilings = {name: parse_decimal(str(ceilings.get(name, "0")), spec.scale)
                         for name, spec in self.assets.items()}
        self.chain = SimulatedChain()
        self.tracker = DepositTracker(self.chain, self.required)
        self.wallets = Wallets(self.ceilings)
        self.sending: dict[int, list] = {}       # withdrawal -> [account, asset, amount, txid]
        self.refills: dict[int, int] = {}        # withdrawal waiting for hot -> its refill id
        self.in_flight = {name: 0 for name in self.assets}     # broadcast, not yet confirmed
        self.received = 0

    # ---- the chain side ------------------------------------------------------------------
    @staticmethod
    def address(account_id: int, asset: str) -> str:
        """The deposit address of ``account_id`` for ``asset``."""
        return f"{asset.lower()}-deposit-{account_id}"

    @staticmethod
    def account_of(address: str) -> int | None:
        head, _, tail = address.rpartition("-deposit-")
        return int(tail) if head and tail.isdigit() else None

    def receive(self, account_id: int, asset: str, amount: int) -> str:
        """A customer sends ``amount`` to their deposit address (the simulated chain's mempool)."""
        self.received += 1
        txid = f"d{self.received}-{asset}-{account_id}"
        self.chain.submit_deposit(asset, self.address(account_id, asset), amount, txid)
        return txid

    def block(self) -> list:
        """One block on every chain: the deposits that reached their count as ``Deposit``
        commands (into hot, the excess swept to cold), and the withdrawals that did as
        ``SettleWithdrawal`` confirmed."""
        self.chain.mine(1)
        commands = []
        for credit in self.tracker.poll():
            account = self.account_of(credit.address)
            if account is None:
                continue
            self.wallets.deposit(credit.asset, credit.amount)
            commands.append(Deposit(f"chain:{credit.txid}"[:64], 0, account, credit.asset, credit.amount))
        for withdrawal, (account, asset, amount, txid) in sorted(self.sending.items()):
            seen = self.chain.confirmations(txid)
            if seen is not None and seen >= self.required[asset]:
                del self.sending[withdrawal]
                self.in_flight[asset] -= amount
                commands.append(SettleWithdrawal(f"treasury:{withdrawal}:{CONFIRMED}", 0, account, withdrawal,
                                                 CONFIRMED, txid, "treasury", f"{seen} confirmations"))
        return commands

    def pay(self, approved: list[dict]) -> list:
        """Broadcast every approved withdrawal not sent yet (``Cashier.view`` records), paid
        from hot; one hot cannot pay waits and asks for a cold-to-hot refill."""
        commands = []
        for w in approved:
            wid, asset, amount = w["withdrawal"], w["asset"], w["amount"]
            if w["state"] != "approved" or wid in self.sending or asset not in self.assets:
                continue
            if self.wallets.pay(asset, amount) is WalletReason.HOT_WALLET_SHORT:
                if wid not in self.refills:
                    need = amount - self.wallets.hot[asset]
                    asked = self.wallets.request_refill(asset, need)
                    if asked.refill_id is not None:
                        self.refills[wid] = asked.refill_id
                continue
            self.refills.pop(wid, None)
            txid = self.chain.broadcast_withdrawal(asset, w["destination"], amount)
            self.sending[wid] = [w["account"], asset, amount, txid]
            self.in_flight[asset] += amount
            commands.append(SettleWithdrawal(f"treasury:{wid}:{SENT}", 0, w["account"], wid, SENT, txid,
                                             "treasury", "broadcast from the hot wallet"))
        return commands

    def approve_refill(self, refill_id: int, operator: str) -> WalletReason | None:
        return self.wallets.approve_refill(refill_id, operator)

    def suspend(self, asset: str, suspended: bool) -> None:
        """Stop (or resume) crediting ``asset``'s deposits (5.2.2.3: a double spend, an upgrade)."""
        (self.tracker.suspend if suspended else self.tracker.resume)(asset, deposits=True, withdrawals=False)

    # ---- views and checks -----------------------------------------------------------------------
    def custody(self) -> dict[str, int]:
        """Per asset: deposits credited less withdrawals paid (what the wallets must hold)."""
        return {a: self.wallets.deposited[a] - self.wallets.paid[a] for a in self.assets}

    def reconcile(self, through_chain: dict[str, int]) -> list:
        """The wallets against ``through_chain`` (per asset, the deposits the shards credited from
        the chain less the withdrawals they confirmed, plus what is broadcast and unconfirmed)."""
        return self.wallets.reconcile({a: v - self.in_flight[a] for a, v in through_chain.items()})

    def view(self) -> dict:
        w = self.wallets
        return {"hot": dict(w.hot), "cold": dict(w.cold), "deposited": dict(w.deposited), "paid": dict(w.paid),
                "in_flight": dict(self.in_flight), "refills": {r.refill_id: [r.asset, r.amount]
                                                               for r in w.refills.values()},
                "waiting_for_hot": sorted(self.refills), "sending": sorted(self.sending),
                "deposits_suspended": sorted(self.tracker.deposits_stopped),
                "heights": dict(self.chain.heights)}

    def check_invariants(self) -> None:
        self.wallets.check_invariants()
        self.tracker.check_invariants()
        for asset, amount in self.in_flight.items():
            assert amount == sum(s[2] for s in self.sending.values() if s[1] == asset), f"{asset}: in flight"

    def snapshot(self) -> dict:
        chain = self.chain
        return {"chain": {"heights": chain.heights, "broadcasts": chain.broadcasts,
                          "txs": [[txid, t.asset, t.address, t.amount, t.block] for txid, t in chain.txs.items()],
                          "feed": [d.to_plain() for d in chain.feed]},
                "tracker": self.tracker.snapshot(), "wallets": self.wallets.snapshot(),
                "sending": [[wid, *s] for wid, s in sorted(self.sending.items())],
                "refills": sorted(self.refills.items()), "received": self.received}

    def restore(self, state: dict) -> None:
        c = state["chain"]
        self.chain.heights, self.chain.broadcasts = dict(c["heights"]), c["broadcasts"]
        self.chain.txs = {txid: _Tx(asset, address, amount, block) for txid, asset, address, amount, block in c["txs"]}
        self.chain.feed = [ChainDeposit(*d) for d in c["feed"]]
        self.tracker = DepositTracker.restore(state["tracker"], self.chain, self.required)
        self.wallets = Wallets.restore(state["wallets"], self.ceilings)
        self.sending = {wid: list(rest) for wid, *rest in state["sending"]}
        self.refills = {wid: rid for wid, rid in state["refills"]}
        self.in_flight = {name: 0 for name in self.assets}
        for _, asset, amount, _ in self.sending.values():
            self.in_flight[asset] += amount
        self.received = state["received"]
