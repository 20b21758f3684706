"""The public transparency section (``gateway/transparency.py``) over real HTTP, and its page
in Debian's headless Chromium driven by Selenium: what the page shows is what the API
answers.

Two venues: the package's shared one (spot trades made here by accounts 33_001 and
33_002, the perpetual fund's seed entry, the margin fund) and one of this module's own in
a process of its own (``tests/gateway/adl_venue.py``): the shared venue has no operator
keyring, and an ADL needs an index price only an operator can set. That one has an ADL,
a perpetual and a spot-margin liquidation, a top-up and fee shares in the fund's chain.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import ray
import requests

from exchange.margin.liquidator import account_hash
from exchange.perp import adl
from exchange.perp.rules import rules_hash
from tests.gateway.conftest import Trader

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1500,1000"]
PERP = "BTC-USDT-PERP"
PUBLIC = "/api/v1/public"


def get(url: str, path: str, **params):
    response = requests.get(f"{url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---- the venues ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spot_activity(venue):
    """Accounts 33_001 and 33_002 trade twice on BTCUSDT, and leave a bid and an ask resting
    just outside the book's best prices (cancelled at the end); the buyer's takes may fill
    against other tests' asks first, as any taker's would."""
    client, keys, served = venue
    traders = []
    for account in (33_001, 33_002):
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "100000"), ("BTC", "10")):
            assert client.deposit(account, asset, amount).ok
        traders.append(Trader(served.url, *keys.create(account, ["read", "trade"])))
    buyer, seller = traders
    ticker = get(served.url, "/api/v3/ticker/bookTicker", symbol="BTCUSDT")
    bid, ask = Decimal(ticker["bidPrice"]), Decimal(ticker["askPrice"])
    price = ask + 10 if ask else bid + 10 if bid else Decimal("50000")
    under = bid - 10 if bid else price - 20
    resting = []
    for trader, side, at, quantity in ((seller, "SELL", price, "0.05"), (buyer, "BUY", under, "0.02")):
        placed = trader.signed("POST", "/api/v3/order", symbol="BTCUSDT", side=side, type="LIMIT_MAKER",
                               quantity=quantity, price=f"{at:.2f}")
        assert placed.status_code == 200, placed.text
        resting.append((trader, placed.json()["orderId"]))
    for quantity in ("0.01", "0.015"):
        taken = buyer.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                             timeInForce="IOC", quantity=quantity, price=f"{price:.2f}")
        assert taken.json()["status"] == "FILLED", taken.text
    yield served.url
    for trader, order in resting:
        trader.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order)


@pytest.fixture(scope="module")
def adl_venue():
    """The module's own venue with an ADL (``tests/gateway/adl_venue.py``): its URL and accounts."""
    process = subprocess.Popen([sys.executable, "-m", "tests.gateway.adl_venue"], cwd=ROOT, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(300)
    try:
        assert line and line[0], f"the ADL venue did not start (exit code {process.poll()})"
        yield json.loads(line[0])
    finally:
        process.stdin.close()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


# ---- the browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium and its driver, installed by ``ops/browser/install.sh`` if missing."""
    pytest.importorskip("selenium")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        subprocess.run(["sh", str(ROOT / "ops/browser/install.sh")], timeout=900, check=False)
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromium-driver could not be installed here")


@contextmanager
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def load(driver, url: str) -> None:
    """Open the page from ``/`` (the redirect) and wait until everything has been read once."""
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(f"{url}/")
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return document.body.dataset.loaded === '1' && document.body.dataset.market === 'BTCUSDT'"))
    assert driver.current_url == f"{url}/transparency"


def texts(driver, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]


def text(driver, selector: str) -> str:
    found = texts(driver, selector)
    assert len(found) == 1, (selector, found)
    return found[0]


def screenshot(driver, path: Path) -> Path:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1500, height + 140)       # the window's frame takes some
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    return path


