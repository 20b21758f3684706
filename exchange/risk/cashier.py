"""The cashier: withdrawals under the rulebook, plugged into a shard as a product
(``exchange.accounts.product``; rulebook 4.4.2, 4.4.3, 5.2.2.3, 5.2.2.4).

A ``RequestWithdrawal`` (client) moves the amount from the account's available
balance into the cashier at once: **the funds are held from the request to a final
state**, counted by the shard's totals (so conservation holds at every step),
and ``exchange.risk.withdrawals.WithdrawalDesk`` decides its path with the facts
only the shard knows:

- the account's or the asset's withdrawals frozen (the risk gate's freezes);
- the last credential change (``CredentialChanged``, from the authentication
  service: the gateway);
- a margin book under its initial line (``Product.withdrawal_block`` of the
  other products: BELOW_INITIAL_MARGIN_LEVEL, as for an immediate ``Withdraw``);
- the destination on the blocklist (``BlockAddress``, per shard, sent to all);
- its BTC equivalent at the index (the command is valued, its context carries the
  prices): over ``R-4.4.2-large-withdrawal``'s 1,000 BTC it is queued 24 h and
  needs an operator's approval.

A request a rule rejects is accepted as a command (it is kept on file, 4.4.3:
"將提幣申請明細自動登記到系統中") and answered ``WithdrawalUpdated`` REJECTED with the
``Reason`` and the rule; its funds go straight back. ``ReviewWithdrawal`` (an
operator with the treasury role: approve after the review, or reject and
release) and ``SettleWithdrawal`` (the treasury: sent with its txid, confirmed:
the funds leave the ledger as withdrawn, or failed: they come back) move it on.
A command the desk refuses changes nothing (``OrderRejected`` with the reason).

Withdrawal ids are ``sequence << 10 | shard index``, unique venue-wide like
order ids. The plain ``Withdraw`` command stays for the demo and the tests:
an immediate withdrawal with the same gate (freezes, margin line).
"""
from __future__ import annotations

from exchange.accounts.shard import ORDER_ID_SHARD_BITS
from exchange.core.reasons import Reason
from exchange.messages.records import (BlockAddress, CredentialChanged, OperatorActed, OrderRejected,
                                       RequestWithdrawal, ReviewWithdrawal, SettleWithdrawal, WithdrawalUpdated)
from exchange.risk.admin import permit
from exchange.risk.rulebook import Rulebook
from exchange.risk.withdrawals import (ADDRESS_MAX, LARGE_RULE, WithdrawalDesk, WithdrawalFacts, WithdrawalReason,
                                       WithdrawalState)

NANOS = 1_000_000_000
SENT, CONFIRMED, FAILED = 1, 2, 3
REASONS = {   # the desk's reasons -> the venue's
    WithdrawalReason.UNKNOWN_WITHDRAWAL: Reason.UNKNOWN_WITHDRAWAL,
    WithdrawalReason.ALREADY_FINAL: Reason.WITHDRAWAL_FINAL,
    WithdrawalReason.NOT_QUEUED: Reason.WITHDRAWAL_NOT_QUEUED,
    WithdrawalReason.REVIEW_NOT_DUE: Reason.REVIEW_NOT_DUE,
    WithdrawalReason.NOT_APPROVED: Reason.WITHDRAWAL_NOT_APPROVED,
    WithdrawalReason.ALREADY_SENT: Reason.WITHDRAWAL_ALREADY_SENT,
    WithdrawalReason.NOT_SENT: Reason.WITHDRAWAL_NOT_SENT,
    WithdrawalReason.INVALID_DESTINATION: Reason.INVALID_DESTINATION,
    WithdrawalReason.INVALID_TXID: Reason.INVALID_SETTLEMENT,
    WithdrawalReason.DESK_FULL: Reason.OVERLOADED,
    WithdrawalReason.BLOCKLIST_FULL: Reason.OVERLOADED,
    WithdrawalReason.VALUE_OUT_OF_RANGE: Reason.VALUE_OUT_OF_RANGE,
    WithdrawalReason.WITHDRAWALS_FROZEN: Reason.WITHDRAWALS_FROZEN,
    WithdrawalReason.CREDENTIAL_CHANGED: Reason.CREDENTIAL_CHANGED,
    WithdrawalReason.BELOW_INITIAL_MARGIN: Reason.BELOW_INITIAL_MARGIN_LEVEL,
    WithdrawalReason.BLOCKLISTED_DESTINATION: Reason.BLOCKLISTED_DESTINATION,
    WithdrawalReason.OPERATOR_REJECTED: Reason.OPERATOR_REJECTED,
    WithdrawalReason.BROADCAST_FAILED: Reason.BROADCAST_FAILED,
}


