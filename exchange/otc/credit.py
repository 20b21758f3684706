"""T+1 credit for the desk's approved institutions (seed 000: 授信, T+1结算).

An account with a limit in ``[otc.credit.limits]`` may ask for settlement T+1: the
desk delivers as soon as its inventory is locked, and the client pays by the trade's
due time (``accepted + [otc.credit] term_s``), by bank transfer (fiat methods, from
its verified name) or from its balance (``OtcDesk.pay``, crypto). Its **exposure** is
the notional of its credit trades accepted and not yet settled; a credit inquiry or
acceptance that would take it past its limit is refused OTC_CREDIT_LIMIT. A trade
not paid by its due time is **overdue** (``OtcDesk.expire``: an audit entry, the
``exchange_otc_credit_overdue`` metric and its alert): while the account has one,
new credit trades are refused OTC_CREDIT_OVERDUE. Limits are counted in
``[otc.credit] asset``; a pair quoted in another asset is not offered on credit
(OTC_CREDIT_NOT_APPROVED, as for an account without a limit).
"""
from __future__ import annotations

from exchange.core.reasons import Reason
from exchange.otc.states import FINAL, RfqState


def refusal(desk, account_id: int, spec, notional: int) -> Reason | None:
    """Why ``account_id`` may not take ``notional`` more on credit in ``spec``'s pair, or None."""
    rules = desk.rules
    limit = (rules.credit_limits or {}).get(account_id)
    if limit is None or spec.quote.name != rules.credit_asset:
        return Reason.OTC_CREDIT_NOT_APPROVED
    if any(r.overdue for r in owed(desk, account_id)):
        return Reason.OTC_CREDIT_OVERDUE
    if exposure(desk, account_id) + notional > limit:
        return Reason.OTC_CREDIT_LIMIT
    return None


def owed(desk, account_id: int) -> list:
    """The account's credit trades accepted and not settled (or cancelled)."""
    return [r for r in desk.open.values()
            if r.account_id == account_id and r.credit and r.state != RfqState.QUOTED and r.state not in FINAL]


def exposure(desk, account_id: int) -> int:
    return sum(r.notional for r in owed(desk, account_id))


def book(desk) -> list[dict]:
    """Every approved client's limit, exposure and overdue trades: what operators watch."""
    return [{"account": account, "limit": limit, "exposure": exposure(desk, account),
             "overdue": [r.rfq_id for r in owed(desk, account) if r.overdue]}
            for account, limit in sorted((desk.rules.credit_limits or {}).items())]
