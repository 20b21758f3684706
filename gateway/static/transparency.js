// The transparency page: reads the gateway's public API and shows it. Numbers are shown
// exactly as the API gives them (decimal strings); nothing is computed with floats. The
// fund's chain is recomputed here: each entry's hash is sha256(prevHash + body).
"use strict";

const API = "/api/v1/public";
const MARKET_EVERY_MS = 1500;
const DATA_EVERY_MS = 10000;
const CHAIN_PAGE = 1000;
const CHAIN_ROWS = 100;          // entries shown (newest first); every entry read is checked
const GENESIS = "0".repeat(64);

const $ = (id) => document.getElementById(id);
const chain = { entries: [], prev: GENESIS, ok: true, why: "" };

async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${body.code} ${body.msg}`);
  return body;
}

function utc(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

function short(hash) {
  return hash ? `${hash.slice(0, 10)}…${hash.slice(-6)}` : "";
}

// A table cell: text (a string as given), a class ("num" right-aligns), a data-field name for tests.
function cell(text, cls, field, title) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  if (field) td.dataset.field = field;
  if (title) td.title = title;
  return td;
}

function listCell(items, field) {
  const td = document.createElement("td");
  const ul = document.createElement("ul");
  ul.className = "list";
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = item;
    ul.append(li);
  }
  td.append(ul);
  if (field) td.dataset.field = field;
  return td;
}

function fill(id, rows, columns, empty) {
  const body = $(id);
  const out = rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  });
  if (!out.length) {
    const tr = document.createElement("tr");
    const td = cell(empty, "empty");
    td.colSpan = columns;
    tr.append(td);
    out.push(tr);
  }
  body.replaceChildren(...out);
}

function amounts(map) {
  const items = Object.entries(map || {}).map(([asset, amount]) => `${amount} ${asset}`);
  return items.length ? items.join(", ") : "–";
}

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function badge(id, ok, text) {
  const el = $(id);
  el.textContent = text;
  el.className = `badge ${ok ? "ok" : "bad"}`;
}

// ---- rules -----------------------------------------------------------------------------
async function showRules() {
  const rules = await get(`${API}/rules`);
  const items = [["config", "Config (public trading rules)", rules.config],
                 ["perpetualRules", "Perpetual rules", rules.perpetualRules],
                 ["rulebook", "Risk rulebook", rules.rulebook]].filter(([, , r]) => r);
  const canCheck = window.isSecureContext && crypto.subtle;
  const rows = [];
  const texts = [];
  for (const [key, label, rule] of items) {
    let check = "given by the server";
    if (rule.text !== null && canCheck) {
      check = (await sha256(rule.text)) === rule.hash ? "✓ recomputed here" : "✗ does not match its text";
    }
    const tr = [cell(label), cell(rule.hash, "hash", `${key}-hash`), cell(check, null, `${key}-check`)];
    rows.push(tr);
    const block = document.createElement("div");
    const title = document.createElement("p");
    title.textContent = `${label}: ${rule.hashes}`;
    const pre = document.createElement("pre");
    pre.textContent = rule.text === null ? JSON.stringify({ rules: rule.rules, operators: rule.operators }) : rule.text;
    block.append(title, pre);
    texts.push(block);
  }
  fill("rules-body", rows, 3, "no rules published");
  $("rules-text-list").replaceChildren(...texts);
}

// ---- the funds and their chain ----------------------------------------------------------
async function showFunds() {
  const fund = await get(`${API}/insuranceFund`);
  $("server-time").textContent = `${utc(fund.serverTime)} UTC`;
  fill("perp-fund-body", fund.perpetual.map((f) => [
    cell(f.market, null, "market"), cell(f.asset), cell(f.marginBalance, "num", "balance"),
    cell(f.maxDrawRatio, "num"), cell(f.adlDrawdownRatio, "num"), cell(f.adlRounds, "num", "adl-rounds")]),
  6, "no perpetual market");
  fill("margin-fund-body", fund.margin.map((f) => [
    cell(f.asset, null, "asset"), cell(f.marginBalance, "num", "balance"), cell(f.deposited, "num"),
    cell(f.badDebt, "num")]), 4, "no margin fund");
  badge("chain-server", fund.chain.verified,
        fund.chain.verified ? "✓ verified" : `✗ ${fund.chain.problems.join("; ")}`);
  await readChain(fund.chain.entries);
  $("chain-entries").textContent = plural(chain.entries.length, "entry", "entries");
  $("chain-head").textContent = chain.prev;
  $("chain-head").dataset.server = fund.chain.head;
  if (chain.ok && chain.prev !== fund.chain.head) {
    chain.ok = false;
    chain.why = "the head differs from the server's";
  }
  const canCheck = window.isSecureContext && crypto.subtle;
  if (!canCheck) badge("chain-browser", false, "cannot check here (needs HTTPS or localhost)");
  else badge("chain-browser", chain.ok, chain.ok ? `✓ ${plural(chain.entries.length, "entry", "entries")}` : `✗ ${chain.why}`);
  const shown = chain.entries.slice(-CHAIN_ROWS).reverse();
  fill("chain-body", shown.map((e) => [
    cell(e.id, "num", "id"), cell(utc(e.time), "nowrap"), cell(e.type, null, "type"), cell(e.market, "nowrap"),
    cell(e.amount, "num", "amount"),
    cell(Object.entries(e.details).map(([k, v]) => `${k}=${v}`).join(" ")),
    cell(short(e.prevHash), "hash", null, e.prevHash), cell(short(e.hash), "hash", "hash", e.hash)]),
  8, "no entries yet");
  $("chain-note").textContent = chain.entries.length > CHAIN_ROWS
    ? `Showing the newest ${CHAIN_ROWS} of ${chain.entries.length}; all of them were checked.` : "";
}

// Read the entries after those already checked, and check each links to the one before.
async function readChain(count) {
  const canCheck = window.isSecureContext && crypto.subtle;
  while (chain.entries.length < count) {
    const page = await get(`${API}/insuranceFund/history?fromId=${chain.entries.length + 1}&limit=${CHAIN_PAGE}`);
    if (!page.length) break;
    for (const entry of page) {
      if (chain.ok) {
        if (entry.id !== chain.entries.length + 1) [chain.ok, chain.why] = [false, `entry ${entry.id} out of order`];
        else if (entry.prevHash !== chain.prev) [chain.ok, chain.why] = [false, `entry ${entry.id} does not follow`];
        else if (canCheck && (await sha256(entry.prevHash + entry.body)) !== entry.hash) {
          [chain.ok, chain.why] = [false, `entry ${entry.id}: hash does not match its content`];
        }
      }
      chain.entries.push(entry);
      chain.prev = entry.hash;
    }
  }
}

// ---- ADL and liquidations ----------------------------------------------------------------
// One block per ADL plan: the bankrupt position, the fund and the trigger, the ranking, what was taken.
async function showAdl() {
  const events = await get(`${API}/adl`);
  const blocks = events.slice().reverse().map((e) => {
    const block = document.createElement("article");
    block.className = "adl";
    block.dataset.id = String(e.id);
    const title = document.createElement("h3");
    title.textContent = `Plan ${e.id} · ${e.market} · liquidation ${e.liquidation} · ${utc(e.time)} UTC`;
    const grid = document.createElement("div");
    grid.className = "quad";
    grid.append(
      table(["bankrupt position", ""], [
        [cell("account"), cell(e.account || "(still open)", "hash", "account")],
        [cell("quantity"), cell(e.quantity, "num", "quantity")],
        [cell("bankruptcy price"), cell(e.bankruptcyPrice, "num", "bankruptcy-price")],
        [cell("mark price"), cell(e.markPrice, "num", "mark-price")]]),
      table(["fund and trigger", ""], [
        [cell("fund balance"), cell(e.fundBalance, "num", "fund-balance")],
        [cell("max draw"), cell(e.maxDrawRatio, "num")],
        [cell("drawdown / ADL trigger"), cell(`${e.fundDrawdownRatio} / ${e.adlDrawdownRatio}`, "num")],
        [cell("why"), cell(e.trigger, null, "trigger")]]),
      table(["ranked (highest first)", "score"], e.ranking.map((r) => [cell(r.account, "hash", "ranked"),
                                                                       cell(r.score, "num", "score")]),
            "no candidate"),
      table(["reduced", "quantity"], [
        ...e.reduced.map((r) => [cell(r.account, "hash", "reduced"), cell(r.quantity, "num", "reduced-quantity")]),
        [cell("left to close"), cell(e.left === null ? "in progress" : e.left, "num", "left")]]));
    block.append(title, grid);
    return block;
  });
  if (!blocks.length) {
    const none = document.createElement("p");
    none.className = "empty";
    none.textContent = "No auto-deleveraging so far.";
    blocks.push(none);
  }
  $("adl-body").replaceChildren(...blocks);
}

function table(headings, rows, empty) {
  const t = document.createElement("table");
  const head = document.createElement("tr");
  headings.forEach((h, i) => {
    const th = document.createElement("th");
    th.textContent = h;
    if (i) th.className = "num";
    head.append(th);
  });
  t.createTHead().append(head);
  const body = t.createTBody();
  for (const cells of rows) body.insertRow().append(...cells);
  if (!rows.length) body.insertRow().append(cell(empty, "empty"));
  return t;
}

async function showLiquidations() {
  const all = await get(`${API}/liquidations`);
  const perp = all.perpetual;
  $("perp-liq-counts").textContent = `(${perp.finished} finished, ${perp.open} open)`;
  fill("perp-liq-body", perp.records.slice().reverse().map((r) => [
    cell(r.id, "num", "id"), cell(utc(r.time)), cell(r.account, "hash", "account"), cell(r.markets.join(", ")),
    cell(r.equityTaken, "num", "equity"),
    cell(Object.entries(r.fund).map(([m, v]) => `${v} (${m})`).join(", ") || "–", "num", "fund")]),
  6, "no perpetual liquidation so far");
  fill("margin-liq-body", all.margin.slice().reverse().map((r) => [
    cell(r.id, "num", "id"), cell(r.finishTime ? utc(r.finishTime) : utc(r.startTime)),
    cell(r.account, "hash", "account"), cell(r.symbol ? `isolated ${r.symbol}` : "cross"),
    cell(r.outcome, null, "outcome"), cell(r.marginLevelBefore ?? "–", "num"),
    listCell(r.fills.map((f) => `${f.side} ${f.qty} ${f.symbol} @ ${f.price}`), "fills"),
    cell(amounts(r.repaid), "num"), cell(amounts(r.shortfall), "num"), cell(amounts(r.writtenOff), "num")]),
  10, "no margin liquidation so far");
}

// ---- the live market ----------------------------------------------------------------------
async function chooseSymbols() {
  const info = await get("/api/v3/exchangeInfo");
  const select = $("symbol");
  const wanted = new URLSearchParams(location.search).get("symbol");
  for (const s of info.symbols) select.append(new Option(s.symbol, s.symbol, false, s.symbol === wanted));
  select.addEventListener("change", () => showMarket().catch(report));
}

async function showMarket() {
  const symbol = $("symbol").value;
  if (!symbol) return;
  const [book, trades] = await Promise.all([get(`/api/v3/depth?symbol=${symbol}&limit=10`),
                                            get(`/api/v3/trades?symbol=${symbol}&limit=20`)]);
  const rows = [];
  for (let i = 0; i < Math.max(book.bids.length, book.asks.length); i++) {
    const [bid, bidQty] = book.bids[i] || ["", ""];
    const [ask, askQty] = book.asks[i] || ["", ""];
    rows.push([cell(bidQty, "num", "bid-qty"), cell(bid, "num bid", "bid"), cell(ask, "num ask", "ask"),
               cell(askQty, "num", "ask-qty")]);
  }
  fill("book-body", rows, 4, "the book is empty");
  $("book-body").dataset.updateId = String(book.lastUpdateId);
  fill("trades-body", trades.slice().reverse().map((t) => [
    cell(t.id, "num", "id"), cell(utc(t.time)), cell(t.price, `num ${t.isBuyerMaker ? "ask" : "bid"}`, "price"),
    cell(t.qty, "num", "qty"), cell(t.isBuyerMaker ? "sell" : "buy")]), 5, "no trades yet");
  document.body.dataset.market = symbol;
}

function report(error) {
  $("load-state").textContent = `error: ${error.message}`;
}

async function refreshData() {
  await Promise.all([showRules(), showFunds(), showAdl(), showLiquidations()]);
  $("load-state").textContent = `updated ${utc(Date.now())} UTC`;
  document.body.dataset.loaded = "1";
}

async function start() {
  await chooseSymbols();
  await Promise.all([refreshData(), showMarket()]);
  setInterval(() => showMarket().catch(report), MARKET_EVERY_MS);
  setInterval(() => refreshData().catch(report), DATA_EVERY_MS);
}

start().catch(report);
