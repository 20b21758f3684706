"""Risk rulebook demo traffic for ``exchange up`` (issue 15): the rules doing their work.

At start the demo's risk operator (``demo-risk``, ``config/risk.toml``) lowers three
thresholds so that a short demo reaches them, each change audited with its reason: the
cancel ladder (4.2.5) to 50 places+cancels, wash trading (4.2.1) to 0.5 BTC, the large
withdrawal's review (4.4.3) to 5 seconds. Then, by round:

- a churner places and cancels in ETH-USDT every round: the ladder warns it, then
  restricts its opening, then its trading (the demo's cancellers meet the ladder too);
- two accounts the operator linked as "suspected" trade with each other: surveillance
  raises a wash-trade alert (action ``none``: recorded only, the rulebook's start);
- an account is frozen for trading on round 3 (its order is refused, citing the rule)
  and unfrozen on round 8;
- a whale deposits 2,000 BTC on the (simulated) chain, credited at 3 confirmations
  (the hot wallet keeps 100, the rest is swept to cold), then asks to withdraw 1,500:
  queued for review, approved by the treasury operator after it, paid by the treasury
  from cold through hot (a refill the operator signs), sent and confirmed on the chain;
- ETH-USDT is halted on round 10 and reopened on round 14;
- BTC-USDT-PERP's maintenance rate is raised to 1% on round 5 (5.2.2.3, every
  shard re-values its positions at the next mark) and restored on round 12;
- on round 6 the treasury operator compensates an account 50 USDT out of the
  perpetual's insurance fund (5.2.2.5: a compensation, never a rollback),
  recorded in the fund's public chain and credited once on the account's shard.

The summary shows the rulebook's hash, the ladder's steps, refusals citing rules, the
withdrawal's state, surveillance alerts, the market modes, the perpetual's maintenance
rate, the compensation and whether every audit chain verifies.
"""
from __future__ import annotations

from actors.client.exchange_client import ExchangeClient
from actors.client.risk import RiskDesk
from exchange.core.routing import shard_for
from exchange.messages.records import (CancelOrder, Deposit, OpenAccount, OrderBooked, OrderRejected,
                                       RequestWithdrawal, RiskAction, WithdrawalUpdated)
from exchange.perp.rules import perp_markets
from exchange.risk.audit import verify
from exchange.risk.withdrawals import WithdrawalState

CHURNER, SUSPECT, WHALE = 8_000_001, 8_000_002, 8_000_003
WASH_A = 8_000_011                  # and WASH_B, the next id on its shard (``wash_pair``): their orders meet in order
CHURN_PER_ROUND = 4
WHALE_BTC = 1_500
LADDER, WASH, LARGE = "R-4.2.5-cancel-ladder", "R-4.2.1-wash-trade", "R-4.4.2-large-withdrawal"
PERP, RAISED_RATE, COMPENSATION_USDT = "BTC-USDT-PERP", "0.01", 50


