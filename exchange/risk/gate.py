"""The pre-trade gate: the rulebook's per-account controls at a shard's door.

A shard (``AccountShard.risk``) runs every client command through
``RiskGate.check`` before applying it, and ``commit``s what the check counted
only once the command was accepted, so **a refused command changes nothing**
(no token spent, nothing counted). The controls, in the order they run:

1. **Account lock** (``R-4.1.4-account-lock``, 4.1.4/4.1.6): a locked account
   may send nothing but deposits (``ACCOUNT_LOCKED``).
2. **Request rate** (``R-5.2.2.1-request-rate``): a token bucket per account
   over every command (``RATE_LIMITED``).
3. For an order (spot, margin, perpetual; an amend counts as one for 3a-3c):
   a. **Freezes** (``R-5.2.2.3-freeze``): the account's trading
      (``ACCOUNT_FROZEN``), or an asset of the market (``ASSET_FROZEN``).
   b. **Restrictions**: a restrict-open-close in force refuses every order
      (``TRADING_RESTRICTED``), a restrict-open every order that may open
      (``OPENING_RESTRICTED``: everything but a perpetual reduce-only order);
      either names the rule that imposed it (the cancel ladder, the
      over-trading block, an operator).
   c. **Unfilled orders** (``R-5.2.2.1-order-rate``): a second bucket, whose
      token an order gives back at its first fill (``refund``): orders that
      trade do not use up the limit, as large venues count it.
   d. **Open orders** (``R-5.2.2.1-open-orders``): at most ``base`` open spot
      and margin orders, plus ``per_step`` for every ``step_equity`` of the
      account's spot equity at the index, up to ``max`` (``TOO_MANY_OPEN_ORDERS``).
   e. **Price band** (``R-4.2.7-price-band``): a spot or margin limit order
      priced further than ``band_bps`` from the market's index
      (``PRICE_OUTSIDE_BAND``). Perpetuals keep their own bands (the listing
      band of 4.2.7 and the divergence band, ``exchange.perp.rules``).
4. **The cancel ladder** (``R-4.2.5-cancel-ladder``, 4.2.5): every accepted
   place and cancel counts toward ``count`` per account and market in a
   ``window_s`` that slides in 24 steps (an hour for the rulebook's 24 h:
   ``Window``, two increments a tick). Reaching it warns and starts counting again;
   reaching it again within ``window_s`` of the last reach restricts opening
   in that market for ``restrict_s``; a third time restricts opening and
   closing; a reach more than ``window_s`` after the last starts the ladder
   over. The step's action is capped by the rule's action (under ``none``
   every step is only recorded).
5. **Withdrawals**: refused while the account's or the asset's withdrawals
   are frozen.

Each rule's action decides what crossing it does (``exchange.risk.
rulebook``): below ``restrict-open`` the command is **not refused**; the
crossing is recorded as a ``RiskAction`` event with the action taken (0, only
recorded, or 1, alerted) and the command goes on. Every refusal cites its rule
(``OrderRejected.rule``). Market makers' fee tiers are exempt from the
buckets and the ladder by default (``exempt_tiers``): they quote under
agreements, and the rulebook aims these rules at users.

Time is the commands' ``ts_ns`` (the shard's stamp): windows and buckets never
read a clock, so a journal replay counts the same. A bucket is kept as the
generic cell rate algorithm (``_gcra``): one theoretical arrival time, exact,
one int of state and two comparisons a command. A ladder keeps 24 counters
per account and market.

The fused spot path (``exchange.fused``) asks ``quiet_place`` /
``quiet_cancel``: whether the order passes with nothing to say, counting it
if so, and changing nothing if not (the pipeline then runs ``check``). They
touch as few objects as a command can: the account's record hangs on the
ledger account the path holds anyway (``Account.risk``, linked on first use,
``link``), and the record is also the ladder window of the account's first
market (``AccountRisk`` is a ``Window``); a slot gone by, another market or a
step of the ladder is left to the pipeline.
"""
from __future__ import annotations

from exchange.core.reasons import Reason
from exchange.messages.records import (AmendOrder, CancelOrder, CancelPerpOrder, Deposit, FreezeAccount, FreezeAsset,
                                       GrantHedgeExemption, LockAccount, OperatorActed, OrderRejected, PlaceMarginOrder, PlaceOrder,
                                       PlacePerpOrder, RestrictAccount, RiskAction, SetRiskRule, Withdraw)
