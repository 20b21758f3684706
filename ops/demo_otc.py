"""OTC desk demo traffic for ``exchange up`` (issue 16): block-trade clients asking the desk
for firm quotes, paying, and being delivered.

At start the desk's own account (``[otc] desk_account``) is funded: its inventory (500
BTC, 5,000 ETH, 50 M USDT, inside ``[otc.inventory]``'s limits). Then
every round two clients ask: one a BTC-USDT or ETH-USDT quote for a base quantity, the
other for a USDT notional, alternating sides and payment methods (crypto, a domestic and
a cross-border bank transfer: the spread's payment component shows it). Every answer's
signature is checked with the desk's public key; two quotes in three are accepted, the
third left to expire; now and then a client asks below the desk's minimum and is pointed
to the order book. Fiat methods pay for buying only.

The demo's bank feed (it holds the operator capability) pays each accepted fiat trade
on the next round from the client's verified name (``[otc.clients]``); every third one
it first reports a transfer from a third party, which the desk refuses and refunds.

A crypto-paid trade settles as it is accepted (the desk's inventory locked, the client's
payment taken, the delivery made: ``exchange.otc.settlement``). Every fourth round the
verified institution trades on credit (T+1: delivered first) and pays the next round.
Once the desk quotes, a client sells it enough BTC to take it 20 BTC past its 506 BTC
ceiling, and the desk hedges the excess on the BTC-USDT book from its own account; then
a 60 BTC purchase waits for an operator's delivery approval (over the 50 BTC hot-wallet
threshold), given the next round.

The summary shows the quotes, acceptances, expiries and refusals, the trades settled and
the spread earned, the fiat trades paid, the third-party payments refused, the refunds,
the credit trades paid, the approvals, the hedges, whether every signature verified, and
the last quote's price with its spread by component.
"""
from __future__ import annotations

import ray

from actors.client.exchange_client import ExchangeClient
from exchange.core.money import format_decimal
from exchange.messages.records import Deposit, OpenAccount

CLIENTS = (9_100_001, 9_100_002)
PAIRS = ("BTC-USDT", "ETH-USDT")
QUANTITIES = {"BTC-USDT": "3", "ETH-USDT": "60"}
METHODS = ("crypto", "bank-usd", "bank-usd-intl")
DESK_STOCK = {"BTC": 500, "ETH": 5_000, "USDT": 50_000_000}     # whole units: the desk's inventory


