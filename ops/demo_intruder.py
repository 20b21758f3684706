"""A hostile client in ``exchange up``'s demo traffic (issue 11).

Every round it tries what the trust model forbids, through the public
client: an insurance-fund cover that would mint money, a request id re-used
with a bigger amount, a request id that is not one (a float), a long client
order id with a timestamp far in the future. Each attempt must
come back refused with its own reason and change nothing: the summary shows
the refusals by reason and whether the intruder's balance is still exactly
what it deposited. (Each round it also makes one honest 1-unit deposit, whose
id the next round re-uses: a re-use must be caught while the replay memory
still holds the first request, which a long run evicts in time.)
"""
from __future__ import annotations

from collections import Counter

from actors.client.exchange_client import ExchangeClient
from exchange.messages.records import CoverShortfall, Deposit, OpenAccount, PlaceOrder
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.core.reasons import Reason

INTRUDER = 4_000_001
DEPOSIT_MINOR = 1_000_000          # 1 USDT


class Intruder:
    def __init__(self, client: ExchangeClient):
        self.client = client
        self.config = client.config
        self.refused: Counter = Counter()
        self.accepted = 0
        self.attempts = 0
        self.honest = 0                    # honest 1-unit deposits credited

    def fund(self) -> list:
        """Commands that open the intruder's account with 1 USDT."""
        return [OpenAccount(f"intruder-open:{INTRUDER}", 0, INTRUDER),
                Deposit(f"intruder-fund:{INTRUDER}", 0, INTRUDER, "USDT", DEPOSIT_MINOR)]

    def attempts_for(self, round_: int) -> list:
        """This round's hostile commands (each must be refused), then its honest deposit."""
        market = self.config.market_list[0].name
        previous = f"intruder-honest:{round_ - 1}" if round_ > 1 else f"intruder-fund:{INTRUDER}"
        return [
            CoverShortfall(f"intruder-cover:{round_}", 0, INTRUDER, "", "USDT", 10 ** 12),    # mint money
            Deposit(previous, 0, INTRUDER, "USDT", 10 ** 12),                                 # same id, more
            Deposit(round_ + 0.5, 0, INTRUDER, "USDT", 1),                                    # not a request id
            PlaceOrder(f"intruder-order:{round_}", 2 ** 63 - 1, INTRUDER, market, int(Side.BUY),
                       int(OrderType.LIMIT), 1, 2 ** 63 - 1, int(TimeInForce.GTC), "x" * 1_000, 0),
            Deposit(f"intruder-honest:{round_}", 0, INTRUDER, "USDT", 1),
        ]

    def record(self, results: list) -> None:
        *hostile, honest = results
        self.honest += type(honest[0]).__name__ == "BalanceChanged"
        for events in hostile:
            self.attempts += 1
            rejected = [e for e in events if type(e).__name__ == "OrderRejected"]
            if rejected:
                self.refused[Reason(rejected[0].reason).name] += 1
            else:
                self.accepted += 1

    def summary(self) -> dict:
        balance = (self.client.balances(INTRUDER) or {}).get("USDT", (0, 0))
        return {"attempts": self.attempts, "refused": dict(sorted(self.refused.items())),
                "accepted": self.accepted, "balance_untouched": balance == (DEPOSIT_MINOR + self.honest, 0)}