from exchange.risk.admin import permit
from exchange.risk.audit import AuditLog
from exchange.risk.modes import MARKET_RULES
from exchange.risk.rulebook import ACTION_TEXT, Action, Rule, Rulebook, RulebookError

NANOS = 1_000_000_000
TRADING, WITHDRAWAL = 1, 2     # freeze scopes (3: both)
LIMIT = 1
NONE, ALERT, RESTRICT_OPEN, RESTRICT_OPEN_CLOSE, FREEZE = (int(a) for a in Action)

LOCK, REQUEST_RATE, ORDER_RATE, OPEN_ORDERS = ("R-4.1.4-account-lock", "R-5.2.2.1-request-rate",
                                               "R-5.2.2.1-order-rate", "R-5.2.2.1-open-orders")
BAND, LADDER, FREEZE_RULE = "R-4.2.7-price-band", "R-4.2.5-cancel-ladder", "R-5.2.2.3-freeze"
ORDERS = frozenset((PlaceOrder, PlaceMarginOrder, PlacePerpOrder))
CANCELS = frozenset((CancelOrder, CancelPerpOrder))
OPERATOR_KINDS = frozenset((FreezeAccount, LockAccount, RestrictAccount, FreezeAsset, SetRiskRule, GrantHedgeExemption))
POSITION = "R-4.3.1-position-limit"
LADDER_STEPS = (ALERT, RESTRICT_OPEN, RESTRICT_OPEN_CLOSE)
SLOTS = 24                     # a ladder window's slots


class Window:
    """Places and cancels in a sliding window of ``SLOTS`` slots (one slot: a 24th of the
    window, an hour of the rulebook's 24 h): ``total`` is the count in the last ``SLOTS``
    slots up to ``slot``; ``cur`` the count in ``slot`` itself, folded into ``counts`` when
    the window moves. A tick costs two increments of the window's own fields unless a slot
    went by."""

    __slots__ = ("total", "slot", "cur", "counts")

    def __init__(self, slot: int = 0) -> None:
        self.total = 0
        self.slot = slot
        self.cur = 0
        self.counts = [0] * SLOTS

    def expired(self, slot: int) -> int:
        """What moving to ``slot`` would drop (without moving)."""
        if slot - self.slot >= SLOTS:
            return self.total
        return sum(self.counts[s % SLOTS] for s in range(self.slot + 1, slot + 1))

    def move(self, slot: int) -> None:
        if slot - self.slot >= SLOTS:
            self.counts = [0] * SLOTS
            self.total = 0
        else:
            counts = self.counts
            counts[self.slot % SLOTS] += self.cur
            for s in range(self.slot + 1, slot + 1):
                self.total -= counts[s % SLOTS]
                counts[s % SLOTS] = 0
        self.slot, self.cur = slot, 0

    def reset(self) -> None:
        """Count from nothing again (a ladder step was reached)."""
        self.counts, self.total, self.cur = [0] * SLOTS, 0, 0

    def window_canonical(self) -> tuple:
        counts = list(self.counts)
        counts[self.slot % SLOTS] += self.cur
        return (self.total, self.slot, tuple(counts))

    def window_restore(self, total: int, slot: int, counts) -> None:
        self.total, self.slot, self.cur, self.counts = total, slot, 0, list(counts)


class AccountRisk(Window):
    """One account's counters and restrictions. It is also the account's ladder window in its
    first market (``market``; ``Window``'s fields): the window nearly every command touches
    lives in the object the command reads anyway. Windows in other markets are in
    ``ladders``. The ledger's ``Account.risk`` points here (``RiskGate.link``)."""

    __slots__ = ("requests_tat", "orders_tat", "open_orders", "restrictions", "frozen", "locked", "ladders", "steps",
                 "market")

    def __init__(self) -> None:
        Window.__init__(self)
        self.market = None             # the market of the window kept in this object (None: none yet)
        self.requests_tat = 0          # the request bucket: its theoretical arrival time (GCRA; 0: full)
        self.orders_tat = 0            # the unfilled-order bucket, likewise
        self.open_orders = 0           # open spot and margin orders
        self.restrictions: dict = {}   # (market or "", rule) -> (level, until_ns or 0)
        self.frozen = 0                # TRADING | WITHDRAWAL
        self.locked = False
        self.ladders: dict = {}        # other markets -> Window of its places and cancels
        self.steps: dict = {}          # market -> (ladder steps reached in a row, when the last was reached)

    def window(self, market: str) -> Window | None:
        """The account's ladder window in ``market`` (None: none yet)."""
        return self if market == self.market else self.ladders.get(market)

    def new_window(self, market: str, slot: int) -> Window:
        if self.market is None:
            self.market, self.slot = market, slot
            return self
        window = self.ladders[market] = Window(slot)
        return window

    def windows(self) -> list[tuple[str, Window]]:
        """Every ladder window, by market."""
        home = [(self.market, self)] if self.market is not None else []
        return sorted(home + list(self.ladders.items()), key=lambda item: item[0])

    def canonical(self) -> tuple:
        return (self.requests_tat, self.orders_tat, self.open_orders, tuple(sorted(self.restrictions.items())),
                self.frozen, self.locked, tuple((m, w.window_canonical()) for m, w in self.windows()),
                tuple(sorted(self.steps.items())))

    def idle(self) -> bool:
        return (not self.requests_tat and not self.orders_tat and not self.open_orders and not self.restrictions
                and not self.frozen and not self.locked and self.market is None and not self.steps)


