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
- **The money** moves by numbered crossings (``exchange.otc.crossing``) the actor
  carries to the shards' OTC door (``ShardActor.execute_otc``, the OTC capability):
  after every input that records some, and again each tick for any not answered yet
  (a lost answer or a restart); each answer is an input (``crossed``). An acceptance
  is answered once its lock (and a crypto payment) has landed or been refused.
- **Operators** (the operator capability) approve deliveries above
  ``[otc.delivery_approval]`` (``approve``) and read the private blotter
  (``blotter``), the credit book (``credit``), the refunds and an RFQ's trail.
- **The hedge**: when a trade takes the inventory past a limit, and each tick, the desk
  may decide a hedge order (``exchange.otc.hedge``);
  the actor places it from the desk's account through the shard's client door, an
  ordinary IOC limit order, and records what it filled.
- ``audit``: the desk's transit for the conservation audit, with how many crossings
  are unanswered (the audit waits for none).
- Snapshots every ``snapshot_s``; metrics ``actors/metrics/otc.py``.
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
from actors.link.wire import unpack_results
from actors.metrics.roles import otc_metrics
from exchange.config import load_config
from exchange.core.money import INT64_MAX, INT64_MIN
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from exchange.matching.orders import BUY, SELL, OrderType, TimeInForce
from exchange.messages.records import Fill, OtcCrossed, PlaceOrder
from exchange.messages.tags import RecordTag, tag_of
from exchange.messages.validation import NAME_MAX_CHARS, TEXT_MAX_CHARS
from exchange.otc.credit import book as credit_book
from exchange.otc.rfq import OtcDesk, Rfq
from exchange.otc.rules import otc_rules
from exchange.otc.settlement import BLOTTER_FIELDS, COLLECT, LOCK
from exchange.pricing.index import index_ticks

log = logging.getLogger("exchange.otc")
SIDES = {"buy": BUY, "sell": SELL}
SETTLEMENTS = {"t+0": False, "t+1": True}
ANSWER_WAIT_S = 5.0         # an acceptance waits this long for its lock's answer before answering as it stands


