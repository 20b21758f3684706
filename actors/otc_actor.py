"""The OTC desk actor: the request-for-quote front end of the OTC desk (issue 16) over Ray.
It carries the pure desk (``exchange/otc/rfq.py: OtcDesk``); no rule lives here.

- **Clients** ask (``inquire``) and accept (``accept``); the answer is the firm quote
  as signed (``exchange.otc.signing``) with the desk's public key, or the refusal's
  reason. Each is one input of the desk (``[kind, *args]``, ``OtcDesk.apply``),
  journaled (``RecordTag.OTC_INPUT``) before the answer leaves, so a restart
  rebuilds every quote and acceptance, signatures included.
- **Every second** (``[otc] tick_s``) the actor feeds the desk the index of each pair
  (``IndexActor.index_prices``, as ticks), expires what ran out (quotes past their
  time to live, accepted trades past their payment window), and reads the desk's
  own account (``[otc] desk_account``) on its shard: its available balances are
  the desk's inventory. Each of those is an input too, journaled before it is
  applied.
- **The bank feed** (``bank_payment``, the operator capability: a client's own
  "receipt" changes nothing) reports fiat transfers; the desk takes them from the
  client's verified name only, and records a refund for every amount it refuses.
- Snapshots every ``snapshot_s``; metrics ``actors/metrics/otc.py``.

Not built yet (``docs/OTC.md``): crypto payment, delivery and settlement of paid
trades, credit, the hedge, metrics.
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson
import ray

from actors import clock
from actors.capability import Keyring, Role
from actors.durability.journal import DurableActor, Journal
from actors.metrics.roles import otc_metrics
from exchange.config import load_config
from exchange.core.money import INT64_MAX, INT64_MIN
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.matching.orders import BUY, SELL
from exchange.messages.tags import RecordTag, tag_of
from exchange.messages.validation import NAME_MAX_CHARS, TEXT_MAX_CHARS
from exchange.otc.rfq import OtcDesk, Rfq
from exchange.otc.rules import otc_rules
from exchange.pricing.index import index_ticks

log = logging.getLogger("exchange.otc")
SIDES = {"buy": BUY, "sell": SELL}


class OtcActor(DurableActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, keyring: Keyring | None = None,
                 snapshot_s: float = 30.0):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()
        self.rules = otc_rules(self.config)
        if self.rules is None:
            raise ValueError("the config has no [otc] desk")
        section = self.config.sections["otc"]
        self.desk_account = int(section.get("desk_account", 0))
        self.tick_s = float(section.get("tick_s", 1.0))
        self.desk = OtcDesk(self.rules)
        self.snapshot_s = snapshot_s
        self.last_snapshot = time.monotonic()
        self.journal = Journal.open(data_dir, "otc", self.config.sections.get("durability", {}))
        self.recovery = self.journal.recover(self._restore, self._replay)
        self.counts = {"quotes": 0, "refused": 0, "accepted": 0, "expired": 0, "cancelled": 0}
        self.refusals: dict[str, int] = {}           # reason -> refusals (metrics)
        self._task = None
        self.started_ns = time.time_ns()
        self.metrics = otc_metrics(self)
        if ray.is_initialized():            # a restarted process: its tick starts again by itself
            try:
                ray.get_runtime_context().current_actor.start.remote()
            except Exception as exc:        # not in an actor (a test builds one in-process)
                log.debug("otc desk: no actor to start: %r", exc)

    async def start(self) -> bool:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(clock.every(self.tick_s, self._tick, log,
                                                                            "otc desk tick"))
        return True

    # ---- inputs: journaled, then applied ------------------------------------------------------
    async def _input(self, entry: list):
        await self.journal.commit([orjson.dumps([RecordTag.OTC_INPUT, *entry])])
        return self.desk.apply(entry)

    async def _tick(self) -> dict:
        """The index of every pair, what expired, the desk account's inventory; a snapshot when due."""
        ts = clock.now_ns()
        prices = await ray.get_actor("index").index_prices.remote()
        specs = [pair.spec for pair in self.rules.pairs.values()]
        for name, ticks in sorted(index_ticks(specs, self.config.index_quote_asset, prices).items()):
            await self._input(["index", name, ts, ticks])
        if self.desk.expiring(ts):
            for rfq in await self._input(["expire", ts]):
                self.counts["expired" if rfq.state.name == "EXPIRED" else "cancelled"] += 1
        if self.desk_account:
            shard = ray.get_actor(f"shard:{shard_for(self.desk_account, self.config.shards)}")
            balances = await shard.balances.remote(self.desk_account) or {}
            for asset, (available, _) in sorted(balances.items()):
                if self.desk.inventory.get(asset) != available:
                    await self._input(["inventory", asset, available])
        if time.monotonic() - self.last_snapshot >= self.snapshot_s and self.journal.enabled:
            self.journal.snapshot(self._state())
            self.last_snapshot = time.monotonic()
        return self.view()

    # ---- clients -----------------------------------------------------------------------------
    async def inquire(self, account_id: int, pair: str, side: str, quantity: int = 0, notional: int = 0,
                      method: str = "crypto") -> dict:
        """A firm quote for buying or selling ``quantity`` base minor units (or ``notional``
        quote minor units) of ``pair``, paid by ``method``: ``{"ok", "quote", "signature",
        "public_key"}`` or ``{"ok": False, "reason"}``."""
        if side not in SIDES or not all(type(v) is int and INT64_MIN <= v <= INT64_MAX
                                        for v in (account_id, quantity, notional)) or not _name(pair) \
                or not _name(method):
            return self._refused(Reason.MALFORMED_COMMAND)     # (nothing journaled)
        answer = await self._input(["inquire", account_id, pair, SIDES[side], quantity, notional, method,
                                    clock.now_ns()])
        if type(answer) is Reason:
            return self._refused(answer)
        self.counts["quotes"] += 1
        return self._quoted(answer)

    async def accept(self, account_id: int, rfq_id: str) -> dict:
        """Accept a quote (its owner, once, before it expires): ``{"ok", "quote", "state"}``
        or ``{"ok": False, "reason"}``."""
        if type(account_id) is not int or not INT64_MIN <= account_id <= INT64_MAX or not _name(rfq_id):
            return self._refused(Reason.MALFORMED_COMMAND)
        answer = await self._input(["accept", account_id, rfq_id, clock.now_ns()])
        if type(answer) is Reason:
            return self._refused(answer)
        self.counts["accepted"] += 1
        return self._quoted(answer)

    # ---- the bank feed ----------------------------------------------------------------------
    async def bank_payment(self, capability, rfq_id: str, amount: int, payer_name: str, reference: str) -> dict:
        """A fiat transfer the bank reports for ``rfq_id`` (quote asset minor units): taken
        (``{"ok", "state", "paid"}``) or refused and refunded (``{"ok": False, "reason"}``).
        ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        if not _name(rfq_id) or type(amount) is not int or not INT64_MIN <= amount <= INT64_MAX \
                or not _text(payer_name) or not _text(reference):
            return self._refused(Reason.MALFORMED_COMMAND)
        answer = await self._input(["bank", rfq_id, amount, payer_name, reference, clock.now_ns()])
        if type(answer) is Reason:
            return self._refused(answer)
        return {"ok": True, "state": answer.state.name.lower(), "paid": answer.paid}

    def refunds(self) -> list[list]:
        """Money the desk refused or owes back: [rfq id, amount, reference, why]."""
        return [list(r) for r in self.desk.refunds]

    def _quoted(self, rfq: Rfq) -> dict:
        return {"ok": True, "quote": rfq.quote(self.rules.pairs[rfq.pair].spec), "state": rfq.state.name.lower(),
                "signature": rfq.signature, "public_key": self.desk.signer.public_key}

    def _refused(self, reason: Reason) -> dict:
        self.counts["refused"] += 1
        self.refusals[reason.name] = self.refusals.get(reason.name, 0) + 1
        return {"ok": False, "reason": reason.name, "explanation": reason.explanation}

    # ---- views ------------------------------------------------------------------------------
    def public_key(self) -> str:
        """The desk's Ed25519 public key (hex): what a client checks a quote's signature with."""
        return self.desk.signer.public_key

    def rfq(self, rfq_id: str) -> dict | None:
        found = self.desk.rfqs.get(rfq_id)
        return None if found is None else self._quoted(found)

    def view(self) -> dict:
        """Counts, open RFQs by state, the desk's inventory and what accepted trades lock."""
        states: dict[str, int] = {}
        for rfq in self.desk.rfqs.values():
            states[rfq.state.name.lower()] = states.get(rfq.state.name.lower(), 0) + 1
        return {**self.counts, "states": states, "inventory": dict(self.desk.inventory),
                "locked": {a: v for a, v in self.desk.locked.items() if v}}

    def state_hash(self) -> str:
        return repr(self.desk.canonical())

    # ---- durability ---------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"desk": self.desk.to_plain()}

    def _restore(self, state: dict) -> None:
        self.desk.restore(state["desk"])

    def _replay(self, record: list) -> None:
        if tag_of(record) is not RecordTag.OTC_INPUT:
            raise ValueError(f"not an OTC desk record: {record[0]}")
        self.desk.apply(record[1:])


def _text(value) -> bool:
    """A payer's name or a bank reference: printable, at most 256 characters."""
    return isinstance(value, str) and len(value) <= TEXT_MAX_CHARS and value.isprintable()


def _name(value) -> bool:
    """A pair, a payment method or a quote id as the journal may keep it: a short printable string."""
    return isinstance(value, str) and 0 < len(value) <= NAME_MAX_CHARS and value.isascii() and value.isprintable()


RemoteOtc = ray.remote(OtcActor)