def check_fund_chain_and_rules(driver, url: str) -> None:
    """The funds, the chain (length, head, both checks) and the rule hashes the page shows
    are the API's."""
    fund = get(url, f"{PUBLIC}/insuranceFund")
    assert texts(driver, '#perp-fund-body td[data-field="balance"]') == [f["marginBalance"] for f in fund["perpetual"]]
    assert texts(driver, '#margin-fund-body td[data-field="balance"]') == [f["marginBalance"] for f in fund["margin"]]
    count = fund["chain"]["entries"]
    entries = f"{count} {'entry' if count == 1 else 'entries'}"
    assert text(driver, "#chain-entries") == entries and text(driver, "#chain-browser") == f"✓ {entries}"
    assert text(driver, "#chain-head") == fund["chain"]["head"]
    assert text(driver, "#chain-server") == "✓ verified"
    history = get(url, f"{PUBLIC}/insuranceFund/history", limit=1000)
    assert texts(driver, '#chain-body td[data-field="id"]') == [str(e["id"]) for e in reversed(history)]
    assert texts(driver, '#chain-body td[data-field="amount"]') == [e["amount"] for e in reversed(history)]
    rules = get(url, f"{PUBLIC}/rules")
    for key in ("config", "perpetualRules", "rulebook"):
        assert text(driver, f'#rules-body td[data-field="{key}-hash"]') == rules[key]["hash"]
        assert text(driver, f'#rules-body td[data-field="{key}-check"]') == "✓ recomputed here"


