"""Commands that set up lenders and margin traders, for the demo, the chaos run
and the margin benchmark. Request ids are ``"tag:step:account[:asset]"``:
the same ids every time, so running a setup twice changes nothing."""
from __future__ import annotations

from exchange.messages.records import Deposit, EnableMargin, OpenAccount, SupplyToPool, TransferMargin


def lender(tag: str, account: int, ts: int, supplies: dict[str, int]) -> list:
    """Open ``account``, deposit each amount and lend it all to that asset's pool."""
    commands = [OpenAccount(f"{tag}:open:{account}", ts, account)]
    for asset, amount in supplies.items():
        commands += [Deposit(f"{tag}:fund:{account}:{asset}", ts, account, asset, amount),
                     SupplyToPool(f"{tag}:supply:{account}:{asset}", ts, account, asset, amount)]
    return commands


def margin_trader(tag: str, account: int, ts: int, usdt_minor: int, level: str, tier: str, book: str = "") -> list:
    """Open ``account``, deposit USDT, enable margin (user level, leverage tier) and move it all to ``book``."""
    return [OpenAccount(f"{tag}:open:{account}", ts, account),
            Deposit(f"{tag}:fund:{account}:USDT", ts, account, "USDT", usdt_minor),
            EnableMargin(f"{tag}:margin:{account}", ts, account, level, tier),
            TransferMargin(f"{tag}:transfer:{account}", ts, account, "USDT", usdt_minor, to_margin=True,
                           market=book)]
