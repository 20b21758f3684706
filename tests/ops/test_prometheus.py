"""The metrics, alert rules and dashboards against a real Prometheus.

A real exchange (local Ray, every actor, LMDB journals) runs under load from
the Python client while a real Prometheus (Debian's ``prometheus`` package,
installed by ``ops/prometheus/install.sh`` if missing; the test skips only if
that fails) scrapes the metrics actor every second with the repository's
``alerts.yml`` loaded. Then every PromQL expression of every dashboard and
every alert rule is evaluated through the HTTP API and must return data.
Alert expressions are evaluated with their comparisons turned into ``bool``
comparisons: the quantity behind the alert must exist; whether it fires is
not the question on a healthy exchange.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import ray
import yaml

from actors import bootstrap
from actors.capability import Keyring, Role
from actors.client.exchange_client import ExchangeClient
from ops.grafana import build as dashboard_source

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
DASHBOARD_DIR = ROOT / "ops" / "grafana" / "dashboards"
VARIABLES = {"$__rate_interval": "1m", "$market": "BTC-USDT", "$asset": "USDT"}
COMPARISON = re.compile(r"\s(==|!=|>=|<=|>|<)\s")
LOAD_S = 12.0


def prometheus_binaries() -> tuple[str, str]:
    """Paths of prometheus and promtool, installing Debian's package if needed (or skip)."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        subprocess.run(["sh", str(PROMETHEUS_DIR / "install.sh")], timeout=900, check=False)
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        pytest.skip("prometheus/promtool not installed and ops/prometheus/install.sh could not install them")
    return prometheus, promtool


@pytest.fixture(scope="module")
def binaries():
    return prometheus_binaries()


# ---- static checks --------------------------------------------------------------------

