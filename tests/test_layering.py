"""Layering: the domain core ``exchange/`` imports only the standard library and
itself. No Ray, LMDB, Prometheus, asyncio, clocks, randomness, threads, fast
JSON, and nothing from the outer layers (``actors/``, ``ops/``, ``gateway/``). Inside it,
each concept folder imports only the folders below it (``ALLOWED``): the core
kernel nothing, products (``margin/``, later ``perp/``, ``otc/``, ``risk/``)
core, messages, matching and accounts, never each other; ``accounts`` imports no
product: products plug into the shard (``exchange/accounts/product.py``) and the
top-level ``exchange/venue.py`` composes them."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exchange"
FORBIDDEN = {"ray", "lmdb", "prometheus_client", "asyncio", "time", "random", "uvloop", "orjson", "threading",
             "actors", "ops", "gateway"}


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of every module ``source`` (the module ``module``) imports,
    including relative imports and ``__import__``/``importlib.import_module`` calls
    with a constant name."""
    package = module.rsplit(".", 1)[0] if "." in module else module
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[:len(parts) - (node.level - 1)] if node.level - 1 < len(parts) else []
                prefix = ".".join(base + ([node.module] if node.module else []))
                names.add(prefix or "<beyond the top level>")
            else:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


# folder -> the exchange folders (and top-level modules) it may import; "config" and
# "engine"/"snapshot" are the top-level composition modules.
ALLOWED = {
    "core": {"core"},
    "messages": {"core", "messages"},
    "pricing": {"core", "pricing"},
    "matching": {"core", "messages", "matching", "config"},
    # products plug into the shard (exchange/accounts/product.py), composed in exchange/venue.py
    "accounts": {"core", "messages", "matching", "accounts", "config"},
    "margin": {"core", "messages", "matching", "accounts", "margin", "config"},
}
PRODUCTS = {"margin", "perp", "otc", "risk"}


def folder_violations(module: str, names: set[str]) -> set[str]:
    """Imports of ``module`` that reach a folder its own folder may not import."""
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in ALLOWED:
        return set()
    allowed = ALLOWED[parts[1]]
    return {n for n in names if n.startswith("exchange.") and len(n.split(".")) > 1
            and n.split(".")[1] not in allowed}


def violations(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in FORBIDDEN or n == "<beyond the top level>"}


def module_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] + ["__init__"]
    return ".".join(parts)


def test_exchange_package_with_its_modules_is_found():
    names = {p.name for p in module_files()}
    assert {"money.py", "config.py", "order_book.py", "market.py", "shard.py", "engine.py"} <= names


@pytest.mark.parametrize("path", module_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_exchange_folder_with_its_imports_reaches_only_the_folders_below_it(path):
    module = module_name(path)
    bad = folder_violations(module, imported_modules(path.read_text(), module))
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_products_never_import_each_other():
    for product in PRODUCTS & set(ALLOWED):
        assert not (ALLOWED[product] - {product}) & PRODUCTS, product


@pytest.mark.parametrize("module,source", [
    ("exchange.core.money", "from exchange.matching.orders import Side"),
    ("exchange.matching.market", "from exchange.accounts.ledger import Ledger"),
    ("exchange.messages.codec", "from exchange.margin.desk import MarginDesk"),
    ("exchange.accounts.shard", "from exchange.margin.desk import MarginDesk"),
    ("exchange.accounts.shard", "from exchange.margin import liquidation"),
])
def test_folder_checker_with_an_upward_import_reports_it(module, source):
    assert folder_violations(module, imported_modules(source, module))


@pytest.mark.parametrize("path", module_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_exchange_module_with_its_imports_uses_only_stdlib_and_itself(path):
    bad = violations(imported_modules(path.read_text(), module_name(path)))
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("source", [
    "import time",
    "import asyncio.events",
    "from random import randint",
    "import ray as r",
    "from actors.shard_actor import AccountShardActor",
    "from ops import cli",
    "import orjson, json",
    "def f():\n    import threading",
    "import importlib\nimportlib.import_module('lmdb')",
    "__import__('prometheus_client')",
    "from ...ops import cli",
    "try:\n    import uvloop\nexcept ImportError:\n    pass",
])
def test_import_checker_with_forbidden_import_reports_it(source):
    assert violations(imported_modules(source, "exchange.matching.market"))


@pytest.mark.parametrize("source", [
    "import json", "from exchange.core.money import PPM", "from .money import PPM", "from . import money",
    "import hashlib", "from collections import deque", "import enum",
])
def test_import_checker_with_allowed_import_reports_nothing(source):
    assert not violations(imported_modules(source, "exchange.matching.market"))