class Ticket:
    """What an accepted command will count: bucket levels to set, a ladder tick, and the
    records to emit."""

    __slots__ = ("risk", "requests", "orders", "ladder", "notices", "ts_ns", "account_id")

    def __init__(self, risk, ts_ns, account_id):
        self.risk, self.ts_ns, self.account_id = risk, ts_ns, account_id
        self.requests = self.orders = None
        self.ladder = None
        self.notices: list = []


class RiskGate:
    """The per-account controls of one shard (see the module docstring)."""

    def __init__(self, rulebook: Rulebook, config, markets: dict, name: str = "shard:0"):
        self.config = config
        self.audit = AuditLog(name)                      # this shard's chain of risk actions (exchange.risk.audit)
        self.accounts: dict[int, AccountRisk] = {}
        self.frozen_assets: dict[int, int] = {}          # asset index -> TRADING | WITHDRAWAL
        self.hedges: set = set()                         # (account, perpetual market) exempt from the position limit
        self.market_assets = {name: (spec.base.index, spec.quote.index) for name, spec in markets.items()}
        self._asset_index = {name: spec.index for name, spec in config.assets.items()}
        self.set_rulebook(rulebook)

    def set_rulebook(self, rulebook: Rulebook) -> None:
        """Use ``rulebook`` from now on (a run-time threshold change): the rules' values are
        read once here, not on every command."""
        self.rulebook = rulebook
        r = rulebook.rules
        self.request_rule, self.order_rule = r[REQUEST_RATE], r[ORDER_RATE]
        self.open_rule, self.band_rule, self.ladder_rule = r[OPEN_ORDERS], r[BAND], r[LADDER]
        self.req_interval, self.req_tau = _gcra(self.request_rule["burst"], self.request_rule["refill_per_s"])
        self.ord_interval, self.ord_tau = _gcra(self.order_rule["burst"], self.order_rule["refill_per_s"])
        self.req_exempt = frozenset(self.request_rule["exempt_tiers"])
        self.ord_exempt = frozenset(self.order_rule["exempt_tiers"])
        self.ladder_exempt = frozenset(self.ladder_rule["exempt_tiers"])
        self.ladder_count, self.ladder_window = self.ladder_rule["count"], self.ladder_rule["window_s"] * NANOS
        self.slot_ns = max(1, self.ladder_window // SLOTS)
        self.ladder_restrict = self.ladder_rule["restrict_s"] * NANOS
        self.open_base, self.open_max = self.open_rule["base"], self.open_rule["max"]
        self.band_bps = self.band_rule["band_bps"]

    def risk(self, account_id: int) -> AccountRisk:
        found = self.accounts.get(account_id)
        if found is None:
            found = self.accounts[account_id] = AccountRisk()
        return found

    def link(self, account) -> AccountRisk:
        """The ledger ``account``'s record, made once and kept on it (``Account.risk``): the
        hot path reads it from the account it holds, with no lookup."""
        risk = account.risk = self.risk(account.account_id)
        return risk

    # ---- the door -----------------------------------------------------------------
    def check(self, cmd, account, context) -> list | Ticket | None:
        """A client command's refusal (``[OrderRejected]`` citing the rule), or the Ticket
        to ``commit`` once it is accepted (None: nothing to count)."""
        kind = type(cmd)
        if kind is Deposit or kind in OPERATOR_KINDS or account is None:
            return None
        ts = cmd.ts_ns
        risk = account.risk or self.link(account)   # an idle record is no state (``canonical`` skips it)
        if risk.locked:
            return _refused(cmd, Reason.ACCOUNT_LOCKED, LOCK)
        ticket = Ticket(risk, ts, cmd.account_id)
        tier = account.fee_tier
        if tier not in self.req_exempt:
            tat = risk.requests_tat if risk.requests_tat > ts else ts
            if tat - ts <= self.req_tau:
                ticket.requests = tat + self.req_interval
            elif self._enforced(self.request_rule, ticket, "", 0, self.request_rule["burst"]):
                return _refused(cmd, Reason.RATE_LIMITED, REQUEST_RATE)
        if kind in ORDERS or kind is AmendOrder:
            refusal = self._order(cmd, kind, account, risk, ticket, context)
            if refusal is not None:
                return refusal
            if kind is not AmendOrder:
                self._count_ladder(cmd.market, tier, risk, ticket)
        elif kind in CANCELS:
            self._count_ladder(cmd.market, tier, risk, ticket)
        elif kind is Withdraw:
            if risk.frozen & WITHDRAWAL:
                return _refused(cmd, Reason.ACCOUNT_FROZEN, FREEZE_RULE)
            asset = self._asset_index.get(cmd.asset)
            if asset is not None and self.frozen_assets.get(asset, 0) & WITHDRAWAL:
                return _refused(cmd, Reason.ASSET_FROZEN, FREEZE_RULE)
        return ticket

    def _order(self, cmd, kind, account, risk: AccountRisk, ticket: Ticket, context) -> list | None:
        ts, market = cmd.ts_ns, cmd.market
        if risk.frozen & TRADING:
            return _refused(cmd, Reason.ACCOUNT_FROZEN, FREEZE_RULE)
        assets = self.market_assets.get(market)
        if assets is not None and self.frozen_assets and \
                (self.frozen_assets.get(assets[0], 0) | self.frozen_assets.get(assets[1], 0)) & TRADING:
            return _refused(cmd, Reason.ASSET_FROZEN, FREEZE_RULE)
        if risk.restrictions:
            level, rule = restriction(risk, market, ts)
            if level >= RESTRICT_OPEN_CLOSE:
                return _refused(cmd, Reason.TRADING_RESTRICTED, rule)
            if level == RESTRICT_OPEN and not (kind is PlacePerpOrder and cmd.reduce_only):
                return _refused(cmd, Reason.OPENING_RESTRICTED, rule)
        if kind is AmendOrder:
            return None
        if account.fee_tier not in self.ord_exempt:
            tat = risk.orders_tat if risk.orders_tat > ts else ts
            if tat - ts <= self.ord_tau:
                ticket.orders = tat + self.ord_interval
            elif self._enforced(self.order_rule, ticket, market, 0, self.order_rule["burst"]):
                return _refused(cmd, Reason.RATE_LIMITED, ORDER_RATE)
        if kind is not PlacePerpOrder:
            if risk.open_orders >= self.open_base:
                cap = self.open_cap(account, context.prices)
                if risk.open_orders >= cap and \
                        self._enforced(self.open_rule, ticket, market, risk.open_orders + 1, cap):
                    return _refused(cmd, Reason.TOO_MANY_OPEN_ORDERS, OPEN_ORDERS)
            index = context.index_ticks
            spec = self.config.markets.get(market)
            if index and cmd.order_type == LIMIT and self.band_bps and spec is not None and cmd.price > 0:
                ticks = cmd.price // spec.tick_minor                  # (a price off the grid: order_terms says)
                if outside_band(ticks, index, self.band_bps) and \
                        self._enforced(self.band_rule, ticket, market, ticks, index):
                    return _refused(cmd, Reason.PRICE_OUTSIDE_BAND, BAND)
        return None

    def _enforced(self, rule, ticket: Ticket, market, value: int, limit: int) -> bool:
        """Does ``rule`` refuse this crossing? Below restrict-open it only records it
        (a ``RiskAction`` on the ticket) and the command goes on."""
        if rule.action >= RESTRICT_OPEN:
            return True
        ticket.notices.append(RiskAction(ticket.ts_ns, ticket.account_id, rule.id, int(rule.action),
                                         market, value, limit, 0))
        return False

    def _count_ladder(self, market, tier, risk: AccountRisk, ticket: Ticket) -> None:
        if tier in self.ladder_exempt or not self.ladder_count:
            return
        ticket.ladder = market

    def withdrawals_frozen(self, account_id: int, asset: int) -> bool:
        """Are the account's or the asset's withdrawals frozen (R-5.2.2.3-freeze)?"""
        risk = self.accounts.get(account_id)
        return bool((risk is not None and risk.frozen & WITHDRAWAL) or self.frozen_assets.get(asset, 0) & WITHDRAWAL)

    def wants_prices(self, cmd) -> bool:
        """Does ``cmd`` need every asset's index price in its context (journaled with it)? A spot
        or margin order from an account at its base open-order count: its cap depends on its
        equity."""
        kind = type(cmd)
        if kind is not PlaceOrder and kind is not PlaceMarginOrder:
            return False
        risk = self.accounts.get(cmd.account_id)
        return risk is not None and risk.open_orders >= self.open_base

    def open_cap(self, account, prices: tuple) -> int:
        """The open-order cap for ``account``'s spot equity at the index ``prices``."""
        step = self.open_rule["step_equity"]
        if not step or not prices:
            return self.open_base
        equity = 0
        for spec in self.config.asset_list:
            price = prices[spec.index]
            if price:
                amount = account.available[spec.index] + account.held[spec.index]
                equity += amount * price // 10 ** spec.scale
        return min(self.open_max, self.open_base + self.open_rule["per_step"] * (equity // step))

    def commit(self, ticket: Ticket) -> list:
        """Count what an accepted command's ticket holds; return the records to emit
        (threshold crossings recorded under none/alert, a ladder step)."""
        risk, ts = ticket.risk, ticket.ts_ns
        if ticket.requests is not None:
            risk.requests_tat = ticket.requests
        if ticket.orders is not None:
            risk.orders_tat = ticket.orders
        notices = ticket.notices
        if ticket.ladder is not None:
            step = self._tick_ladder(risk, ticket.ladder, ts, ticket.account_id)
            if step is not None:
                notices = [*notices, step]
        for notice in notices:
            self._audit_auto(notice)
        return notices

    def _audit_auto(self, n: RiskAction) -> None:
        self.audit.append(n.ts_ns, "auto", f"rule-{ACTION_TEXT[Action(n.action)]}", f"{n.account_id}/{n.market or '*'}",
                          "", f"until {n.until_ns}" if n.until_ns else "", f"value {n.value} limit {n.limit}", n.rule)

    def _tick_ladder(self, risk: AccountRisk, market: str, ts: int, account_id: int) -> RiskAction | None:
        slot = ts // self.slot_ns
        window = risk.window(market)
        if window is None:
            window = risk.new_window(market, slot)
        elif slot > window.slot:
            window.move(slot)                           # (a late stamp counts in the newest slot)
        window.cur += 1
        window.total += 1
        if window.total < self.ladder_count:
            return None
        window.reset()
        level, reached = risk.steps.get(market, (0, 0))
        level = min(level + 1, 3) if level and ts - reached <= self.ladder_window else 1
        risk.steps[market] = (level, ts)
        rule = self.ladder_rule
        action = min(LADDER_STEPS[level - 1], int(rule.action))
        until = ts + self.ladder_restrict if action >= RESTRICT_OPEN else 0
        if until:
            risk.restrictions[(market, rule.id)] = (action, until)
        return RiskAction(ts, account_id, rule.id, action, market, self.ladder_count, level, until)

    # ---- what the fused spot path asks ---------------------------------------------
    def quiet_place(self, account, market: str, limit_ticks: int | None, index_ticks: int | None, ts: int) -> bool:
        """Would a spot order pass every control with nothing to record? If so, count it as
        ``check``, ``commit`` and ``opened`` would and say True; else change nothing and say
        False. Written flat: it runs on every order of the fused path."""
        risk = account.risk or self.link(account)
        if risk.locked or risk.frozen or risk.restrictions or risk.open_orders >= self.open_base or \
                self.frozen_assets:
            return False
        if limit_ticks is not None and index_ticks and self.band_bps and \
                abs(limit_ticks - index_ticks) * 10_000 > index_ticks * self.band_bps:
            return False
        tier = account.fee_tier
        requests = orders = None
        if tier not in self.req_exempt:
            requests = risk.requests_tat if risk.requests_tat > ts else ts
            if requests - ts > self.req_tau:
                return False
        if tier not in self.ord_exempt:
            orders = risk.orders_tat if risk.orders_tat > ts else ts
            if orders - ts > self.ord_tau:
                return False
        window = slot = None
        if self.ladder_count and tier not in self.ladder_exempt:
            slot = ts // self.slot_ns
            window = risk if market == risk.market else risk.ladders.get(market)
            if window is not None and (slot != window.slot or window.total + 1 >= self.ladder_count):
                return False                            # a slot went by, or the ladder's step: the pipeline
        if requests is not None:
            risk.requests_tat = requests + self.req_interval
        if orders is not None:
            risk.orders_tat = orders + self.ord_interval
        if slot is not None:                            # the ladder's tick (it reaches nothing)
            if window is None:
                window = risk.new_window(market, slot)
            window.cur += 1
            window.total += 1
        risk.open_orders += 1
        return True

    def quiet_cancel(self, account, market: str, ts: int) -> bool:
        """``quiet_place`` for a cancel: the request bucket and the ladder (in a window of the
        current slot: the order placed in it opened it)."""
        risk = account.risk or self.link(account)
        if risk.locked:
            return False
        tier = account.fee_tier
        requests = None
        if tier not in self.req_exempt:
            requests = risk.requests_tat if risk.requests_tat > ts else ts
            if requests - ts > self.req_tau:
                return False
        window = None
        if self.ladder_count and tier not in self.ladder_exempt:
            window = risk if market == risk.market else risk.ladders.get(market)
            if window is None or ts // self.slot_ns != window.slot or window.total + 1 >= self.ladder_count:
                return False
        if requests is not None:
            risk.requests_tat = requests + self.req_interval
        if window is not None:                          # the ladder's tick (it reaches nothing)
            window.cur += 1
            window.total += 1
        return True

    # ---- what settlement tells the gate -------------------------------------------
    def refund(self, account_id: int) -> None:
        """An order's first fill gives its unfilled-order token back (a bucket cannot hold more
        than its burst: a theoretical arrival time in the past is a full bucket)."""
        risk = self.accounts.get(account_id)
        if risk is not None and risk.orders_tat:
            risk.orders_tat -= self.ord_interval

    def opened(self, account_id: int) -> None:
        """A spot or margin order was funded: it takes an open-order slot."""
        self.risk(account_id).open_orders += 1

    def closed(self, account_id: int) -> None:
        """A spot or margin order closed: its open-order slot is free."""
        risk = self.accounts.get(account_id)
        if risk is not None and risk.open_orders:
            risk.open_orders -= 1

    # ---- operator commands -----------------------------------------------------------
    def position_limit(self, account_id: int, market: str, base_is_btc: bool, collateral: int,
                       default_minor: int) -> int | None:
        """The position limit (base minor units) of ``account_id`` in a perpetual ``market``
        (``R-4.3.1-position-limit``): None if an operator granted a hedge exemption; on a BTC
        market the market's own limit ``default_minor`` plus ``step_btc`` for each
        ``step_equity`` of ``collateral`` (the perpetual wallet's cash), at most ``max_btc`` (or
        the market's limit, if higher); on another market its own limit."""
        if (account_id, market) in self.hedges:
            return None
        if not base_is_btc:
            return default_minor
        rule = self.rulebook[POSITION]
        step = rule["step_equity"]
        steps = max(0, collateral) // step if step else 0
        return min(max(rule["max_btc"], default_minor), default_minor + rule["step_btc"] * steps)

    def position_crossed(self, ts_ns: int, account_id: int, market: str, exposure: int, limit: int) -> RiskAction | None:
        """An order that would take a position past its limit: None if the rule refuses it,
        else the record (under none or alert the order goes on), audited."""
        rule = self.rulebook[POSITION]
        if rule.action >= RESTRICT_OPEN:
            return None
        notice = RiskAction(ts_ns, account_id, POSITION, int(rule.action), market, exposure, limit, 0)
        self._audit_auto(notice)
        return notice

    @staticmethod
    def market_rule(reason: int) -> str:
        """The rule a market's refusal cites (``exchange.risk.modes``), or ""."""
        return MARKET_RULES.get(reason, "")

    def apply_operator(self, cmd) -> list:
        """Apply an operator command whose operator's roles permit it and which gives a reason
        (``exchange.risk.admin.permit``); return ``[OperatorActed]`` or the refusal."""
        refused = permit(self.rulebook, cmd)
        if refused is not None:
            return _refused(cmd, refused, "")
        events = self._operate(cmd)
        for e in events:
            if type(e) is OperatorActed:
                self.audit.append(e.ts_ns, e.operator, e.command, e.target, e.before, e.after, e.reason, e.rule)
        return events

    def _operate(self, cmd) -> list:
        kind = type(cmd)
        if kind is FreezeAccount:
            if not 0 <= cmd.scope <= 3:
                return _refused(cmd, Reason.INVALID_FREEZE_SCOPE, FREEZE_RULE)
            risk = self.risk(cmd.account_id)
            before, risk.frozen = risk.frozen, cmd.scope
            return [_acted(cmd, "freeze-account", str(cmd.account_id), _scope(before), _scope(cmd.scope),
                           FREEZE_RULE)]
        if kind is LockAccount:
            risk = self.risk(cmd.account_id)
            before, risk.locked = risk.locked, cmd.locked
            return [_acted(cmd, "lock-account", str(cmd.account_id), _lock(before), _lock(cmd.locked), LOCK)]
        if kind is RestrictAccount:
            if cmd.level not in (NONE, RESTRICT_OPEN, RESTRICT_OPEN_CLOSE) or 0 < cmd.until_ns <= cmd.ts_ns:
                return _refused(cmd, Reason.INVALID_RESTRICTION, cmd.rule)
            if cmd.rule not in self.rulebook.rules:
                return _refused(cmd, Reason.UNKNOWN_RULE, "")
            if cmd.market and cmd.market not in self.market_assets:
                return _refused(cmd, Reason.UNKNOWN_MARKET, cmd.rule)
            risk = self.risk(cmd.account_id)
            key = (cmd.market, cmd.rule)
            before = risk.restrictions.get(key, (NONE, 0))
            if cmd.level == NONE:
                risk.restrictions.pop(key, None)
            else:
                risk.restrictions[key] = (cmd.level, cmd.until_ns)
            target = f"{cmd.account_id}/{cmd.market or '*'}"
            return [_acted(cmd, "restrict-account", target, _restriction(before),
                           _restriction((cmd.level, cmd.until_ns)), cmd.rule)]
        if kind is FreezeAsset:
            asset = self._asset_index.get(cmd.asset)
            if asset is None:
                return _refused(cmd, Reason.UNKNOWN_ASSET, FREEZE_RULE)
            if not 0 <= cmd.scope <= 3:
                return _refused(cmd, Reason.INVALID_FREEZE_SCOPE, FREEZE_RULE)
            before = self.frozen_assets.get(asset, 0)
            if cmd.scope:
                self.frozen_assets[asset] = cmd.scope
            else:
                self.frozen_assets.pop(asset, None)
            return [_acted(cmd, "freeze-asset", cmd.asset, _scope(before), _scope(cmd.scope), FREEZE_RULE)]
        if kind is SetRiskRule:
            if cmd.rule not in self.rulebook.rules:
                return _refused(cmd, Reason.UNKNOWN_RULE, "")
            try:
                updated = self.rulebook.changed(cmd.rule, cmd.key, cmd.value)
            except RulebookError:
                return _refused(cmd, Reason.INVALID_RULE_VALUE, cmd.rule)
            before = self.rulebook.text(cmd.rule, cmd.key)
            self.set_rulebook(updated)
            return [_acted(cmd, "set-rule", f"{cmd.rule}.{cmd.key}", before, updated.text(cmd.rule, cmd.key),
                           cmd.rule)]
        if kind is GrantHedgeExemption:
            if cmd.market not in self.market_assets:
                return _refused(cmd, Reason.UNKNOWN_MARKET, POSITION)
            key = (cmd.account_id, cmd.market)
            before = key in self.hedges
            (self.hedges.add if cmd.granted else self.hedges.discard)(key)
            return [_acted(cmd, "hedge-exemption", f"{cmd.account_id}/{cmd.market}", _granted(before),
                           _granted(cmd.granted), POSITION)]
        raise TypeError(f"not an operator command: {kind.__name__}")

    # ---- views and state ---------------------------------------------------------------
    def view(self, account_id: int, ts_ns: int) -> dict:
        """An account's standing: lock, freezes, restrictions in force at ``ts_ns``, counters."""
        risk = self.accounts.get(account_id) or AccountRisk()
        return {"locked": risk.locked, "frozen": _scope(risk.frozen), "open_orders": risk.open_orders,
                "restrictions": [{"market": m, "rule": rule, "action": ACTION_TEXT[Action(level)], "until_ns": until}
                                 for (m, rule), (level, until) in sorted(risk.restrictions.items())
                                 if not until or until > ts_ns],
                "ladders": {m: {"count": w.total, "level": risk.steps.get(m, (0, 0))[0]}
                            for m, w in risk.windows()}}

    def canonical(self) -> tuple:
        return (self.rulebook.digest(), self.audit.canonical(), tuple(sorted(self.hedges)),
                tuple(sorted(self.frozen_assets.items())),
                tuple((a, r.canonical()) for a, r in sorted(self.accounts.items()) if not r.idle()))

    def snapshot(self) -> dict:
        return {"rulebook": [[r.id, int(r.action), [[k, list(v) if type(v) is tuple else v] for k, v in r.params]]
                             for r in self.rulebook.rules.values()],
                "frozen_assets": sorted(self.frozen_assets.items()), "audit": self.audit.snapshot(),
                "hedges": sorted(self.hedges),
                "accounts": [[a, list(r.canonical())] for a, r in sorted(self.accounts.items()) if not r.idle()]}

    def restore(self, data: dict, ledger_accounts: dict) -> None:
        """The state ``snapshot`` gave; each record linked to its account of ``ledger_accounts``
        (the shard's ledger, restored first)."""
        rules = {rid: Rule(rid, Action(action), tuple((k, tuple(v) if type(v) is list else v) for k, v in params))
                 for rid, action, params in data["rulebook"]}
        self.set_rulebook(Rulebook(rules, self.rulebook.operators, self.rulebook.quote_scale))
        self.frozen_assets = {int(a): s for a, s in data["frozen_assets"]}
        self.audit.restore(data["audit"])
        self.hedges = {(a, m) for a, m in data.get("hedges", ())}
        self.accounts = {}
        for account_id, (requests, orders, opens, restrictions, frozen, locked, ladders, steps) in data["accounts"]:
            risk = self.risk(account_id)
            risk.requests_tat, risk.orders_tat, risk.open_orders = requests, orders, opens
            risk.frozen, risk.locked = frozen, locked
            risk.restrictions = {(m, rule): (level, until) for (m, rule), (level, until) in restrictions}
            for m, (total, slot, counts) in ladders:
                risk.new_window(m, slot).window_restore(total, slot, counts)
            risk.steps = {m: (level, reached) for m, (level, reached) in steps}
        for account in ledger_accounts.values():
            account.risk = self.accounts.get(account.account_id)

    def check_links(self, ledger_accounts: dict) -> None:
        """Every account's ``risk`` is its record here, or None (not linked yet)."""
        for account in ledger_accounts.values():
            assert account.risk is None or account.risk is self.accounts.get(account.account_id), \
                f"account {account.account_id}: a stale risk record"


def restriction(risk: AccountRisk, market: str, ts: int) -> tuple[int, str]:
    """The strongest restriction in force for ``market`` at ``ts`` and its rule."""
    level, rule = NONE, ""
    for (where, rule_id), (lvl, until) in risk.restrictions.items():
        if (where == market or where == "") and (not until or until > ts) and lvl > level:
            level, rule = lvl, rule_id
    return level, rule


def outside_band(ticks: int, index: int, band_bps: int) -> bool:
    """Is ``ticks`` further than ``band_bps`` from ``index`` (exact: no division)?"""
    return abs(ticks - index) * 10_000 > index * band_bps


def _gcra(burst: int, per_s: int) -> tuple[int, int]:
    """A token bucket of ``burst`` tokens refilled at ``per_s`` a second as the generic cell rate
    algorithm: (the interval between tokens, the tolerance), in ns. A command at ``ts`` passes
    while ``max(tat, ts) - ts <= tolerance``, and moves ``tat`` on by one interval: one int of
    state per bucket, exact, and equal to the token bucket (``burst`` at once, then one every
    interval). ``per_s`` 0 never refills."""
    interval = NANOS // per_s if per_s else 10 ** 18
    return interval, (burst - 1) * interval


def _refused(cmd, reason: Reason, rule: str) -> list:
    return [OrderRejected(cmd.request_id, cmd.account_id, int(reason), 0, rule)]


def _acted(cmd, what: str, target: str, before: str, after: str, rule: str) -> OperatorActed:
    return OperatorActed(cmd.request_id, cmd.ts_ns, cmd.operator, what, target, before, after, cmd.reason, rule)


def _scope(scope: int) -> str:
    return ("none", "trading", "withdrawal", "trading+withdrawal")[scope]


def _granted(granted: bool) -> str:
    return "exempt" if granted else "limited"


def _lock(locked: bool) -> str:
    return "locked" if locked else "unlocked"


def _restriction(value: tuple) -> str:
    level, until = value
    return "none" if level == NONE else f"{ACTION_TEXT[Action(level)]} until {until or 'lifted'}"