def test_promtool_check_config_with_repository_config_passes(binaries):
    done = subprocess.run([binaries[1], "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_rules_with_repository_alerts_passes(binaries):
    done = subprocess.run([binaries[1], "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_with_committed_json_match_their_source():
    for name in dashboard_source.DASHBOARDS:
        committed = (DASHBOARD_DIR / f"{name}.json").read_text()
        assert committed == dashboard_source.dump(dashboard_source.render(name)), \
            f"{name}.json is stale: run python ops/grafana/build.py"


def test_dashboards_with_every_panel_use_the_provisioned_datasource():
    provisioned = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            if panel["type"] != "text":
                assert panel["datasource"]["uid"] == uid and panel["targets"], (path.name, panel["title"])


def test_alert_expressions_with_bool_comparisons_keep_their_structure():
    assert as_signal("a > 0.5") == "a > bool 0.5"
    assert as_signal("(x > 0) and on (m) (y == 0)") == "(x > bool 0) and on (m) (y == bool 0)"
    assert as_signal('z{state="rejected"}') == 'z{state="rejected"}'


# ---- against a running exchange ---------------------------------------------------------

def as_signal(expr: str) -> str:
    """An alert expression with every comparison as a ``bool`` comparison (returns the
    0/1 signal for every series instead of only the firing ones)."""
    return COMPARISON.sub(lambda m: f" {m.group(1)} bool ", expr)


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for variable in dashboard.get("templating", {}).get("list", []):
            metric = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
            assert metric, variable["definition"]
            found.append((f"{path.stem}: ${variable['name']}", metric.group(1)))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.stem}: {panel['title']}", substitute(target["expr"])))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [(f"alert {rule['alert']}", as_signal(rule["expr"]))
            for group in rules["groups"] for rule in group["rules"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


PERP = "BTC-USDT-PERP"


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """The default venue (its perpetual market included, so every family, panel and alert has data)."""
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    client = ExchangeClient(bootstrap.create_actors(data_dir=tmp_path_factory.mktemp("data"), metrics_port=0,
                                                    keyring=keyring))
    client.keyring = keyring
    ray.get(client.handles.index.start.remote())
    yield client
    bootstrap.destroy_actors(client.handles)
    ray.shutdown()


@pytest.fixture(scope="module")
def prometheus(binaries, exchange, tmp_path_factory):
    """A real Prometheus on a free loopback port scraping the metrics actor every second."""
    host, port = ray.get(exchange.handles.metrics.address.remote())
    work = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"{host}:{port}"]}]
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = f"127.0.0.1:{free_port()}"
    log = open(work / "prometheus.log", "w")
    process = subprocess.Popen([binaries[0], f"--config.file={work / 'prometheus.yml'}",
                                f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address={web}",
                                "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{web}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"prometheus did not start: {(work / 'prometheus.log').read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def drive_load(client: ExchangeClient, seconds: float) -> None:
    """Makers and takers on both markets and the perpetual, cancels, an amend, rejections,
    withdrawals, an insurance-fund top-up."""
    makers, takers = list(range(9001, 9005)), list(range(9101, 9105))
    for account in makers + takers:
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "10000000"), ("BTC", "100"), ("ETH", "1000")):
            assert client.deposit(account, asset, amount).ok
        assert client.transfer_perp(account, "USDT", "1000000").ok
    ray.get(client.handles.liquidator.top_up_perp_fund.remote(client.keyring.capability(Role.OPERATOR), PERP,
                                                              10**10))
    deadline = time.monotonic() + 30
    while not client.perp_prices(PERP)["mark"] and time.monotonic() < deadline:
        time.sleep(0.2)                 # the index actor prices the perpetual market
    prices = {"BTC-USDT": 50_000, "ETH-USDT": 3_000}
    deadline, step = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        step += 1
        orders = []
        for market, mid in prices.items():
            qty = "0.01" if market == "BTC-USDT" else "0.1"
            for i, maker in enumerate(makers):
                orders.append(client.order(maker, market, "sell", qty, price=f"{mid + 1 + i}.00"))
                orders.append(client.order(maker, market, "buy", qty, price=f"{mid - 1 - i}.00"))
            for taker in takers:
                side = "buy" if (taker + step) % 2 else "sell"
                price = f"{mid + 10}.00" if side == "buy" else f"{mid - 10}.00"
                orders.append(client.order(taker, market, side, qty, price=price, tif="ioc"))
        orders.append(client.order(takers[0], "BTC-USDT", "buy", "1000", price="50000.00"))   # above max size
        results = client.place_orders(orders)
        booked = [(o, r) for o, r in zip(orders, results) if r.status == "open"]
        for order, result in booked[:4]:
            client.cancel_order(order.account_id, order.market, result.order_id)
        if booked[4:5]:
            order, result = booked[4]
            client.amend_order(order.account_id, order.market, result.order_id, quantity=order.quantity // 2)
        client.withdraw(takers[1], "USDT", "1")
        client.withdraw(takers[1], "USDT", "100000000000")                                  # rejected
        mark = client.perp_prices(PERP)["mark"] // 10          # ticks of 0.1 -> whole USDT
        client.perp_order(makers[step % 4], PERP, "sell", "0.01", price=f"{mark}.0")
        client.perp_order(takers[step % 4], PERP, "buy", "0.01", price=f"{mark}.0")
        time.sleep(0.05)
    otc_desk(client)


def otc_desk(client: ExchangeClient) -> None:
    """The OTC desk's account funded (its inventory), a quote accepted, one refused."""
    desk = int(client.config.sections["otc"]["desk_account"])
    assert client.open_account(desk).ok and client.deposit(desk, "BTC", "100").ok
    deadline = time.monotonic() + 30
    while not client.otc_view()["inventory"].get("BTC") and time.monotonic() < deadline:
        time.sleep(0.2)
    answer = {"ok": False}
    while not answer["ok"] and time.monotonic() < deadline:
        answer = client.otc_inquire(9101, "BTC-USDT", "buy", quantity="2")
    assert client.otc_accept(9101, answer["quote"]["id"])["ok"]
    assert client.otc_inquire(9101, "BTC-USDT", "buy", quantity="0.0001")["reason"] == "OTC_BELOW_MINIMUM"


@pytest.fixture(scope="module")
def loaded(exchange, prometheus):
    """The exchange after LOAD_S seconds of traffic, scraped a few times since."""
    drive_load(exchange, LOAD_S)
    deadline = time.monotonic() + 30
    while api(prometheus, "/api/v1/query", query="count(exchange_order_latency_seconds_count)")["data"]["result"] \
            == [] and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)                       # the last pushes, a few more scrapes and rule evaluations
    return prometheus


def test_every_dashboard_and_alert_expression_with_a_loaded_exchange_returns_data(loaded):
    prometheus = loaded
    targets = api(prometheus, "/api/v1/targets")["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"], targets
    missing = []
    expressions = dashboard_expressions() + alert_expressions()
    for where, expr in expressions:
        answer = api(prometheus, "/api/v1/query", query=expr)
        if answer["status"] != "success" or not answer["data"]["result"]:
            missing.append(f"{where}: {expr} -> {answer.get('error') or 'no data'}")
    assert not missing, "\n".join(missing)
    assert len(expressions) > 60
    rules = [r for g in api(prometheus, "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    assert len(rules) == len(alert_expressions())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_scraped_counters_with_the_load_driven_match_what_the_exchange_did(exchange, loaded):
    def value(query: str) -> float:
        result = api(loaded, "/api/v1/query", query=query)["data"]["result"]
        assert result, query
        return float(result[0]["value"][1])

    trades = sum(s["trades"] for s in exchange.market_stats())
    assert value("sum(exchange_trades_total)") == trades > 0
    assert value('sum(exchange_rejections_total{reason="above_max_size"})') > 0
    assert value('sum(exchange_withdrawals_total{state="rejected"})') > 0
    assert value('sum(exchange_withdrawals_total{state="accepted"})') > 0
    assert value("sum(exchange_cancels_total)") > 0
    assert value("min(exchange_actor_up)") == 1
    assert value("sum(exchange_order_latency_seconds_count)") > 1000
    assert value('count(sum by (market, mode) (exchange_margin_level_bucket{le="+Inf"}))') \
        == 1 + len(exchange.config.markets)
    if getattr(exchange.handles, "lending", None) is not None:   # the pool actor's own figures, no placeholders
        assert value('count(exchange_lending_borrow_rate{actor="lending"})') > 0
        assert api(loaded, "/api/v1/query", query='exchange_lending_borrow_rate{actor=""}')["data"]["result"] == []
