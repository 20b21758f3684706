"""Withdrawals in the shapes of Binance's wallet API (``/sapi/v1/capital/withdraw/...``,
issue 18): apply for one (a key with the ``withdraw`` permission) and read their
history. The cashier (``exchange/risk/cashier.py``) holds the funds at once and runs the
rulebook's checks (freezes, a recent credential change, the margin line, the blocklist,
the review of a large withdrawal); the treasury pays it out.

- ``coin`` is the asset, ``address`` the destination; ``network`` is not a choice here
  (each asset has one chain) and an ``addressTag`` is refused rather than dropped.
- ``withdrawOrderId`` becomes the command's request id: the same id with the same body
  is answered as the first time (within the shard's dedup window), never paid twice.
- ``id`` is the cashier's withdrawal id. A request a rule rejects is kept on file and
  answered with its reason; its funds are back at once.
- History is every withdrawal the account's shard keeps (``exchange/accounts/
  withdrawal_history.py``, ``[limits] history_withdrawals_max`` per shard), newest
  first, finished ones too: ``status`` is Binance's: 2 awaiting approval (queued for
  review), 4 processing (approved or sent), 6 completed (confirmed), 3 rejected (by a
  rule at request, or by an operator; ``info`` says why), 5 failure (the broadcast
  failed; the funds came back). There is no 0 (no e-mail confirmation) and no 1 (the
  exchange has no cancel by the customer). ``applyTime`` and ``completeTime`` (once
  final) are UTC ``YYYY-MM-DD HH:MM:SS`` as Binance's; ``withdrawOrderId`` is there when
  the request had one. ``transactionFee`` is 0: the exchange charges no withdrawal fee.
  Filters: ``coin``, ``withdrawOrderId``, ``status``, ``idList`` (comma-separated),
  ``startTime``/``endTime`` (ms, on ``applyTime``), then ``offset`` and ``limit``
  (default and most 1,000). ``state`` (the cashier's state) and ``reviewUntil`` (ms)
  are ours.
"""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from exchange.core.money import format_decimal
from exchange.core.reasons import Reason
from exchange.messages.records import OrderRejected, RequestWithdrawal, WithdrawalUpdated
from exchange.risk.withdrawals import WithdrawalState
from gateway.auth import Permission
from gateway.http import Refused, integer, json_response, required
from gateway.products.common import asset, decimal, refused

STATUS = {WithdrawalState.QUEUED: 2, WithdrawalState.REJECTED: 3, WithdrawalState.CONFIRMED: 6}   # Binance's;
FAILURE = 5                                       # rejected because the broadcast failed; anything else: 4 processing
LIMIT_MAX = 1_000
MS = 1_000_000                                    # ns per ms

ENDPOINTS = [
    ("post", "/sapi/v1/capital/withdraw/apply", "USER_DATA", 10, "Withdraw (needs the withdraw permission)",
     [("coin", {"type": "string"}, True), ("address", {"type": "string", "maxLength": 128}, True),
      ("amount", {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}, True),
      ("withdrawOrderId", {"type": "string", "maxLength": 64}, False)]),
    ("get", "/sapi/v1/capital/withdraw/history", "USER_DATA", 10, "Withdrawals, newest first, finished ones too",
     [("coin", {"type": "string"}, False), ("withdrawOrderId", {"type": "string"}, False),
      ("status", {"type": "integer", "enum": [2, 3, 4, 5, 6]}, False), ("idList", {"type": "string"}, False),
      ("startTime", {"type": "integer", "minimum": 0}, False), ("endTime", {"type": "integer", "minimum": 0}, False),
      ("offset", {"type": "integer", "minimum": 0}, False),
      ("limit", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}, False)]),
]
WEIGHTS = {"withdraw.apply": 10, "withdraw.history": 10}


