"""Withdrawals in the shapes of Binance's wallet API (``/sapi/v1/capital/withdraw/...``,
issue 18): apply for one (a key with the ``withdraw`` permission) and read those in
progress. The cashier (``exchange/risk/cashier.py``) holds the funds at once and runs the
rulebook's checks (freezes, a recent credential change, the margin line, the blocklist,
the review of a large withdrawal); the treasury pays it out.

- ``coin`` is the asset, ``address`` the destination; ``network`` is not a choice here
  (each asset has one chain) and an ``addressTag`` is refused rather than dropped.
- ``withdrawOrderId`` becomes the command's request id: the same id with the same body
  is answered as the first time (within the shard's dedup window), never paid twice.
- ``id`` is the cashier's withdrawal id. A request a rule rejects is kept on file and
  answered with its reason; its funds are back at once.
- History shows the withdrawals **in progress** only (the shard's ``withdrawals`` view):
  ``status`` 2 (awaiting approval: queued for review) or 4 (processing: approved or sent).
  Confirmed and rejected ones, and each withdrawal's request time and
  ``withdrawOrderId``, are not kept in a view the gateway can read.
"""
from __future__ import annotations

from aiohttp import web

from exchange.core.money import format_decimal
from exchange.core.reasons import Reason
from exchange.messages.records import OrderRejected, RequestWithdrawal, WithdrawalUpdated
from exchange.risk.withdrawals import WithdrawalState
from gateway.auth import Permission
from gateway.http import Refused, json_response, required
from gateway.products.common import asset, decimal, refused

STATUS = {"queued": 2, "rejected": 3, "confirmed": 6}          # Binance's; anything else in progress: 4

ENDPOINTS = [
    ("post", "/sapi/v1/capital/withdraw/apply", "USER_DATA", 10, "Withdraw (needs the withdraw permission)",
     [("coin", {"type": "string"}, True), ("address", {"type": "string", "maxLength": 128}, True),
      ("amount", {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}, True),
      ("withdrawOrderId", {"type": "string", "maxLength": 64}, False)]),
    ("get", "/sapi/v1/capital/withdraw/history", "USER_DATA", 10, "Withdrawals in progress",
     [("coin", {"type": "string"}, False)]),
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
        views = await self.gateway.client.account_shard(key.account_id).withdrawals.remote(key.account_id)
        return json_response([_row(self.config.assets[v["asset"]], v) for v in views if coin in (None, v["asset"])])


def _row(spec, view: dict) -> dict:
    """A withdrawal of the cashier's view as Binance's history row."""
    review = view["review_until_ns"]
    return {"id": str(view["withdrawal"]), "amount": format_decimal(view["amount"], spec.scale),
            "transactionFee": format_decimal(0, spec.scale), "coin": spec.name, "status": STATUS.get(view["state"], 4),
            "state": view["state"], "address": view["destination"], "txId": view["txid"] or "", "network": spec.name,
            "transferType": 0, "info": "", "reviewUntil": review // 1_000_000 if review else 0}
