"""Layering: the domain core ``exchange/`` imports only the standard library and
itself. No Ray, LMDB, Prometheus, asyncio, clocks, randomness, threads, fast
JSON, and nothing from the outer layers (``actors/``, ``ops/``)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exchange"
FORBIDDEN = {"ray", "lmdb", "prometheus_client", "asyncio", "time", "random", "uvloop", "orjson", "threading",
             "actors", "ops"}


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
    assert violations(imported_modules(source, "exchange.market"))


@pytest.mark.parametrize("source", [
    "import json", "from exchange.money import PPM", "from .money import PPM", "from . import money",
    "import hashlib", "from collections import deque", "import enum",
])
def test_import_checker_with_allowed_import_reports_nothing(source):
    assert not violations(imported_modules(source, "exchange.market"))