class Cashier:
    """The ``withdrawals`` product of a shard (see the module docstring)."""

    name = "cashier"
    commands = frozenset((RequestWithdrawal, ReviewWithdrawal, SettleWithdrawal, CredentialChanged, BlockAddress))
    links: tuple = ()
    wallet_type = None

    def __init__(self, config, ledger, rulebook: Rulebook):
        self.config = config
        self.ledger = ledger
        self.desk = WithdrawalDesk(rulebook)
        self.credentials: dict[int, int] = {}        # account -> last credential change (ts_ns)
        self.seq = 0
        self.shard = None
        self._assets = config.assets

    def attach(self, shard) -> None:
        self.shard = shard

    # ---- commands ------------------------------------------------------------------------
    def apply(self, cmd, context) -> tuple[list, None]:
        kind = type(cmd)
        if kind is RequestWithdrawal:
            return self._request(cmd, context.prices), None
        if kind is CredentialChanged:
            if cmd.account_id not in self.ledger.accounts:
                return _refused(cmd, Reason.UNKNOWN_ACCOUNT), None
            self.credentials[cmd.account_id] = cmd.ts_ns
            return [OperatorActed(cmd.request_id, cmd.ts_ns, "auth", "credential-changed", str(cmd.account_id),
                                  "", "", "password or 2FA changed", "R-4.4.3-credential-change")], None
        refused = permit(self._rulebook(), cmd)          # (the roles: exchange.risk.admin.PERMITS)
        if refused is not None:
            return _refused(cmd, refused), None
        if kind is BlockAddress:
            return self._block(cmd), None
        if kind is ReviewWithdrawal:
            return self._review(cmd), None
        return self._settle(cmd), None

    def _rulebook(self) -> Rulebook:
        """The rulebook in force (the gate's, which operators change at run time)."""
        if self.shard.risk is not None:
            self.desk.rulebook = self.shard.risk.rulebook
        return self.desk.rulebook

    def _request(self, cmd: RequestWithdrawal, prices: tuple) -> list:
        self._rulebook()
        account = self.ledger.accounts.get(cmd.account_id)
        if account is None:
            return _refused(cmd, Reason.UNKNOWN_ACCOUNT)
        spec = self._assets.get(cmd.asset)
        if spec is None:
            return _refused(cmd, Reason.UNKNOWN_ASSET)
        if cmd.amount <= 0:
            return _refused(cmd, Reason.NON_POSITIVE_AMOUNT)
        if not cmd.destination or len(cmd.destination) > ADDRESS_MAX:
            return _refused(cmd, Reason.INVALID_DESTINATION)
        if account.available[spec.index] < cmd.amount:
            return _refused(cmd, Reason.INSUFFICIENT_BALANCE)
        value = btc_value(self.config, spec, cmd.amount, prices)
        if value is None:
            return _refused(cmd, Reason.NO_INDEX_PRICE)
        gate, shard = self.shard.risk, self.shard
        frozen = gate is not None and gate.withdrawals_frozen(cmd.account_id, spec.index)
        below = any(p.withdrawal_block(cmd.account_id, prices) is not None
                    for p in shard.products.values() if p is not self)
        facts = WithdrawalFacts(frozen, False, self.credentials.get(cmd.account_id), below)
        self.seq += 1
        wid = (self.seq << ORDER_ID_SHARD_BITS) | shard.shard_index
        outcome = self.desk.request(cmd.ts_ns, wid, cmd.account_id, cmd.asset, cmd.amount, cmd.destination, value,
                                    facts)
        if outcome.refused is not None:
            self.seq -= 1
            return _refused(cmd, REASONS.get(outcome.refused, Reason.MALFORMED_COMMAND))
        if outcome.hold:
            account.available[spec.index] -= outcome.hold
        return [self._update(cmd, outcome.withdrawal)]

    def _review(self, cmd: ReviewWithdrawal) -> list:
        record = self._own(cmd)
        if type(record) is Reason:
            return _refused(cmd, record)
        outcome = self.desk.approve(cmd.ts_ns, cmd.withdrawal, cmd.operator) if cmd.approve \
            else self.desk.reject(cmd.ts_ns, cmd.withdrawal, cmd.operator, cmd.reason)
        return self._moved(cmd, outcome, "approve-withdrawal" if cmd.approve else "reject-withdrawal")

    def _settle(self, cmd: SettleWithdrawal) -> list:
        record = self._own(cmd)
        if type(record) is Reason:
            return _refused(cmd, record)
        if cmd.stage == SENT:
            outcome = self.desk.mark_sent(cmd.ts_ns, cmd.withdrawal, cmd.txid)
        elif cmd.stage == CONFIRMED:
            outcome = self.desk.confirm(cmd.ts_ns, cmd.withdrawal)
        elif cmd.stage == FAILED:
            outcome = self.desk.fail(cmd.ts_ns, cmd.withdrawal, cmd.reason)
        else:
            return _refused(cmd, Reason.INVALID_SETTLEMENT)
        return self._moved(cmd, outcome, ("", "withdrawal-sent", "withdrawal-confirmed", "withdrawal-failed")[cmd.stage])

    def _block(self, cmd: BlockAddress) -> list:
        if not cmd.destination or len(cmd.destination) > ADDRESS_MAX:
            return _refused(cmd, Reason.INVALID_DESTINATION)
        before = cmd.destination in self.desk.blocklist
        if cmd.blocked:
            refused = self.desk.block_address(cmd.destination)
            if refused is not None:
                return _refused(cmd, REASONS[refused])
        else:
            self.desk.unblock_address(cmd.destination)
        acted = OperatorActed(cmd.request_id, cmd.ts_ns, cmd.operator, "block-address", cmd.destination,
                              "blocked" if before else "allowed", "blocked" if cmd.blocked else "allowed", cmd.reason,
                              "R-5.2.2.4-blocklist")
        self._audit(acted)
        return [acted]

    def _own(self, cmd):
        record = self.desk.get(cmd.withdrawal) if type(cmd.withdrawal) is int else None
        if record is None or record.account != cmd.account_id:
            return Reason.UNKNOWN_WITHDRAWAL
        return record

    def _moved(self, cmd, outcome, what: str) -> list:
        if outcome.refused is not None:
            return _refused(cmd, REASONS.get(outcome.refused, Reason.MALFORMED_COMMAND))
        record = outcome.withdrawal
        spec = self._assets[record.asset]
        account = self.ledger.accounts[record.account]
        if outcome.release:
            account.available[spec.index] += outcome.release
        if outcome.spent:
            self.ledger.withdrawn[spec.index] += outcome.spent
        update = self._update(cmd, record)
        before = WithdrawalState(record.history[-2][1]).name.lower() if len(record.history) > 1 else ""
        acted = OperatorActed(cmd.request_id, cmd.ts_ns, cmd.operator, what, f"{record.account}/w{record.withdrawal_id}",
                              before, record.state.name.lower(), cmd.reason, "R-4.4.2-large-withdrawal")
        self._audit(acted)
        return [update, acted]

    def _audit(self, acted: OperatorActed) -> None:
        if self.shard.risk is not None:
            self.shard.risk.audit.append(acted.ts_ns, acted.operator, acted.command, acted.target, acted.before,
                                         acted.after, acted.reason, acted.rule)

    def _update(self, cmd, record) -> WithdrawalUpdated:
        return WithdrawalUpdated(cmd.request_id, cmd.ts_ns, record.account, record.withdrawal_id, record.asset,
                                 record.amount, int(record.state),
                                 int(REASONS[record.reason]) if record.reason is not None else 0,
                                 record.rule_id or (LARGE_RULE if record.review_until_ns else ""),
                                 record.review_until_ns or 0, record.txid or "", record.destination)

    # ---- the product seam ------------------------------------------------------------------
    def apply_event(self, event) -> list:
        raise TypeError("the cashier has no links")

    def order_closed(self, record, ts_ns: int) -> None:
        raise TypeError("the cashier funds no orders")

    def withdrawal_block(self, account_id: int, prices) -> Reason | None:
        return None

    def wallets(self):
        return ()

    def totals(self) -> list[int]:
        out = [0] * len(self._assets)
        for asset, amount in self.desk.held.items():
            out[self._assets[asset].index] += amount
        return out

    def check_invariants(self) -> None:
        self.desk.check_invariants()

    def canonical(self) -> tuple:
        return (self.seq, tuple(sorted(self.credentials.items())), self.desk.canonical())

    def snapshot(self) -> dict:
        return {"seq": self.seq, "credentials": sorted(self.credentials.items()), "desk": self.desk.snapshot()}

    def restore(self, state: dict) -> None:
        self.seq = state["seq"]
        self.credentials = {a: ts for a, ts in state["credentials"]}
        self.desk = WithdrawalDesk.restore(state["desk"], self.desk.rulebook)

    def view(self, account_id: int | None = None) -> list[dict]:
        """Withdrawals still in progress (of one account), plainly."""
        return [{"withdrawal": w.withdrawal_id, "account": w.account, "asset": w.asset, "amount": w.amount,
                 "destination": w.destination, "state": w.state.name.lower(), "review_until_ns": w.review_until_ns,
                 "txid": w.txid} for w in self.desk.pending(account_id)]


def btc_value(config, spec, amount: int, prices: tuple) -> int | None:
    """``amount`` of ``spec``'s asset in satoshis at the index (rounded down); None without prices."""
    btc = config.assets.get("BTC")
    if btc is None or not prices:
        return None
    if spec is btc:
        return amount
    quote = config.assets.get(config.index_quote_asset)
    price = 10 ** quote.scale if spec is quote else prices[spec.index]       # the quote asset prices itself
    btc_price = prices[btc.index]
    if not price or not btc_price:
        return None
    return amount * price * 10 ** btc.scale // (10 ** spec.scale * btc_price)


def _refused(cmd, reason: Reason) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason))]
