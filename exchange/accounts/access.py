"""Who may send which command: the roles of the command door, and the check.

The shard applies commands for two kinds of sender. ``Role.CLIENT`` is the
client door (``ExchangeClient``, and through it the gateway later): the
account commands a user may give. ``Role.LIQUIDATOR`` is the liquidator's
door: its own commands, which take a margin book or a perpetual position
over, move insurance money, collect the perpetual fee share and pay
compensations out of the perpetual funds, plus the
cancels it sends for the book it liquidates. ``Role.OPERATOR`` is the risk
desk's door (the admin actor, surveillance): freezes, locks, restrictions and
threshold changes, each naming an operator whose roles the rulebook checks. ``Role.OTC``
is the OTC desk's door: its numbered crossings (``exchange.otc.crossing``). The actors tie each door to a
capability (``actors/capability.py``, ``docs/SECURITY.md``); this module is
the rule itself, so the Engine and the actors enforce the same one. A scoped
sender may act only for the accounts of its scope.
"""
from __future__ import annotations

from enum import IntEnum

from exchange.messages import records as m
from exchange.core.reasons import Reason

CLIENT_COMMANDS = frozenset((m.OpenAccount, m.Deposit, m.Withdraw, m.PlaceOrder, m.CancelOrder, m.AmendOrder,
                             m.EnableMargin, m.TransferMargin, m.Borrow, m.Repay, m.PlaceMarginOrder,
                             m.SupplyToPool, m.WithdrawFromPool, m.TransferPerp, m.SetPerpLeverage,
                             m.SetRiskLimit, m.SetMarginMode, m.PlacePerpOrder, m.CancelPerpOrder,
                             m.RequestWithdrawal, m.CredentialChanged))
MARGIN_LIQUIDATOR_COMMANDS = frozenset((m.StartLiquidation, m.LiquidationStep, m.CoverShortfall,
                                        m.FinishLiquidation, m.WriteOffDebt))
PERP_LIQUIDATOR_COMMANDS = frozenset((m.TakeOverPerp, m.LiquidationOrderPerp, m.DeleveragePerp, m.AbsorbDeleverage,
                                      m.FinishPerpLiquidation, m.SweepPerpFees, m.CreditCompensation))
LIQUIDATOR_COMMANDS = MARGIN_LIQUIDATOR_COMMANDS | PERP_LIQUIDATOR_COMMANDS
OTC_COMMANDS = frozenset((m.OtcCross,))
OPERATOR_COMMANDS = frozenset((m.FreezeAccount, m.LockAccount, m.RestrictAccount, m.FreezeAsset, m.SetRiskRule,
                               m.ReviewWithdrawal, m.SettleWithdrawal, m.BlockAddress, m.GrantHedgeExemption,
                               m.SetMaintenanceMargin))


class Role(IntEnum):
    CLIENT = 1
    LIQUIDATOR = 2
    OPERATOR = 3        # the risk rulebook's operator commands (which operator may send which: exchange.risk.admin)
    OTC = 4             # the OTC desk's crossings between its account, its clients' and its transit (exchange.otc)


ALLOWED = {Role.CLIENT: CLIENT_COMMANDS, Role.LIQUIDATOR: LIQUIDATOR_COMMANDS | {m.CancelOrder, m.CancelPerpOrder},
           Role.OPERATOR: OPERATOR_COMMANDS, Role.OTC: OTC_COMMANDS}
_ALLOWED_BY_VALUE = (frozenset(), *(ALLOWED[role] for role in Role))   # indexed by the role's value: on
                                                                      # every command, no Enum.__hash__


def authorize(command, role: Role, scope: frozenset | None = None) -> Reason | None:
    """Why ``role`` may not send ``command`` (for an account outside ``scope``, when
    given), or None if it may. Call after the fields were checked."""
    if type(command) not in _ALLOWED_BY_VALUE[role]:
        return Reason.NOT_PERMITTED
    if scope is not None and command.account_id not in scope:
        return Reason.ACCOUNT_NOT_IN_SCOPE
    return None