class OtcActor(DurableActor):
    def __init__(self, config_path: str | None, data_dir: str | None = None, keyring: Keyring | None = None,
                 snapshot_s: float = 30.0):
        self.config = load_config(config_path)
        self.keyring = keyring or Keyring.mint()
        self.rules = otc_rules(self.config)
        if self.rules is None:
            raise ValueError("the config has no [otc] desk")
        section = self.config.sections["otc"]
        self.desk_account = self.rules.desk_account
        self.tick_s = float(section.get("tick_s", 1.0))
        self.desk = OtcDesk(self.rules, self.config.routing)
        self._as_otc = self.keyring.capability(Role.OTC)
        self._sending: dict[int, asyncio.Lock] = {}
        self.snapshot_s = snapshot_s
        self.last_snapshot = time.monotonic()
        self.journal = Journal.for_actor(data_dir, "otc", self.config)
        self.recovery = self.journal.recover(self._restore, self._replay)
        self.counts = {"quotes": 0, "refused": 0, "accepted": 0, "expired": 0, "cancelled": 0, "overdue": 0}
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
        return (await self._inputs([entry]))[0]

    async def _inputs(self, entries: list[list]) -> list:
        """Several inputs in one journal commit, then applied in order."""
        await self.journal.commit([orjson.dumps([RecordTag.OTC_INPUT, *entry]) for entry in entries])
        return [self.desk.apply(entry) for entry in entries]

    async def _tick(self) -> dict:
        """The index of every pair, what expired, the desk account's inventory; a snapshot when due."""
        ts = clock.now_ns()
        prices = await ray.get_actor("index").index_prices.remote()
        specs = [pair.spec for pair in self.rules.pairs.values()]
        for name, ticks in sorted(index_ticks(specs, self.config.index_quote_asset, prices).items()):
            await self._input(["index", name, ts, ticks])
        if self.desk.expiring(ts):
            for rfq in await self._input(["expire", ts]):
                self.counts["overdue" if rfq.overdue and rfq.state.name not in ("EXPIRED", "CANCELLED")
                            else rfq.state.name.lower()] += 1
        await self._send()
        if self.desk_account:
            balances = await self._shard(self.desk_account).balances.remote(self.desk_account) or {}
            for asset, (available, _) in sorted(balances.items()):
                if self.desk.inventory.get(asset) != available:
                    await self._input(["inventory", asset, available])
            await self._hedge(clock.now_ns())
        if time.monotonic() - self.last_snapshot >= self.snapshot_s and self.journal.enabled:
            self.journal.snapshot(self._state())
            self.last_snapshot = time.monotonic()
        return self.view()

    # ---- clients -----------------------------------------------------------------------------
    async def inquire(self, account_id: int, pair: str, side: str, quantity: int = 0, notional: int = 0,
                      method: str = "crypto", settlement: str = "t+0") -> dict:
        """A firm quote for buying or selling ``quantity`` base minor units (or ``notional``
        quote minor units) of ``pair``, paid by ``method``, settled now (``"t+0"``) or on
        credit (``"t+1"``): ``{"ok", "quote", "signature", "public_key"}`` or ``{"ok": False,
        "reason"}``. The client's available balances are read from its shard first (a
        crypto-paid quote needs them); an account the shard does not know is refused."""
        if side not in SIDES or settlement not in SETTLEMENTS or \
                not all(type(v) is int and INT64_MIN <= v <= INT64_MAX for v in (account_id, quantity, notional)) \
                or not _name(pair) or not _name(method):
            return self._refused(Reason.MALFORMED_COMMAND)     # (nothing journaled)
        found = await self._shard(account_id).balances.remote(account_id)
        if found is None:
            return self._refused(Reason.UNKNOWN_ACCOUNT)
        balances = {asset: available for asset, (available, _) in sorted(found.items())}
        answer = await self._input(["inquire", account_id, pair, SIDES[side], quantity, notional, method,
                                    clock.now_ns(), SETTLEMENTS[settlement], balances])
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
        await self._answered(answer, LOCK | COLLECT)
        if answer.why:
            return self._refused(Reason(answer.why))
        return self._quoted(answer)

    async def pay(self, account_id: int, rfq_id: str) -> dict:
        """Pay a crypto credit trade from the account's balance: ``{"ok", "state"}`` once the
        shard answered, or OTC_CLIENT_BALANCE_SHORT (still owed)."""
        if type(account_id) is not int or not INT64_MIN <= account_id <= INT64_MAX or not _name(rfq_id):
            return self._refused(Reason.MALFORMED_COMMAND)
        answer = await self._input(["pay", account_id, rfq_id, clock.now_ns()])
        if type(answer) is Reason:
            return self._refused(answer)
        await self._answered(answer, COLLECT)
        if not answer.sent & COLLECT:           # refused by the shard: still owed
            return self._refused(Reason.OTC_CLIENT_BALANCE_SHORT)
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
        await self._send()
        return {"ok": True, "state": answer.state.name.lower(), "paid": answer.paid}

    # ---- operators ----------------------------------------------------------------------------
    async def approve(self, capability, rfq_id: str, operator: str, reason: str) -> dict:
        """Release a delivery above ``[otc.delivery_approval]`` (the cold wallet's path):
        ``{"ok", "state"}`` or why not. ``PermissionError`` without the operator capability."""
        self.keyring.check(capability, Role.OPERATOR)
        if not _name(rfq_id) or not _name(operator) or not _text(reason) or not reason:
            return self._refused(Reason.MALFORMED_COMMAND)
        answer = await self._input(["approve", rfq_id, operator, reason, clock.now_ns()])
        if type(answer) is Reason:
            return self._refused(answer)
        await self._send()
        return self._quoted(answer)

    def blotter(self, capability) -> list[dict]:
        """The desk's settled trades (private: never on a public trade feed)."""
        self.keyring.check(capability, Role.OPERATOR)
        return [dict(zip(BLOTTER_FIELDS, row)) for row in self.desk.blotter]

    def credit(self, capability) -> list[dict]:
        """Each approved client's credit limit, exposure and overdue trades."""
        self.keyring.check(capability, Role.OPERATOR)
        return credit_book(self.desk)

    def trail(self, capability, rfq_id: str) -> list[dict]:
        """Every transition of one RFQ (the desk's audit trail)."""
        self.keyring.check(capability, Role.OPERATOR)
        return self.desk.trail(rfq_id)

    def audit(self) -> dict:
        """The desk's transit (per asset, what is between an account and another) and how many
        crossings wait for an answer: the conservation audit counts transit as the desk's
        when none does."""
        return {"transit": {a: v for a, v in self.desk.outbox.transit.items() if v},
                "unanswered": self.desk.outbox.pending(), "numbered": dict(self.desk.outbox.numbered)}

    # ---- crossings and hedges -------------------------------------------------------------
    async def _answered(self, rfq: Rfq, steps: int) -> None:
        """Carry the crossings until ``rfq``'s ``steps`` sent have their answers (at most
        ``ANSWER_WAIT_S``)."""
        await self._send()
        deadline = time.monotonic() + ANSWER_WAIT_S
        while rfq.sent & steps & ~(rfq.done | rfq.refused) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            await self._send()
        if self.desk_account and self.desk.hedges.wanted(self.desk, clock.now_ns()) is not None:
            asyncio.get_running_loop().create_task(self._hedge(clock.now_ns()))   # the fill took the
                                                                                  # inventory past a limit

    async def _send(self) -> None:
        """Carry every unanswered crossing to its shard's OTC door, in order, and record the
        answers; again while the answers call for more (a payment in: the delivery), a few
        rounds at most (the tick carries the rest)."""
        for _ in range(4):
            if not any(await asyncio.gather(*(self._send_to(i) for i in sorted(self.desk.outbox.unacked)))):
                return

    async def _send_to(self, shard_index: int) -> bool:
        """One call to ``shard_index``'s OTC door with what it has not answered; did it answer any?"""
        lock = self._sending.setdefault(shard_index, asyncio.Lock())
        if lock.locked():
            return False                        # already on its way: that call records the answers
        async with lock:
            crossings = list(self.desk.outbox.unacked.get(shard_index, ()))
            if not crossings:
                return False
            shard = ray.get_actor(f"shard:{shard_index}")
            answers = unpack_results(await shard.execute_otc.remote(self._as_otc, [c.command() for c in crossings]))
            ts = clock.now_ns()
            crossed = [["crossed", shard_index, events[0].seq, events[0].reason, ts]
                       for events in answers if events and type(events[0]) is OtcCrossed]
            if crossed:
                await self._inputs(crossed)
            return bool(crossed)

    async def _hedge(self, ts: int) -> None:
        """Place the hedge the desk decides, if any, from its account as an ordinary IOC order
        (each tick, and as soon as a trade took the inventory past a limit)."""
        if self.desk.hedges.wanted(self.desk, ts) is None:
            return                                  # (nothing journaled)
        order = await self._input(["hedge", ts])
        if order is None:                           # another call placed it meanwhile
            return
        number, market, side, quantity, price = order
        command = PlaceOrder(f"otc-hedge-{number}", 0, self.desk_account, market, side, int(OrderType.LIMIT), price,
                             quantity, int(TimeInForce.IOC), f"otc-hedge-{number}")
        (events,) = unpack_results(await self._shard(self.desk_account).execute.remote([command]))
        filled = sum(e.quantity for e in events if type(e) is Fill)
        log.info("otc hedge %s: %s %s %s at %s, filled %s", number, market, "buy" if side == BUY else "sell",
                 quantity, price, filled)
        await self._input(["hedged", number, filled, clock.now_ns()])

    def _shard(self, account_id: int):
        return ray.get_actor(f"shard:{shard_for(account_id, self.config.routing)}")

    def refunds(self) -> list[list]:
        """Money the desk refused or owes back: [rfq id, amount, reference, why]."""
        return [list(r) for r in self.desk.refunds]

    def _quoted(self, rfq: Rfq) -> dict:
        return {"ok": True, "quote": rfq.quote(self.rules.pairs[rfq.pair].spec), "state": rfq.state.name.lower(),
                "signature": rfq.signature, "public_key": self.desk.signer.public_key, "paid": rfq.paid,
                "due_ns": rfq.due_ns, "overdue": rfq.overdue,
                "why": Reason(rfq.why).name if rfq.why else ""}

    def _refused(self, reason: Reason) -> dict:
        self.counts["refused"] += 1
        self.refusals[reason.name] = self.refusals.get(reason.name, 0) + 1
        return {"ok": False, "reason": reason.name, "explanation": reason.explanation}

    # ---- views ------------------------------------------------------------------------------
    def public_key(self) -> str:
        """The desk's Ed25519 public key (hex): what a client checks a quote's signature with."""
        return self.desk.signer.public_key

    def rfq(self, rfq_id: str) -> dict | None:
        """One RFQ as it stands, with its transitions (``history``: when, what, by whom)."""
        found = self.desk.rfqs.get(rfq_id)
        if found is None:
            return None
        return {**self._quoted(found), "history": [{k: e[k] for k in ("ts_ns", "who", "what", "after", "why")}
                                                   for e in self.desk.trail(rfq_id)]}

    def view(self) -> dict:
        """Counts, RFQs in memory by state, the desk's inventory, locks and transit, what it
        settled and earned, its hedges and refunds."""
        desk = self.desk
        states: dict[str, int] = {}
        for rfq in desk.rfqs.values():
            states[rfq.state.name.lower()] = states.get(rfq.state.name.lower(), 0) + 1
        return {**self.counts, "states": states, "inventory": dict(desk.inventory),
                "locked": {a: v for a, v in desk.locked.items() if v},
                "transit": {a: v for a, v in desk.outbox.transit.items() if v}, "settled": len(desk.blotter),
                "income": dict(desk.income), "fiat_in": dict(desk.fiat_in), "refunds": len(desk.refunds),
                "hedges": [{"asset": o[1], "side": "buy" if o[3] == BUY else "sell", "quantity": o[4],
                            "price": o[5], "filled": o[6]} for o in desk.hedges.orders],
                "credit": credit_book(desk), "problems": len(desk.problems)}

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
