"""Perpetual demo traffic for ``exchange up`` (issue 14): makers quote around the mark,
traders hold small leveraged positions.

- Two makers quote a few levels around each perpetual market's mark (post-only),
  cancelling last round's quotes;
- six traders (3x; half of them isolated) send IOC orders that take the quotes,
  closing or flipping their positions as the coin falls;
- a gambler, every ``GAMBLE_EVERY`` rounds while flat, buys at the highest
  leverage its tier allows from a counterparty's ask above the mark: at the
  next mark it is at its maintenance, the liquidator takes the position over
  and closes it against the makers' bids (better than its bankruptcy price:
  a ``LIQUIDATION_SURPLUS`` in the fund's public chain);
- the market's index comes from the index actor, which prices the perpetual
  market every publication (mark, funding clock).
The summary shows each market's mark, the basis to the index in bps, the last
funding rate and the time to the next funding, the demo's open interest, the
perpetual insurance fund and the fee share it received (swept from the shards
every ``[perp_fund] fee_sweep_s``), liquidations finished and ADL rounds.
"""
from __future__ import annotations

import random
import time

from actors.client.exchange_client import ExchangeClient
from exchange.core.money import format_decimal
from exchange.matching.orders import OrderType, Side, TimeInForce
from exchange.messages.records import (CancelPerpOrder, PlacePerpOrder, SetMarginMode, SetPerpLeverage,
                                       TransferPerp)
from exchange.perp.rules import perp_markets

MAKERS = [6_000_001, 6_000_002]
TRADERS = list(range(6_100_001, 6_100_007))
GAMBLER, COUNTERPARTY = 6_200_001, 6_200_002
GAMBLE_EVERY = 10
LEVELS = 3
GAMBLE_PREMIUM_BPS = 90         # the counterparty's ask above the mark: beyond the top leverage's room to maintenance


class PerpDemo:
    def __init__(self, client: ExchangeClient, rng: random.Random):
        self.client = client
        self.rng = rng
        self.perps = perp_markets(client.config)
        self.quotes: dict[int, list[tuple[str, int]]] = {m: [] for m in MAKERS}
        self.rounds = 0

    @property
    def enabled(self) -> bool:
        return bool(self.perps)

    def accounts(self) -> list[int]:
        """The demo's perpetual accounts (the spot demo opens and funds them)."""
        return MAKERS + TRADERS + [GAMBLER, COUNTERPARTY] if self.enabled else []

    def fund(self) -> None:
        """Move USDT into the perpetual wallets; traders at 3x, half of them isolated."""
        if not self.enabled:
            return
        commands = []
        for account in self.accounts():
            for name, perp in self.perps.items():
                asset = perp.spec.quote
                commands.append(TransferPerp(f"demo-perp:{account}:{name}", 0, account, asset.name,
                                             1_000_000 * 10**asset.scale, True))
        for n, account in enumerate(TRADERS):
            for name in self.perps:
                commands.append(SetPerpLeverage(f"demo-lev:{account}:{name}", 0, account, name, 3))
                if n % 2:
                    commands.append(SetMarginMode(f"demo-iso:{account}:{name}", 0, account, name, True))
        for name, perp in self.perps.items():
            commands.append(SetMarginMode(f"demo-iso:{GAMBLER}:{name}", 0, GAMBLER, name, True))
            commands.append(SetPerpLeverage(f"demo-lev:{GAMBLER}:{name}", 0, GAMBLER, name,
                                            perp.tiers.max_leverage(0)))
        self.client.execute(commands)

    def orders(self) -> list:
        """This round's cancels, quotes and takes, for every priced perpetual market."""
        if not self.enabled:
            return []
        out, rng, ts = [], self.rng, time.time_ns()
        for maker in MAKERS:
            for market, order_id in self.quotes[maker]:
                out.append(CancelPerpOrder(self.client.next_request_id(), ts, maker, market, order_id))
            self.quotes[maker] = []
        for name, perp in self.perps.items():
            mark = self.client.perp_prices(name)["mark"]
            if not mark:
                continue
            spec = perp.spec
            for maker in MAKERS:
                for level in range(1, LEVELS + 1):
                    spread = level * max(1, mark // 10_000)
                    qty = rng.randint(1, 5) * spec.min_lots * spec.lot_minor * 10
                    for side, price in ((Side.BUY, mark - spread), (Side.SELL, mark + spread)):
                        out.append(self._order(maker, name, side, price * spec.tick_minor, qty, TimeInForce.POST_ONLY))
            for trader in rng.sample(TRADERS, 2):
                side = rng.choice((Side.BUY, Side.SELL))
                edge = mark + max(1, mark // 2_000) * (1 if side == Side.BUY else -1)
                out.append(self._order(trader, name, side, edge * spec.tick_minor,
                                       rng.randint(1, 5) * spec.min_lots * spec.lot_minor * 10, TimeInForce.IOC))
            if self.rounds % GAMBLE_EVERY == 0 and not (self.client.perp_position(GAMBLER, name) or {}).get("lots"):
                price = (mark + mark * GAMBLE_PREMIUM_BPS // 10_000) * spec.tick_minor
                qty = spec.min_lots * spec.lot_minor * 10
                out.append(self._order(COUNTERPARTY, name, Side.SELL, price, qty, TimeInForce.GTC))
                out.append(self._order(GAMBLER, name, Side.BUY, price, qty, TimeInForce.IOC))
        self.rounds += 1
        return out

    def _order(self, account: int, market: str, side: Side, price: int, quantity: int, tif: TimeInForce):
        return PlacePerpOrder(self.client.next_request_id(), time.time_ns(), account, market, int(side),
                              int(OrderType.LIMIT), price, quantity, int(tif))

    def record(self, commands: list, results: list) -> None:
        """Remember the makers' resting quotes (to cancel them next round)."""
        for cmd, events in zip(commands, results):
            if type(cmd) is PlacePerpOrder and cmd.account_id in self.quotes:
                self.quotes[cmd.account_id].extend((cmd.market, e.order_id) for e in events
                                                   if type(e).__name__ == "OrderBooked")

    def summary(self) -> dict:
        if not self.enabled:
            return {}
        out = {}
        fund = self.client.perp_fund()
        liquidations = self.client.perp_liquidations(0)
        for name, perp in self.perps.items():
            prices = self.client.perp_prices(name)
            spec = perp.spec
            lots = sum(max(0, (self.client.perp_position(a, name) or {}).get("lots", 0)) for a in MAKERS + TRADERS)
            mark = prices["mark"]
            out[name] = {"mark": format_decimal(mark * spec.tick_minor, spec.quote.scale) if mark else None,
                         "basis_bps": round(prices["basis_average"] * 10_000 / mark, 1) if mark else None,
                         "funding_rate_pct": prices["funding_rate"] / 10**6,
                         "next_funding_s": max(0, round((prices["next_funding_ns"] - time.time_ns()) / 1e9))
                         if prices["next_funding_ns"] else None,
                         "open_interest": format_decimal(lots * spec.lot_minor, spec.base.scale),
                         "fund": format_decimal(fund["balances"].get(name, 0), spec.quote.scale),
                         "liquidations": liquidations["finished"], "liquidating": liquidations["open"],
                         "fee_share": format_decimal(fund["flows"][name].get("fee_share", 0), spec.quote.scale),
                         "adl_rounds": fund["adl_rounds"][name]}
        return out
