"""The OpenAPI document (``gateway/openapi.py``) describes exactly the server's routes: every
HTTP endpoint the app serves is in it with its method, and it names none the app lacks;
signed endpoints carry the key and the signing parameters."""
from __future__ import annotations

from types import SimpleNamespace

from exchange.config import load_config
from gateway.keys import KeyStore
from gateway.openapi import STREAMS, document
from gateway.server import Gateway


def test_the_document_and_the_server_name_the_same_endpoints():
    app = Gateway(SimpleNamespace(config=load_config()), KeyStore()).app()
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.method not in ("HEAD", "*")}
    doc = document()
    described = {(method, path) for path, methods in doc["paths"].items() for method in methods}
    openapi = {("get", "/api/v3/openapi.json")}
    websockets = {(m, p) for m, p in served if p in STREAMS}
    assert described | openapi | websockets == served
    assert doc["openapi"].startswith("3.") and "X-MBX-APIKEY" in str(doc["components"]["securitySchemes"])
    order = doc["paths"]["/api/v3/order"]["post"]
    assert order["x-security-type"] == "TRADE" and order["security"] == [{"apiKey": []}]
    assert {p["name"] for p in order["parameters"]} >= {"symbol", "side", "type", "quantity", "timestamp", "signature"}
    assert "security" not in doc["paths"]["/api/v3/depth"]["get"]