class RiskDemo:
    def __init__(self, client: ExchangeClient, desk: RiskDesk | None, treasury: RiskDesk | None):
        self.client, self.desk, self.treasury = client, desk, treasury
        self.config = client.config
        self.on = desk is not None and client.config.risk is not None
        self.rounds = 0
        self.steps: dict[str, int] = {}              # ladder step -> count
        self.refused: dict[str, int] = {}            # rule -> refusals citing it
        self.resting: list[tuple[str, int]] = []
        self.withdrawal: int | None = None
        self.withdrawal_state = "-"
        self.halted = False
        self.perp = PERP in perp_markets(client.config)
        self.maintenance = "configured"
        self.compensated = "-"
        self.wash_b = next(a for a in range(WASH_A + 1, WASH_A + 1_000)
                           if shard_for(a, client.config.routing) == shard_for(WASH_A, client.config.routing))

    def accounts(self) -> list[int]:
        return [CHURNER, SUSPECT, WHALE, WASH_A, self.wash_b] if self.on else []

    def fund(self) -> None:
        if not self.on:
            return
        commands = []
        for account in self.accounts():
            commands.append(OpenAccount(f"risk-open:{account}", 0, account))
            for asset in self.config.asset_list:
                if account != WHALE:
                    commands.append(Deposit(f"risk-fund:{account}:{asset.name}", 0, account, asset.name,
                                            10 ** (asset.scale + 7)))
        self.client.execute(commands)
        self.desk.receive_on_chain(WHALE, "BTC", 2_000 * 10 ** 8)     # on chain: credited at 3 confirmations
        desk = self.desk
        desk.set_rule(LADDER, "count", "50", "demo: a low threshold so a short demo reaches the ladder")
        desk.set_rule(WASH, "volume_btc", "0.5", "demo: a low threshold so a short demo raises a wash alert")
        desk.set_rule(LARGE, "queue_s", "5", "demo: a 5 s review instead of 24 h")
        desk.link_accounts(WASH_A, self.wash_b, "suspected", "demo: same device fingerprint")

    def orders(self, index_prices: dict[str, int]) -> list:
        """This round's risk traffic (sent with the rest of the round)."""
        if not self.on:
            return []
        self.rounds += 1
        client, out = self.client, []
        self._scenario()
        for market, order_id in self.resting:
            out.append(CancelOrder(client.next_request_id(), 0, CHURNER, market, order_id))
        self.resting = []
        eth = index_prices.get("ETH")
        if eth:
            far = eth * 8 // 10 // 10_000 * 10_000        # 20% under the index, on the 0.01 tick
            for _ in range(CHURN_PER_ROUND):
                out.append(client.order(CHURNER, "ETH-USDT", "buy", "0.01", far))
            out.append(client.order(SUSPECT, "ETH-USDT", "buy", "0.01", far))
        btc = index_prices.get("BTC")
        if btc and self.rounds % 2 == 0:
            price = btc // 10_000 * 10_000                # the 0.01 tick
            out.append(client.order(WASH_A, "BTC-USDT", "sell", "0.2", price, tif="gtc"))
            out.append(client.order(self.wash_b, "BTC-USDT", "buy", "0.2", price, tif="ioc"))
        return out

    def record(self, commands: list, results: list) -> None:
        for cmd, events in zip(commands, results):
            for e in events:
                kind = type(e)
                if kind is RiskAction and e.rule == LADDER:
                    step = {1: "warned", 2: "restrict-open", 3: "restrict-open-close"}[e.limit]
                    self.steps[step] = self.steps.get(step, 0) + 1
                elif kind is OrderRejected and e.rule:
                    self.refused[e.rule] = self.refused.get(e.rule, 0) + 1
                elif kind is OrderBooked and getattr(cmd, "account_id", 0) == CHURNER:
                    self.resting.append((cmd.market, e.order_id))

    def _scenario(self) -> None:
        desk, r = self.desk, self.rounds
        if r == 3:
            desk.freeze_account(SUSPECT, "trading", "demo: a phishing report on this account")
        elif r == 8:
            desk.freeze_account(SUSPECT, "none", "demo: the owner confirmed by video call")
        elif r == 10:
            desk.set_market_mode("ETH-USDT", "halted", "demo: main-net upgrade of the ETH chain")
            self.halted = True
        elif r == 14:
            desk.set_market_mode("ETH-USDT", "open", "demo: upgrade finished")
            self.halted = False
        elif self.perp and r in (5, 12):
            rate, why = (RAISED_RATE, "demo: one-sided market after a listing") if r == 5 else ("0", "demo: calm again")
            answers = desk.raise_maintenance_margin(PERP, rate, why)
            if all(type(events[0]).__name__ == "OperatorActed" for events in answers.values()):
                self.maintenance = f"raised to {rate}" if r == 5 else "configured"
        elif self.perp and r == 6:
            unit = 10 ** self.config.assets["USDT"].scale
            paid = self.treasury.compensate(SUSPECT, PERP, COMPENSATION_USDT * unit,
                                            "demo: filled at a stale index, compensated from the fund")
            self.compensated = f"{COMPENSATION_USDT} USDT" if paid["refused"] is None else paid["refused"]
        self._withdrawal()

    def _withdrawal(self) -> None:
        """The whale's 1,500 BTC: requested once its on-chain deposit is credited, queued for
        review, approved by the treasury operator, paid by the treasury from cold through hot
        (the refill signed by the operator), sent and confirmed on the simulated chain."""
        if self.withdrawal_state in ("confirmed", "rejected"):
            return
        if self.withdrawal is None:
            if self.client.balances(WHALE)["BTC"][0] >= WHALE_BTC * 10 ** 8:
                events = self.client.execute([RequestWithdrawal(self.client.next_request_id(), 0, WHALE, "BTC",
                                                                WHALE_BTC * 10 ** 8, "bc1q-whale-cold")])[0]
                update = next((e for e in events if type(e) is WithdrawalUpdated), None)
                if update is not None:
                    self.withdrawal = update.withdrawal
                    self.withdrawal_state = WithdrawalState(update.state).name.lower()
            return
        if self.withdrawal_state == "queued":
            events = self.treasury.review_withdrawal(WHALE, self.withdrawal, True, "demo: confirmed by phone")
            if any(type(e) is WithdrawalUpdated for e in events):
                self.withdrawal_state = "approved"
            return
        for refill in self.treasury.treasury_view()["refills"]:
            self.treasury.approve_refill(int(refill), "demo: signed by two keyholders")
        pending = [w["state"] for w in self.treasury.withdrawals(WHALE)]
        self.withdrawal_state = pending[0] if pending else "confirmed"

    def summary(self) -> dict:
        if not self.on:
            return {}
        stats = self.desk.surveillance_stats()
        chains = self.desk.chains()
        return {"rulebook": self.desk.rulebook()["digest"][:12],
                "ladder": dict(self.steps), "refused": dict(self.refused),
                "withdrawal_1500_btc": self.withdrawal_state,
                "treasury": {k: {a: v for a, v in self.treasury.treasury_view()[k].items() if a == "BTC"}
                             for k in ("hot", "cold")},
                "alerts": stats["alerts"], "eth_usdt": "halted" if self.halted else "open",
                "perp_maintenance": self.maintenance, "compensated": self.compensated,
                "audit_entries": sum(len(c["entries"]) for c in chains),
                "audit_ok": all(verify(c["entries"], c["base"])[0] for c in chains)}