def routes(gateway) -> list:
    withdrawals = Withdrawals(gateway)
    return [web.post("/sapi/v1/capital/withdraw/apply", withdrawals.apply, name="withdraw.apply"),
            web.get("/sapi/v1/capital/withdraw/history", withdrawals.history, name="withdraw.history")]


class Withdrawals:
    def __init__(self, gateway):
        self.gateway = gateway
        self.config = gateway.client.config

    async def apply(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.WITHDRAW)
        spec = asset(self.config, params, "coin", -1130, "Data sent for parameter 'coin' is not valid.")
        if params.get("addressTag"):
            raise Refused(400, -1130, "Data sent for parameter 'addressTag' is not valid: not supported.")
        amount = decimal(params, "amount", spec.scale)
        request_id = params.get("withdrawOrderId") or self.gateway.client.next_request_id()
        cmd = RequestWithdrawal(request_id, 0, key.account_id, spec.name, amount, required(params, "address"))
        events = (await self.gateway.client.execute_async([cmd]))[0]
        update = next((e for e in events if type(e) is WithdrawalUpdated), None)
        if update is None:
            rejected = next((e for e in events if type(e) is OrderRejected), None)
            raise refused(Reason(rejected.reason) if rejected else Reason.MALFORMED_COMMAND)
        if update.state == WithdrawalState.REJECTED:
            raise refused(Reason(update.reason))
        return json_response({"id": str(update.withdrawal)})

    async def history(self, request: web.Request) -> web.Response:
        key, params = await self.gateway.signed(request, Permission.READ)
        coin = params.get("coin")
        if coin is not None and coin not in self.config.assets:
            raise Refused(400, -1130, "Data sent for parameter 'coin' is not valid.")
        status = integer(params, "status", 0) if "status" in params else None
        ids = set(params["idList"].split(",")) if params.get("idList") else None
        start, end = integer(params, "startTime", 0) * MS, integer(params, "endTime", 2**63 // MS) * MS + MS - 1
        offset, limit = integer(params, "offset", 0), integer(params, "limit", LIMIT_MAX)
        if not 1 <= limit <= LIMIT_MAX:
            raise Refused(400, -1100, f"'limit' must be between 1 and {LIMIT_MAX}.")
        kept = await self.gateway.client.account_shard(key.account_id).withdrawal_history.remote(key.account_id, coin)
        rows = [_row(self.config.assets[w["asset"]], w) for w in reversed(kept) if start <= w["requested_ns"] <= end]
        rows = [r for r in rows if (status is None or r["status"] == status) and (ids is None or r["id"] in ids)
                and params.get("withdrawOrderId") in (None, r.get("withdrawOrderId"))]
        return json_response(rows[offset:offset + limit])


def _status(kept: dict) -> int:
    """Binance's status of a withdrawal in the history."""
    state, reason = kept["state"], kept["reason"]
    if state == WithdrawalState.REJECTED and reason == Reason.BROADCAST_FAILED:
        return FAILURE
    return STATUS.get(state, 4)


def _row(spec, kept: dict) -> dict:
    """A withdrawal of the history (``exchange.accounts.withdrawal_history``) as Binance's history row."""
    state = WithdrawalState(kept["state"])
    row = {"id": str(kept["withdrawal_id"]), "amount": format_decimal(kept["amount"], spec.scale),
           "transactionFee": format_decimal(0, spec.scale), "coin": spec.name, "status": _status(kept),
           "state": state.name.lower(), "address": kept["destination"], "txId": kept["txid"],
           "applyTime": _utc(kept["requested_ns"]), "network": spec.name, "transferType": 0,
           "info": Reason(kept["reason"]).name if kept["reason"] else "", "walletType": 0,
           "reviewUntil": kept["review_until_ns"] // MS}
    if type(kept["request_id"]) is str:
        row["withdrawOrderId"] = kept["request_id"]
    if kept["final_ns"]:
        row["completeTime"] = _utc(kept["final_ns"])
    return row


def _utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
