"""The Python client: ``ExchangeClient`` (client commands), ``ScopedClient`` (a
fixed set of accounts), ``OperatorClient`` (the deployment's keyring), typed
results. ``from actors.client.exchange_client import ExchangeClient`` is the public entry point."""
from actors.client.exchange_client import ExchangeClient, ScopedClient
from actors.client.operator import OperatorClient

__all__ = ["ExchangeClient", "ScopedClient", "OperatorClient"]
