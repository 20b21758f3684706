"""Who may do what: the operator roles of the risk rulebook (4.6) and the check.

Every operator command names its operator and gives a reason. The operator
must be one of the rulebook's ``[operators]`` (``config/risk.toml``), and one
of their roles must permit the command:

- ``risk``: market modes, account freezes and locks, restrictions, asset
  freezes, threshold changes, account links, hedge exemptions, raising a
  perpetual market's maintenance rate and the withdrawal blocklist;
- ``treasury``: withdrawal approvals and rejections, cold-to-hot transfers,
  compensations from the insurance fund;
- ``admin``: everything.

``surveillance`` (role ``risk``) and ``treasury`` (role ``treasury``) are
built-in operators: the surveillance actor's automatic restrictions and the
treasury's settlements of withdrawals go through the same door and the same
check, named as their own. The check is pure and runs where the
command is applied (the shard's operator door, the market, the admin
actor's domain), so a refused command changes nothing and leaves no audit
entry claiming success.
"""
from __future__ import annotations

from exchange.core.reasons import Reason
from exchange.messages.records import (BlockAddress, FreezeAccount, FreezeAsset, GrantHedgeExemption, LockAccount,
                                       RestrictAccount, ReviewWithdrawal, SetMaintenanceMargin, SetMarketMode,
                                       SetRiskRule, SettleWithdrawal)

RISK, TREASURY, ADMIN = "risk", "treasury", "admin"
SYSTEM_OPERATORS = {"surveillance": frozenset((RISK,)), "treasury": frozenset((TREASURY,))}
PERMITS: dict[type, frozenset] = {kind: frozenset((RISK, ADMIN)) for kind in
                                  (FreezeAccount, LockAccount, RestrictAccount, FreezeAsset, SetRiskRule,
                                   SetMarketMode, GrantHedgeExemption, SetMaintenanceMargin, BlockAddress)}
PERMITS.update({kind: frozenset((TREASURY, ADMIN)) for kind in (ReviewWithdrawal, SettleWithdrawal)})


def roles_of(rulebook, operator: str) -> frozenset | None:
    """The roles of ``operator`` (None: no such operator)."""
    return rulebook.operators.get(operator) or SYSTEM_OPERATORS.get(operator)


def permit(rulebook, cmd, needs: frozenset | None = None) -> Reason | None:
    """Why ``cmd``'s operator may not send it (REASON_REQUIRED, UNKNOWN_OPERATOR,
    OPERATOR_NOT_PERMITTED, in that order), or None. ``needs``: the roles that permit
    it, when it is not one of ``PERMITS``."""
    if not cmd.reason.strip():
        return Reason.REASON_REQUIRED
    roles = roles_of(rulebook, cmd.operator)
    if roles is None:
        return Reason.UNKNOWN_OPERATOR
    if not roles & (needs if needs is not None else PERMITS.get(type(cmd), frozenset((ADMIN,)))):
        return Reason.OPERATOR_NOT_PERMITTED
    return None
