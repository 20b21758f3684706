"""The operator's client: what the process that bootstrapped the deployment may do.

    from actors.client.operator import OperatorClient
    operator = OperatorClient.start(data_dir="./data")   # embedded exchange; keeps the keyring
    client = operator.client                             # an ExchangeClient: client commands only
    operator.set_index_component("BTC", "feed-a", 50_000_000_000, 1, time.time_ns())
    operator.accrue_interest(ts_ns)                      # the pools' hour at a chosen time
    desk = operator.scoped([101, 102])                   # a ScopedClient for two accounts
    risk = operator.risk_desk("demo-risk")               # the risk rulebook's operator actions

It holds the deployment's ``Keyring`` (``actors/capability.py``) and signs the
operator's calls with the operator capability; an ``ExchangeClient`` never
sees the keyring, so code handed only a client (or a scope) cannot reach these
powers through it. ``docs/SECURITY.md`` says what that does and does not
protect against.
"""
from __future__ import annotations

import ray

from actors import bootstrap
from actors.capability import Keyring, Role
from actors.client.exchange_client import ExchangeClient, ScopedClient
from actors.client.risk import RiskDesk


class OperatorClient:
    def __init__(self, handles: bootstrap.Handles, keyring: Keyring, owns_cluster: bool = False,
                 owns_actors: bool = True):
        self.handles = handles
        self.config = handles.config
        self._keyring = keyring
        self._capability = keyring.capability(Role.OPERATOR)
        self.client = ExchangeClient(handles, owns_cluster=owns_cluster, owns_actors=owns_actors)

    @property
    def keyring(self) -> Keyring:
        """The deployment's keyring (for the bootstrap process's own services and tests)."""
        return self._keyring

    def __repr__(self) -> str:
        return f"OperatorClient(shards={len(self.handles.shards)}, markets={sorted(self.handles.markets)})"

    @classmethod
    def start(cls, config_path: str | None = None, num_cpus: int = 2, detached: bool = False,
              data_dir: str | None = None, keyring: Keyring | None = None) -> "OperatorClient":
        """Start an embedded exchange as ``ExchangeClient.start`` does, minting (or using)
        the keyring its actors are created with, and keep it."""
        owns = not ray.is_initialized()
        bootstrap.init_ray(num_cpus=num_cpus)
        keyring = keyring or Keyring.mint()
        handles = bootstrap.create_actors(config_path, detached=detached, data_dir=data_dir, keyring=keyring)
        return cls(handles, keyring, owns_cluster=owns)

    def list_market(self, config_path: str, name: str, data_dir: str | None, detached: bool = False) -> None:
        """List the spot market ``name``, added to the exchange's config file, on the running
        exchange (``actors/listing.py``: checked, started, its peers restarted one at a time).
        ``ValueError`` says why a change is refused."""
        from actors.listing import list_market
        self.handles = list_market(self.handles, self._keyring, config_path, name, data_dir, detached)
        self.config = self.handles.config
        self.client.handles, self.client.config = self.handles, self.handles.config

    def add_shards(self, config_path: str, data_dir: str | None, detached: bool = False) -> dict:
        """Add the shards of the exchange's config file (more ``[exchange] shards``, the count
        replaced in ``earlier_shards``) to the running exchange without moving an account
        (``actors/growth.py``: checked, started, every other actor restarted in turn). Returns
        what was done, with any account found on a shard that no longer owns it (``strays``).
        ``ValueError`` says why a change is refused."""
        from actors.growth import add_shards
        self.handles, done = add_shards(self.handles, self._keyring, config_path, data_dir, detached)
        self.config = self.handles.config
        self.client.handles, self.client.config = self.handles, self.handles.config
        return done

    def shutdown(self) -> None:
        """Stop the actors (and Ray, if this process started it), as ``ExchangeClient.shutdown``."""
        self.client.shutdown()

    # ---- operator actions ------------------------------------------------------------
    def risk_desk(self, operator: str) -> RiskDesk:
        """The risk rulebook's operator actions as ``operator`` (one of ``config/risk.toml``'s
        ``[operators]``; the domain checks their roles): freezes, locks, market modes,
        thresholds, the audit trail (``actors/client/risk.py``)."""
        return RiskDesk(self.handles, self._capability, operator)

    def accrue_interest(self, ts_ns: int | None = None) -> dict:
        """Turn the pools' hour to ``ts_ns`` (default now; a clock does it in ``exchange up``);
        return the pools' view."""
        return ray.get(self.handles.lending.accrue.remote(self._capability, ts_ns))

    def set_index_component(self, asset: str, source: str, price: int, weight: int, ts_ns: int) -> int:
        """One component quote (quote minor units per whole ``asset``) from a feed; the index
        publishes to every shard and the liquidator before this returns the new index price."""
        return ray.get(self.handles.index.set_component.remote(self._capability, asset, source, price, weight,
                                                              ts_ns))

    def step_index(self, now_ns: int) -> dict[str, int]:
        """Advance the index actor's simulated feed once at ``now_ns``; return the index prices."""
        return ray.get(self.handles.index.step.remote(self._capability, now_ns))

    def deposit_insurance_fund(self, asset: str, amount: int) -> dict:
        """Add capital (minor units) to the insurance fund, a recorded deposit; return the fund."""
        return ray.get(self.handles.liquidator.deposit_fund.remote(self._capability, asset, amount))

    def top_up_perp_fund(self, market: str, amount: int) -> dict:
        """Add ``amount`` (quote minor units) to a perpetual market's insurance fund: a ``TOP_UP``
        entry in its public chain; returns the funds' view."""
        return ray.get(self.handles.liquidator.top_up_perp_fund.remote(self._capability, market, amount))

    def sweep_perp_fees(self) -> dict:
        """Sweep each perpetual market's fee share from every shard into its insurance fund now
        (``FEE_SHARE`` entries; the liquidator also does every ``[perp_fund] fee_sweep_s``);
        returns the funds' view."""
        return ray.get(self.handles.liquidator.sweep_perp_fees.remote(self._capability))

    def link_perp_accounts(self, a: int, b: int) -> bool:
        """Mark two accounts as one owner: perpetual ADL never closes one against the other."""
        return ray.get(self.handles.liquidator.link_perp_accounts.remote(self._capability, a, b))

    def arm_crash(self, actor_handle, point: str | None) -> bool:
        """Test hook: make a journaled actor exit abruptly the next time it reaches ``point``."""
        return ray.get(actor_handle.arm_crash.remote(self._capability, point))

    def snapshot_now(self, actor_handle) -> int:
        """Make a journaled actor write a snapshot now; return the journal position it covers."""
        return ray.get(actor_handle.snapshot_now.remote(self._capability))

    def scoped(self, accounts) -> ScopedClient:
        """A client that may act for ``accounts`` only (hand it to a less trusted service)."""
        return ScopedClient(self.handles, self._keyring.scope(accounts))
