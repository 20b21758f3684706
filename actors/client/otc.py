"""The Python client's OTC desk methods (issue 16, first part).

Mixed into ``ExchangeClient``. A client asks the desk for a firm quote on a pair and
a side, for a base quantity or a quote notional (decimal strings at the assets'
scales, or ints in minor units), naming a payment method; the answer is the quote
as the desk signed it, the signature and the desk's public key
(``otc_verify`` checks them: ``exchange.otc.signing``), or the refusal's reason
(group 6xx, ``exchange/core/reasons.py``). ``otc_accept`` takes the quote before its
time to live runs out, once: the answer comes once the desk's inventory is locked and,
for a crypto-paid trade, the payment taken from the account (or with the reason it was
not). Settlement ``"t+1"`` (approved institutions) delivers first; ``otc_pay`` pays such
a trade from the account's balance.

    quote = client.otc_inquire(101, "BTC-USDT", "buy", quantity="25")
    assert client.otc_verify(quote)
    client.otc_accept(101, quote["quote"]["id"])

The operator's views and actions take the operator capability: ``otc_approve`` (a
delivery above the threshold), ``otc_blotter``, ``otc_credit``, ``otc_trail``.
"""
from __future__ import annotations

import ray

from exchange.otc.signing import verify


class OtcClientMixin:
    """Needs ``config``, ``handles`` and ``_amount``."""

    def otc_inquire(self, account_id: int, pair: str, side: str, quantity: int | str = 0, notional: int | str = 0,
                    method: str = "crypto", settlement: str = "t+0") -> dict:
        """A firm, signed quote (``{"ok", "quote", "signature", "public_key", "state"}``) or the
        refusal (``{"ok": False, "reason", "explanation"}``)."""
        spec = self.config.markets.get(pair)
        if spec is not None:
            quantity = self._amount(spec.base.name, quantity)
            notional = self._amount(spec.quote.name, notional)
        return ray.get(self.handles.otc.inquire.remote(account_id, pair, side, quantity, notional, method, settlement))

    def otc_accept(self, account_id: int, rfq_id: str) -> dict:
        """Accept a quote: the desk locks what it delivers (``{"ok", "quote", "state"}``), or why not."""
        return ray.get(self.handles.otc.accept.remote(account_id, rfq_id))

    def otc_pay(self, account_id: int, rfq_id: str) -> dict:
        """Pay a delivered crypto T+1 trade from the account's balance."""
        return ray.get(self.handles.otc.pay.remote(account_id, rfq_id))

    def otc_rfq(self, rfq_id: str) -> dict | None:
        """One RFQ as the desk holds it now (None once let go: the blotter keeps settled trades)."""
        return ray.get(self.handles.otc.rfq.remote(rfq_id))

    def otc_approve(self, capability, rfq_id: str, operator: str, reason: str) -> dict:
        return ray.get(self.handles.otc.approve.remote(capability, rfq_id, operator, reason))

    def otc_blotter(self, capability) -> list[dict]:
        return ray.get(self.handles.otc.blotter.remote(capability))

    def otc_credit(self, capability) -> list[dict]:
        return ray.get(self.handles.otc.credit.remote(capability))

    def otc_trail(self, capability, rfq_id: str) -> list[dict]:
        return ray.get(self.handles.otc.trail.remote(capability, rfq_id))

    def otc_verify(self, answer: dict) -> bool:
        """Is the quote in ``answer`` signed by the desk whose key this client trusts (the desk
        actor's ``public_key``, asked once)?"""
        key = getattr(self, "_otc_key", None)
        if key is None:
            key = self._otc_key = ray.get(self.handles.otc.public_key.remote())
        return bool(answer.get("ok")) and verify(key, answer["quote"], answer["signature"])

    def otc_view(self) -> dict:
        """The desk's counts, RFQs by state, inventory, locks and transit, settlements, income,
        hedges and credit book."""
        return ray.get(self.handles.otc.view.remote())