def check_market(driver, url: str) -> None:
    """The book's best levels and the last trades are the API's (the page refreshes them). The
    shared venue's book may move while the page and the API are read (the OTC desk hedges on
    it): a read the market moved during, or the page redrew during, is taken again, up to
    five times."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    for attempt in range(5):
        book = get(url, "/api/v3/depth", symbol="BTCUSDT", limit=10)
        WebDriverWait(driver, 20).until(lambda d: d.execute_script(
            "return Number(document.getElementById('book-body').dataset.updateId)") >= book["lastUpdateId"])
        try:
            shown = {field: texts(driver, f'#book-body td[data-field="{field}"]') for field in ("bid", "ask")}
            first_bid_qty = text(driver, '#book-body tr:first-child td[data-field="bid-qty"]')
            trades = list(reversed(get(url, "/api/v3/trades", symbol="BTCUSDT", limit=20)))
            listed = {field: texts(driver, f'#trades-body td[data-field="{field}"]') for field in ("id", "price", "qty")}
        except StaleElementReferenceException:          # the page redrew its tables while they were read
            if attempt < 4:
                continue
            raise
        still = get(url, "/api/v3/depth", symbol="BTCUSDT", limit=10)["lastUpdateId"] == book["lastUpdateId"]
        shown_id = driver.execute_script("return document.getElementById('book-body').dataset.updateId")
        if attempt < 4 and not (still and shown_id == str(book["lastUpdateId"])):
            continue                                   # the market moved while it was read: read it again
        assert shown["bid"][:len(book["bids"])] == [p for p, _ in book["bids"]]
        assert shown["ask"][:len(book["asks"])] == [p for p, _ in book["asks"]]
        assert first_bid_qty == book["bids"][0][1]
        assert listed["id"] == [str(t["id"]) for t in trades]
        assert listed["price"] == [t["price"] for t in trades]
        assert listed["qty"] == [t["qty"] for t in trades]
        return


# ---- the JSON endpoints ------------------------------------------------------------------------
def test_the_funds_and_their_chain_are_the_exchange_s_and_verify_from_the_entries_alone(venue):
    client, _, served = venue
    fund = get(served.url, f"{PUBLIC}/insuranceFund")
    perp = client.perp_fund()
    assert [(f["market"], f["marginBalance"]) for f in fund["perpetual"]] == \
        [(PERP, f"{Decimal(perp['balances'][PERP]) / 10**6:.6f}")]
    assert (fund["chain"]["entries"], fund["chain"]["head"], fund["chain"]["verified"]) == \
        (perp["entries"], perp["head"], True)
    assert fund["chain"]["rulesHash"] == rules_hash(client.config)
    margin = client.insurance_fund()
    assert {f["asset"]: f["marginBalance"] for f in fund["margin"]} == \
        {a: f"{Decimal(v) / 10**client.config.assets[a].scale:.{client.config.assets[a].scale}f}"
         for a, v in margin["balance"].items()}
    binance = get(served.url, "/fapi/v1/insuranceBalance", symbol="BTCUSDTPERP")
    assert binance["symbols"] == ["BTCUSDTPERP"] and binance["assets"][0]["asset"] == "USDT"
    assert binance["assets"][0]["marginBalance"] == fund["perpetual"][0]["marginBalance"]
    history = get(served.url, f"{PUBLIC}/insuranceFund/history")
    entries = client.perp_fund_entries()
    assert [(e["id"], e["prevHash"], e["hash"]) for e in history] == [(e[0], e[6], e[7]) for e in entries]
    previous = "0" * 64
    for entry in history:                                  # what a reader recomputes
        assert entry["prevHash"] == previous and sha256(entry["prevHash"] + entry["body"]) == entry["hash"]
        previous = entry["hash"]
    assert previous == fund["chain"]["head"]
    assert get(served.url, f"{PUBLIC}/insuranceFund/history", fromId=2) == history[1:]


def test_the_rules_hashes_are_the_domain_s_and_each_is_the_sha256_of_its_text(venue):
    client, _, served = venue
    rules = get(served.url, f"{PUBLIC}/rules")
    assert rules["perpetualRules"]["hash"] == rules_hash(client.config) == sha256(rules["perpetualRules"]["text"])
    live = ray.get(client.handles.shards[0].rulebook.remote())
    assert rules["rulebook"]["hash"] == live["digest"] == sha256(rules["rulebook"]["text"])
    assert rules["config"]["hash"] == sha256(rules["config"]["text"])
    published = json.loads(rules["config"]["text"])
    assert set(published) >= {"assets", "markets", "fee_tiers", "perp"} and "otc" not in published
    assert "pseudonym_key" not in rules["config"]["text"]


def test_bad_input_gets_a_specific_code_and_changes_nothing(venue):
    client, _, served = venue
    before = client.perp_fund(), client.insurance_fund()
    for path, params, status, code in [
            (f"{PUBLIC}/insuranceFund/history", {"fromId": "0"}, 400, -1100),
            (f"{PUBLIC}/insuranceFund/history", {"fromId": "abc"}, 400, -1100),
            (f"{PUBLIC}/insuranceFund/history", {"limit": "1001"}, 400, -1100),
            (f"{PUBLIC}/insuranceFund/history", "limit=5&limit=6", 400, -1101),
            (f"{PUBLIC}/adl", {"symbol": "BTCUSDT"}, 400, -1121),
            (f"{PUBLIC}/adl", {"limit": "0"}, 400, -1100),
            (f"{PUBLIC}/liquidations", {"limit": "-1"}, 400, -1100),
            ("/fapi/v1/insuranceBalance", {"symbol": "NOPE"}, 400, -1121),
            ("/static/server.py", {}, 404, -1000),
            ("/static/..%2Fserver.py", {}, 404, -1000)]:
        answer = requests.get(f"{served.url}{path}", params=params, timeout=30)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (path, params, answer.text)
    assert (client.perp_fund(), client.insurance_fund()) == before


def test_the_page_and_its_files_are_served_with_a_strict_content_policy(venue):
    _, _, served = venue
    root = requests.get(f"{served.url}/", allow_redirects=False, timeout=30)
    assert (root.status_code, root.headers["Location"]) == (302, "/transparency")
    page = requests.get(f"{served.url}/transparency", timeout=30)
    assert page.headers["Content-Type"].startswith("text/html") and "default-src 'self'" in \
        page.headers["Content-Security-Policy"]
    assert '<script src="/static/transparency.js"' in page.text and "http" not in page.text.replace(
        'href="/api/v3/openapi.json"', "")                # nothing from elsewhere
    for name, kind in (("transparency.js", "application/javascript"), ("transparency.css", "text/css")):
        answer = requests.get(f"{served.url}/static/{name}", timeout=30)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(kind)


def test_adl_events_and_liquidations_carry_their_inputs_under_pseudonyms_only(adl_venue):
    url, accounts = adl_venue["url"], adl_venue["accounts"]
    key = b"exchange-demo-key"                   # the venue's config sets no [perp_fund] pseudonym_key
    alice, bob = adl.pseudonym(key, accounts["alice"]), adl.pseudonym(key, accounts["bob"])
    events = get(url, f"{PUBLIC}/adl")
    assert len(events) == 1
    event = events[0]
    assert (event["market"], event["account"], event["quantity"], event["bankruptcyPrice"], event["markPrice"]) == \
        (PERP, alice, "1.00000000", "36000.000000", "35000.000000")
    assert [r["account"] for r in event["ranking"]] == [bob]
    assert event["reduced"] == [{"account": bob, "quantity": "1.00000000"}] and event["left"] == "0.00000000"
    assert event["fundBalance"] == "1000000.000000" and event["trigger"]
    assert get(url, f"{PUBLIC}/adl", symbol="BTCUSDTPERP") == events
    liquidations = get(url, f"{PUBLIC}/liquidations")
    perp = liquidations["perpetual"]
    assert (perp["finished"], perp["open"], [r["account"] for r in perp["records"]]) == (1, 0, [alice])
    margin = liquidations["margin"][0]
    trader_hash = account_hash(accounts["trader"])
    assert margin["account"] == hmac.new(key, trader_hash.encode(), hashlib.sha256).hexdigest()[:16] != trader_hash
    assert margin["fills"] == [{"symbol": "BTCUSDT", "side": "SELL", "price": "49000.000000", "qty": "0.20000000"}]
    published = json.dumps([events, liquidations, get(url, f"{PUBLIC}/insuranceFund/history")])
    assert not any(str(account) in published or account_hash(account) in published for account in accounts.values())
    kinds = [e["type"] for e in get(url, f"{PUBLIC}/insuranceFund/history")]
    assert kinds[:4] == ["TOP_UP", "ADL_START", "ADL_END", "TOP_UP"] and "FEE_SHARE" in kinds


# ---- the page in Chromium ------------------------------------------------------------------------
def test_the_page_shows_the_funds_rules_book_and_trades_the_api_answers(chromium, spot_activity, tmp_path):
    url = spot_activity
    with browser() as driver:
        load(driver, url)
        check_fund_chain_and_rules(driver, url)
        check_market(driver, url)
        assert texts(driver, "#adl-body p.empty") == ["No auto-deleveraging so far."] or \
            texts(driver, "#adl-body article h3")             # the shared venue has none, or another test's
        print("screenshot:", screenshot(driver, tmp_path / "transparency-shared.png"))


def test_the_page_shows_every_adl_event_with_its_inputs_and_the_liquidations(chromium, adl_venue, tmp_path):
    url = adl_venue["url"]
    with browser() as driver:
        load(driver, url)
        check_fund_chain_and_rules(driver, url)
        check_market(driver, url)
        events = get(url, f"{PUBLIC}/adl")
        shown = texts(driver, "#adl-body article h3")
        assert len(shown) == len(events) and shown[0].startswith(f"Plan {events[-1]['id']} · {PERP}")
        for field, value in (("account", "account"), ("quantity", "quantity"),
                             ("bankruptcy-price", "bankruptcyPrice"), ("mark-price", "markPrice"),
                             ("fund-balance", "fundBalance"), ("left", "left"), ("trigger", "trigger")):
            assert texts(driver, f'#adl-body td[data-field="{field}"]') == [e[value] for e in reversed(events)]
        assert texts(driver, '#adl-body td[data-field="ranked"]') == \
            [r["account"] for e in reversed(events) for r in e["ranking"]]
        assert texts(driver, '#adl-body td[data-field="score"]') == \
            [r["score"] for e in reversed(events) for r in e["ranking"]]
        assert texts(driver, '#adl-body td[data-field="reduced-quantity"]') == \
            [r["quantity"] for e in reversed(events) for r in e["reduced"]]
        liquidations = get(url, f"{PUBLIC}/liquidations")
        assert texts(driver, '#perp-liq-body td[data-field="account"]') == \
            [r["account"] for r in reversed(liquidations["perpetual"]["records"])]
        assert texts(driver, '#margin-liq-body td[data-field="account"]') == \
            [r["account"] for r in reversed(liquidations["margin"])]
        shot = screenshot(driver, tmp_path / "transparency.png")
        print("screenshot:", shot)               # (docs/img/transparency.png is a copy of one, kept by hand)