class OtcDemo:
    def __init__(self, client: ExchangeClient, bank_feed=None):
        self.client = client
        self.bank_feed = bank_feed                  # the operator capability the bank feed holds (None: no bank)
        self.names = {int(a): c["name"] for a, c in client.config.sections.get("otc", {}).get("clients", {}).items()}
        self.awaiting: list[tuple[int, dict]] = []   # accepted fiat trades, to pay next round
        self.fiat_paid = self.third_party = 0
        self.on = client.handles.otc is not None
        self.desk = int(client.config.sections.get("otc", {}).get("desk_account", 0))
        self.rounds = 0
        self.verified = self.unverified = 0
        self.accepted = self.asked_small = 0
        self.refused: dict[str, int] = {}
        self.last: dict = {}
        self.owed: list[tuple[int, str]] = []        # credit trades to pay next round
        self.held: list[str] = []                    # deliveries waiting for an operator
        self.credit_paid = self.approved = 0
        self.dumped = False                          # the 90 BTC sale that takes the desk past its ceiling

    def fund(self) -> None:
        if not self.on:
            return
        commands = []
        for account in (self.desk, *CLIENTS):
            commands.append(OpenAccount(f"otc-open:{account}", 0, account))
            for asset in self.client.config.asset_list:
                whole = DESK_STOCK.get(asset.name, 0) if account == self.desk else 10 ** 7
                commands.append(Deposit(f"otc-fund:{account}:{asset.name}", 0, account, asset.name,
                                        whole * 10 ** asset.scale))
        self.client.execute([c for c in commands if type(c) is not Deposit or c.amount > 0])

    def round(self) -> None:
        """This round's inquiries (answered at once; the desk is its own actor)."""
        if not self.on:
            return
        self.rounds += 1
        r, client = self.rounds, self.client
        self._pay()
        self._settle_owed()
        if self.verified and not self.dumped:                  # once the desk quotes (it has an index)
            self.dumped = self._ask(CLIENTS[0], "BTC-USDT", "sell", "crypto", dict(quantity=self._past_ceiling()))
        elif self.dumped and not self.approved and not self.held:
            self._ask(CLIENTS[1], "BTC-USDT", "buy", "crypto", dict(quantity="60"), hold=True)
        if r % 4 == 0:
            self._ask(CLIENTS[0], PAIRS[0], "buy", "crypto", dict(quantity="2"), settlement="t+1")
        pair, side = PAIRS[r % 2], ("buy", "sell")[(r // 2) % 2]
        method = METHODS[r % 3] if side == "buy" else "crypto"
        asks = [(CLIENTS[0], dict(quantity=QUANTITIES[pair])),
                (CLIENTS[1], dict(notional="150000") if r % 5 else dict(notional="1000"))]   # 1,000: too small
        for number, (account, amount) in enumerate(asks):
            answer = client.otc_inquire(account, pair, side, method=method, **amount)
            if not answer["ok"]:
                self.refused[answer["reason"]] = self.refused.get(answer["reason"], 0) + 1
                continue
            if client.otc_verify(answer):
                self.verified += 1
            else:
                self.unverified += 1
            self.last = answer["quote"]
            if (r + number) % 3:
                accepted = client.otc_accept(account, answer["quote"]["id"])["ok"]
                self.accepted += accepted
                if accepted and method != "crypto":
                    self.awaiting.append((account, answer["quote"]))

    def _ask(self, account: int, pair: str, side: str, method: str, amount: dict, hold: bool = False,
             settlement: str = "t+0") -> bool:
        """One inquiry accepted at once: a delivery held for approval, a credit trade owed; was
        it accepted?"""
        answer = self.client.otc_inquire(account, pair, side, method=method, settlement=settlement, **amount)
        if not answer["ok"]:
            self.refused[answer["reason"]] = self.refused.get(answer["reason"], 0) + 1
            return False
        accepted = self.client.otc_accept(account, answer["quote"]["id"])
        self.accepted += accepted["ok"]
        if accepted["ok"] and hold:
            self.held.append(answer["quote"]["id"])
        if accepted["ok"] and settlement == "t+1":
            self.owed.append((account, answer["quote"]["id"]))
        return accepted["ok"]

    def _past_ceiling(self) -> str:
        """Whole BTC that take the desk's inventory 20 BTC past its ceiling (``[otc.inventory.BTC]``)."""
        ceiling = float(self.client.config.sections["otc"]["inventory"]["BTC"]["max"])
        held = self.client.otc_view()["inventory"].get("BTC", 0) / 10 ** self.client.config.assets["BTC"].scale
        return str(min(45, max(1, int(ceiling - held) + 20)))     # (under 2.5 M USDT: paid out at once)

    def _settle_owed(self) -> None:
        """Last round's credit trades paid by their client; held deliveries approved by an operator."""
        for account, rfq_id in self.owed:
            self.credit_paid += self.client.otc_pay(account, rfq_id).get("state") == "settled"
        self.owed = []
        if self.bank_feed is not None:
            for rfq_id in self.held:
                self.approved += self.client.otc_approve(self.bank_feed, rfq_id, "demo-treasury",
                                                         "cold wallet transfer signed")["ok"]
        self.held = []

    def _pay(self) -> None:
        """The bank feed: last round's accepted fiat trades paid (a third party first, every third)."""
        if self.bank_feed is None:
            self.awaiting = []
            return
        otc = self.client.handles.otc
        for n, (account, quote) in enumerate(self.awaiting):
            if n % 3 == 0:
                refused = ray.get(otc.bank_payment.remote(self.bank_feed, quote["id"], quote["notional"],
                                                          "Unknown Remitter Co", f"demo-wire-x{quote['id']}"))
                self.third_party += refused.get("reason") == "THIRD_PARTY_PAYMENT"
            paid = ray.get(otc.bank_payment.remote(self.bank_feed, quote["id"], quote["notional"],
                                                   self.names.get(account, ""), f"demo-wire-{quote['id']}"))
            self.fiat_paid += bool(paid.get("ok")) and paid["paid"] == quote["notional"]
        self.awaiting = []

    def summary(self) -> dict:
        if not self.on:
            return {}
        view = self.client.otc_view()
        last = self.last
        spec = self.client.config.markets.get(last.get("pair", ""))
        usdt = self.client.config.assets["USDT"].scale
        return {"quotes": view["quotes"], "accepted": view["accepted"], "expired": view["expired"],
                "settled": view["settled"], "income": format_decimal(view["income"].get("USDT", 0), usdt),
                "credit_paid": self.credit_paid, "approved": self.approved,
                "hedges": len(view["hedges"]), "hedged": sum(1 for h in view["hedges"] if h["filled"] > 0),
                "inventory": {a: format_decimal(v, self.client.config.assets[a].scale)
                              for a, v in sorted(view["inventory"].items())}, "past_ceiling_sold": self.dumped,
                "refused": dict(self.refused), "fiat_paid": self.fiat_paid, "third_party_refused": self.third_party,
                "refunds": len(ray.get(self.client.handles.otc.refunds.remote())),
                "signatures_ok": self.unverified == 0 and self.verified > 0,
                "last_quote": {"pair": last["pair"], "side": last["side"], "method": last["method"],
                               "price": format_decimal(last["price"], spec.quote.scale),
                               "index": format_decimal(last["index"], spec.quote.scale),
                               "spread_bps": last["spread_bps"], "breakdown": last["breakdown"]} if last else {}}
