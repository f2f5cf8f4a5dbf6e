// The mlscale console: every view reads the JSON API under /ui/api (see /openapi.json); no logic lives here
// that the API lacks. The bearer token, when the server wants one, is kept in sessionStorage and sent as an
// Authorization header, never in a URL.
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
const TOKEN_KEY = "mlscale-token";
const state = { run: null, model: null, cursors: [0], filters: {}, next: null, selected: null, status: null, poll: null, spark: [] };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}
function svgEl(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
function banner(text) { const b = $("#banner"); b.textContent = text || ""; b.hidden = !text; }
function fmt(v) {
  if (v == null) return "";
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en") : (Math.abs(v) < 0.01 ? v.toExponential(2) : v.toFixed(3));
  return String(v);
}

class ApiError extends Error { constructor(status, message, field) { super(message); this.status = status; this.field = field; } }

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  if (options.body && typeof options.body !== "string") { options = { ...options, body: JSON.stringify(options.body) }; headers["Content-Type"] = "application/json"; }
  let resp;
  try { resp = await fetch("/ui/api/" + path, { ...options, headers }); }
  catch (err) { throw new ApiError(0, "the console server cannot be reached (is it running?)"); }
  let data = null;
  try { data = await resp.json(); } catch (err) { data = null; }
  if (resp.status === 401) { showLogin(); throw new ApiError(401, "a token is needed"); }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, (e.field ? e.field + ": " : "") + (e.message || resp.statusText), e.field);
  }
  return data;
}

function showLogin() { $("#login").hidden = false; for (const v of document.querySelectorAll(".view")) v.hidden = true; $("#token").focus(); }

// -- views -----------------------------------------------------------------------------------------------
function showView(name) {
  for (const t of document.querySelectorAll(".tab")) { if (t.dataset.view === name) t.setAttribute("aria-current", "page"); else t.removeAttribute("aria-current"); }
  $("#login").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + name;
  if (state.poll && name !== "serving") { clearInterval(state.poll); state.poll = null; }
  banner("");
  ({ hunt: loadHunt, models: loadModels, serving: loadServing, loadtests: loadReports })[name]().catch(err => banner(err.message));
}

// -- threat hunting ----------------------------------------------------------------------------------------
async function loadHunt() {
  const [runs, reg] = await Promise.all([api("runs"), api("models")]);
  const models = reg.models.filter(m => m.app === "threat");
  const msel = $("#model"); msel.replaceChildren(...models.map(m => el("option", { value: m.name }, m.ref)));
  const rsel = $("#run"); rsel.replaceChildren(...runs.runs.map(r => el("option", { value: r.id }, r.id + (r.model ? "  (" + r.model + ")" : ""))));
  if (!models.length) { $("#list-info").textContent = ""; }
  if (!runs.runs.length) {
    state.run = null;
    $("#flows thead").replaceChildren(); $("#flows tbody").replaceChildren();
    $("#list-info").replaceChildren(el("span", { class: "message", id: "no-runs" },
      models.length ? "No scored run yet in " + runs.folder + ": press \u201cScore training data\u201d, or write one with `mlscale threat score --out " + runs.folder + "/NAME.parquet`."
                    : "No scored run yet, and no threat model in the registry: train one with `mlscale train threat --data ... --name NAME`."));
    return;
  }
  if (!state.run || !runs.runs.some(r => r.id === state.run)) state.run = runs.runs[0].id;
  rsel.value = state.run;
  const run = runs.runs.find(r => r.id === state.run);
  if (run && run.model) { const name = run.model.split("/")[1].split("@")[0]; if ([...msel.options].some(o => o.value === name)) msel.value = name; }
  state.model = msel.value || null;
  state.cursors = [0];
  await loadPage();
  await loadHosts(run);
}

function query(extra = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...state.filters, ...extra })) if (v !== "" && v != null) p.set(k, v);
  if (state.model) p.set("model", state.model);
  return p.toString();
}

const COLUMNS = ["rank", "score", "ts", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "src_word", "dst_word", "verdict"];

async function loadPage() {
  if (!state.run) return;
  const after = state.cursors[state.cursors.length - 1];
  const page = await api(`runs/${encodeURIComponent(state.run)}/flows?` + query({ after, limit: 50 }));
  const rows = page.rows;
  const cols = rows.length ? COLUMNS.filter(c => c in rows[0]) : COLUMNS;
  $("#flows thead").replaceChildren(el("tr", {}, ...cols.map(c => el("th", { scope: "col" }, c))));
  $("#flows tbody").replaceChildren(...rows.map(r => {
    const tr = el("tr", { tabindex: "0", "data-rank": r.rank }, ...cols.map(c => el("td", c === "verdict" && r.verdict ? { class: "sev" + r.verdict } : {}, c === "ts" && r.ts ? r.ts.slice(0, 19).replace("T", " ") : fmt(r[c]))));
    tr.addEventListener("click", () => openEvent(r.rank, tr));
    tr.addEventListener("keydown", ev => {
      if (ev.key === "Enter") openEvent(r.rank, tr);
      else if (ev.key === "ArrowDown" && tr.nextElementSibling) { ev.preventDefault(); tr.nextElementSibling.focus(); }
      else if (ev.key === "ArrowUp" && tr.previousElementSibling) { ev.preventDefault(); tr.previousElementSibling.focus(); }
    });
    return tr;
  }));
  state.next = page.next_after;
  $("#next").disabled = !page.more; $("#prev").disabled = state.cursors.length <= 1;
  $("#page-no").textContent = "page " + state.cursors.length;
  const info = $("#list-info");
  if (!rows.length) { info.replaceChildren(el("span", { class: "message" }, "No flow passes these filters.")); return; }
  info.textContent = `${rows.length} rows (ranks ${rows[0].rank}\u2013${rows[rows.length - 1].rank}) in ${page.server_ms} ms` + (page.total != null ? ` of ${page.total.toLocaleString("en")}` : "");
  if (page.total == null) {
    api(`runs/${encodeURIComponent(state.run)}/count?` + query()).then(c => { info.textContent += ` \u2014 ${c.count.toLocaleString("en")} match`; }).catch(() => {});
  }
}

async function loadHosts(run) {
  const box = $("#hosts");
  box.hidden = true;
  if (!run || !run.hosts) return;
  const h = await api(`runs/${encodeURIComponent(state.run)}/hosts`);
  if (!h.available) return;
  box.hidden = false;
  $("#hosts-table thead").replaceChildren(el("tr", {}, ...h.columns.map(c => el("th", {}, c))));
  $("#hosts-table tbody").replaceChildren(...h.rows.map(r => el("tr", {}, ...h.columns.map(c => el("td", {}, fmt(r[c]))))));
}

async function openEvent(rank, tr) {
  for (const r of document.querySelectorAll("#flows tbody tr.selected")) r.classList.remove("selected");
  if (tr) tr.classList.add("selected");
  state.selected = rank;
  const d = await api(`runs/${encodeURIComponent(state.run)}/events/${rank}?` + query());
  const ev = d.event;
  const box = $("#detail");
  const fields = Object.entries(ev).filter(([k]) => !k.endsWith("_word") && !k.endsWith("_prob") && k !== "word" && k !== "prob");
  const ipLink = ip => el("button", { type: "button", class: "small ip-link", "data-ip": ip, onclick: () => openIp(ip) }, ip);
  box.replaceChildren(
    el("h2", {}, `Event rank ${ev.rank}`),
    el("p", {}, "score ", el("b", {}, fmt(ev.score)), ev.verdict ? el("span", { class: "sev" + ev.verdict }, `  verdict ${ev.verdict}`) : ""),
    el("h3", {}, "Words that made it suspicious"),
    el("table", { id: "words" }, el("thead", {}, el("tr", {}, el("th", {}, "side"), el("th", {}, "IP"), el("th", {}, "word"), el("th", {}, "P(word | IP)"))),
      el("tbody", {}, ...d.words.map(w => el("tr", {}, el("td", {}, w.side), el("td", {}, w.ip ? ipLink(w.ip) : ""), el("td", {}, w.word), el("td", {}, fmt(w.prob)))))),
    el("h3", {}, "Verdict"),
    el("div", { class: "verdicts" },
      el("label", {}, "Applies to", el("select", { id: "scope" }, el("option", { value: "event" }, "this event"), el("option", { value: "pattern" }, "pattern: dst_ip + dst_port"))),
      el("p", {}, ...[1, 2, 3].map(s => el("button", { type: "button", class: "verdict sev" + s, "data-severity": s, onclick: () => recordVerdict(s) }, `${s} ${["", "high", "medium", "low"][s]}`))),
      el("p", { id: "verdict-result", class: "info" })),
    el("h3", {}, "Fields"),
    el("table", {}, el("tbody", {}, ...fields.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v)))))),
  );
}

async function recordVerdict(severity) {
  const scope = $("#scope").value;
  const body = { severity, scope, model: state.model };
  try {
    const r = await api(`runs/${encodeURIComponent(state.run)}/events/${state.selected}/verdict`, { method: "POST", body });
    $("#verdict-result").textContent = `recorded severity ${severity} (${scope}) in ${r.log}`;
    await loadPage();
  } catch (err) { $("#verdict-result").textContent = err.message; }
}

async function openIp(ip) {
  const v = await api(`runs/${encodeURIComponent(state.run)}/ips/${encodeURIComponent(ip)}?` + query());
  const box = $("#detail");
  const timeline = svgEl("svg", { width: 360, height: 90, role: "img", "aria-label": "flows over time", id: "timeline" });
  const max = Math.max(1, ...v.timeline.map(t => t.flows));
  const w = 360 / Math.max(1, v.timeline.length);
  v.timeline.forEach((t, i) => { const h = 70 * t.flows / max; timeline.append(svgEl("rect", { x: i * w, y: 75 - h, width: Math.max(1, w - 1), height: h, fill: "#0b5cad" })); });
  if (v.timeline.length) { const a = svgEl("text", { x: 0, y: 88 }); a.textContent = v.timeline[0].start.slice(0, 16); timeline.append(a); }
  const topics = v.topics ? el("p", { id: "topics" }, "topic mix: ", ...v.topics.map((t, i) => el("span", { class: "small" }, ` #${i} ${(100 * t).toFixed(0)}%`))) : el("p", { class: "info" }, "topic mix: the model does not know this IP");
  box.replaceChildren(
    el("h2", {}, `IP ${v.ip}`),
    el("p", {}, `${v.flows.toLocaleString("en")} flow${v.flows === 1 ? "" : "s"} in this run, ${v.peers.length} peer${v.peers.length === 1 ? "" : "s"} shown`),
    el("h3", {}, "Flows over time"), timeline, topics,
    el("h3", {}, "Peers"), peerGraph(v.ip, v.peers),
    el("table", { id: "peers" }, el("thead", {}, el("tr", {}, el("th", {}, "peer"), el("th", {}, "flows"), el("th", {}, "min score"))),
      el("tbody", {}, ...v.peers.map(p => el("tr", {}, el("td", {}, el("button", { type: "button", class: "small", onclick: () => openIp(p.ip) }, p.ip)), el("td", {}, fmt(p.flows)), el("td", {}, fmt(p.min_score)))))),
    el("h3", {}, "Most suspicious flows"),
    el("table", {}, el("tbody", {}, ...v.top.slice(0, 20).map(r => { const tr = el("tr", { tabindex: "0" }, el("td", {}, fmt(r.rank)), el("td", {}, fmt(r.score)), el("td", {}, `${r.src_ip}:${r.src_port} \u2192 ${r.dst_ip}:${r.dst_port}`)); tr.addEventListener("click", () => openEvent(r.rank)); tr.addEventListener("keydown", e => { if (e.key === "Enter") openEvent(r.rank); }); return tr; }))),
  );
}

function peerGraph(center, peers) {
  const size = 460, c = size / 2, r = 110;
  const g = svgEl("svg", { width: size, height: size, viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": `network graph of ${center} and its peers`, id: "graph" });
  const top = peers.slice(0, 16), maxFlows = Math.max(1, ...top.map(p => p.flows));
  // red: the most suspicious third of these peers (scores are the model's; lower is more suspicious)
  const scores = top.map(p => p.min_score).filter(x => x != null).sort((a, b) => a - b);
  const cut = scores.length ? scores[Math.floor((scores.length - 1) / 3)] : null;
  top.forEach((p, i) => {
    const a = 2 * Math.PI * i / Math.max(1, top.length), x = c + r * Math.cos(a), y = c + r * Math.sin(a);
    const red = p.min_score != null && cut != null && p.min_score <= cut;
    g.append(svgEl("line", { x1: c, y1: c, x2: x, y2: y, stroke: red ? "#b3261e" : "#8896a5", "stroke-width": 1 + 4 * p.flows / maxFlows }));
    const n = svgEl("circle", { cx: x, cy: y, r: 6, fill: red ? "#b3261e" : "#5b6570" });
    const title = svgEl("title"); title.textContent = `${p.ip}: ${p.flows} flows, min score ${fmt(p.min_score)}`; n.append(title);
    g.append(n);
    const t = svgEl("text", { x: x + (x >= c ? 8 : -8), y: y + 4, "text-anchor": x >= c ? "start" : "end" }); t.textContent = p.ip; g.append(t);
  });
  g.append(svgEl("circle", { cx: c, cy: c, r: 9, fill: "#0b5cad" }));
  return g;
}

async function startJob(path, body) {
  const box = $("#job");
  box.hidden = false;
  box.textContent = "starting\u2026";
  let job;
  try { job = await api(path, { method: "POST", body }); } catch (err) { box.textContent = err.message; return null; }
  for (;;) {
    box.replaceChildren(el("b", {}, `${job.kind}: ${job.state}`), ...job.steps.map(s => el("div", { class: "small" }, s)));
    if (job.state !== "running") break;
    await new Promise(r => setTimeout(r, 500));
    job = await api("jobs/" + job.id);
  }
  if (job.state === "failed") { box.append(el("div", { class: "sev1" }, job.error)); return null; }
  const res = job.result;
  if (res.moved && res.moved.length) {
    box.append(el("table", { id: "moved" }, el("thead", {}, el("tr", {}, el("th", {}, "rated low risk"), el("th", {}, "best rank before"), el("th", {}, "after"))),
      el("tbody", {}, ...res.moved.map(m => el("tr", {}, el("td", {}, `${m.kind} ${JSON.stringify(m.match).slice(0, 80)}`), el("td", {}, fmt(m.before)), el("td", {}, fmt(m.after)))))));
  }
  state.run = res.run;
  await loadHunt();
  return res;
}

// -- models --------------------------------------------------------------------------------------------------
function confirmDialog(text) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise(resolve => { d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }); d.showModal(); $("#confirm-ok").focus(); });
}

async function loadModels() {
  const reg = await api("models");
  const list = $("#models-list");
  $("#models-info").textContent = `registry ${reg.registry}`;
  if (!reg.models.length) {
    list.replaceChildren(el("p", { class: "message", id: "empty-registry" }, "The registry is empty: train a model with `mlscale train APP --data ... --name NAME`."));
    $("#diff-a").replaceChildren(); $("#diff-b").replaceChildren();
    return;
  }
  const refs = [];
  list.replaceChildren(...reg.models.map(m => {
    const aliases = Object.entries(m.aliases).map(([a, v]) => `${a} \u2192 ${v}`).join(", ");
    const metricKeys = [...new Set(m.versions.flatMap(v => Object.keys(v.metrics)))].slice(0, 6);
    m.versions.forEach(v => refs.push(`${m.ref}@${v.version}`));
    const alias = el("input", { value: "production", size: 10, "aria-label": `alias of ${m.ref}` });
    return el("div", { class: "model", "data-model": m.ref },
      el("h3", {}, m.ref), el("p", { class: "info" }, "aliases: " + aliases),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "version"), el("th", {}, "created"), el("th", {}, "engine"), ...metricKeys.map(k => el("th", {}, k)), el("th", {}, "verdicts"), el("th", {}, ""))),
        el("tbody", {}, ...m.versions.map(v => el("tr", {}, el("td", {}, v.version), el("td", {}, v.created), el("td", {}, v.engine), ...metricKeys.map(k => el("td", {}, fmt(v.metrics[k]))), el("td", {}, fmt(v.feedback_verdicts)),
          el("td", {}, el("button", { type: "button", class: "small promote", "data-version": v.version, onclick: () => promote(`${m.ref}@${v.version}`, alias.value) }, "Promote")))))),
      el("p", {}, el("label", {}, "Alias", alias), el("button", { type: "button", class: "small", onclick: () => rollback(m.ref, alias.value) }, "Roll back")));
  }));
  for (const id of ["#diff-a", "#diff-b"]) $(id).replaceChildren(...refs.map(r => el("option", { value: r }, r)));
  if (refs.length > 1) $("#diff-b").value = refs[1];
}

async function promote(ref, alias) {
  if (!await confirmDialog(`Point ${ref.split("@")[0]}@${alias} at version ${ref.split("@")[1]}?`)) return;
  try { const r = await api("models/promote", { method: "POST", body: { ref, alias, confirm: true } }); banner(""); await loadModels(); $("#models-info").textContent = `${r.model}@${r.alias} \u2192 version ${r.version}` + (r.was != null ? ` (was ${r.was})` : ""); }
  catch (err) { banner(err.message); }
}
async function rollback(model, alias) {
  if (!await confirmDialog(`Roll ${model}@${alias} back to the version before?`)) return;
  try { const r = await api("models/rollback", { method: "POST", body: { model, alias, confirm: true } }); await loadModels(); $("#models-info").textContent = `${r.model}@${r.alias} \u2192 version ${r.version} (was ${r.was})`; }
  catch (err) { banner(err.message); }
}

async function showDiff(ev) {
  ev.preventDefault();
  const d = await api(`models/diff?a=${encodeURIComponent($("#diff-a").value)}&b=${encodeURIComponent($("#diff-b").value)}`);
  const table = (title, rows) => el("div", {}, el("h3", {}, title), el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "key"), el("th", {}, d.a), el("th", {}, d.b))),
    el("tbody", {}, ...rows.map(r => el("tr", r.changed ? { class: "changed" } : {}, el("td", {}, r.key), el("td", {}, fmt(r.a)), el("td", {}, fmt(r.b)))))));
  $("#diff").replaceChildren(table("Parameters", d.params), table("Metrics", d.metrics));
}

// -- serving ---------------------------------------------------------------------------------------------------
async function loadServing() {
  const st = state.status || (state.status = await api("status"));
  const input = $("#serving-url");
  if (!input.value) input.value = st.server || (st.mounted ? location.origin : "");
  if (!input.value) { $("#serving-info").replaceChildren(el("span", { class: "message" }, "No server to watch: enter the URL of a running `mlscale serve`.")); return; }
  await scrape();
  if (!state.poll) state.poll = setInterval(() => scrape().catch(err => banner(err.message)), 2000);
}

async function scrape() {
  const s = await api("serving?url=" + encodeURIComponent($("#serving-url").value));
  const info = $("#serving-info");
  if (!s.up) { info.replaceChildren(el("span", { class: "message", id: "server-down" }, s.message)); $("#serving-cards").replaceChildren(); return; }
  info.textContent = `${s.url}/metrics, every 2 s`;
  const card = (label, v, unit = "") => el("div", { class: "card" }, label, el("b", {}, v == null ? "\u2013" : fmt(v) + unit));
  $("#serving-cards").replaceChildren(card("requests/s", s.requests_per_s), card("p50", s.p50_ms, " ms"), card("p99", s.p99_ms, " ms"),
    card("mean batch rows", s.mean_batch_rows), card("queue rows", s.queue_rows), card("503s", s.http_503_total), card("rejected", s.rejected_total), card("connections", s.open_connections));
  if (s.requests_per_s != null) { state.spark.push(s.requests_per_s); state.spark = state.spark.slice(-60); }
  const svg = $("#serving-spark"); svg.replaceChildren();
  const max = Math.max(1, ...state.spark);
  const pts = state.spark.map((v, i) => `${i * 10},${75 - 70 * v / max}`).join(" ");
  if (pts) svg.append(svgEl("polyline", { points: pts, fill: "none", stroke: "#0b5cad", "stroke-width": 2 }));
  $("#serving-versions").replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "model"), el("th", {}, "ref"), el("th", {}, "version"), el("th", {}, "worker"))),
    el("tbody", {}, ...s.versions.map(v => el("tr", {}, el("td", {}, v.model), el("td", {}, v.ref), el("td", {}, v.version), el("td", {}, v.worker))))));
}

// -- load tests ------------------------------------------------------------------------------------------------
async function loadReports() {
  const r = await api("reports");
  const tbody = $("#reports tbody");
  if (!r.reports.length) { tbody.replaceChildren(); $("#reports-info").replaceChildren(el("span", { class: "message", id: "no-reports" }, "No load-test report yet: run `mlscale loadtest ... --report DIR` with DIR under the console's --reports folder.")); return; }
  $("#reports-info").textContent = `${r.reports.length} report(s); tick two to compare their latency-vs-rate curves`;
  tbody.replaceChildren(...r.reports.map(x => el("tr", {}, el("td", {}, el("input", { type: "checkbox", class: "cmp", value: x.id, "aria-label": "compare " + x.id, onchange: compare })),
    el("td", {}, x.id), el("td", {}, x.generated_at), el("td", {}, x.mode), el("td", {}, x.passed ? "yes" : "no"), el("td", {}, fmt(x.knee_rps)), el("td", {}, fmt(x.max_achieved_rps)),
    el("td", {}, el("button", { type: "button", class: "small open-report", onclick: () => openReport(x.id) }, "Open")))));
}

async function openReport(id) {
  const f = await api(`reports/file?id=${encodeURIComponent(id)}&name=report.html`);
  const bytes = Uint8Array.from(atob(f.base64), c => c.charCodeAt(0));
  const frame = $("#report-frame");
  frame.src = URL.createObjectURL(new Blob([bytes], { type: "text/html" }));
  frame.hidden = false;
}

async function compare() {
  const ids = [...document.querySelectorAll(".cmp:checked")].map(c => c.value).slice(0, 2);
  const box = $("#compare");
  if (!ids.length) { box.replaceChildren(); return; }
  const curves = await Promise.all(ids.map(id => api("reports/curve?id=" + encodeURIComponent(id))));
  const W = 640, H = 320, L = 60, B = 40;
  const pts = curves.flatMap(c => c.points.filter(p => p.p99_ms != null && p.offered_rps != null));
  if (!pts.length) { box.replaceChildren(el("p", { class: "message" }, "These reports have no latency points.")); return; }
  const xmax = Math.max(...pts.map(p => p.offered_rps)), ymin = Math.max(1e-3, Math.min(...pts.map(p => p.p50_ms || p.p99_ms))), ymax = Math.max(...pts.map(p => p.p99_ms));
  const lx = v => L + (W - L - 10) * v / xmax;
  const ly = v => { const a = Math.log10(ymin), b = Math.log10(Math.max(ymax, ymin * 10)); return (H - B) - (H - B - 10) * (Math.log10(Math.max(v, ymin)) - a) / (b - a); };
  const svg = svgEl("svg", { width: W, height: H, role: "img", "aria-label": "latency vs offered rate", id: "compare-plot" });
  svg.append(svgEl("line", { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: "#5b6570" }), svgEl("line", { x1: L, y1: 10, x2: L, y2: H - B, stroke: "#5b6570" }));
  const label = (x, y, text, anchor = "middle") => { const t = svgEl("text", { x, y, "text-anchor": anchor }); t.textContent = text; svg.append(t); };
  label((W + L) / 2, H - 8, "offered load (requests/s)"); label(L - 6, 16, fmt(ymax) + " ms", "end"); label(L - 6, H - B, fmt(ymin) + " ms", "end"); label(W - 10, H - B + 14, fmt(xmax), "end");
  const colors = ["#0b5cad", "#b3261e"];
  curves.forEach((c, i) => {
    for (const [key, dash] of [["p99_ms", ""], ["p50_ms", "4 3"]]) {
      const ps = c.points.filter(p => p[key] != null);
      svg.append(svgEl("polyline", { points: ps.map(p => `${lx(p.offered_rps)},${ly(p[key])}`).join(" "), fill: "none", stroke: colors[i], "stroke-width": 2, "stroke-dasharray": dash }));
    }
    label(L + 10, 24 + 14 * i, `${c.id}: p99 solid, p50 dashed`, "start"); svg.lastChild.setAttribute("fill", colors[i]);
  });
  box.replaceChildren(el("h3", {}, "Latency vs offered rate"), svg);
}

// -- wiring -------------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => showView(t.dataset.view));
  $("#login-form").addEventListener("submit", ev => { ev.preventDefault(); sessionStorage.setItem(TOKEN_KEY, $("#token").value); $("#login").hidden = true; showView("hunt"); });
  $("#logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); });
  $("#filters").addEventListener("submit", ev => {
    ev.preventDefault();
    state.filters = Object.fromEntries(new FormData(ev.target).entries());
    state.cursors = [0];
    banner("");
    loadPage().catch(err => banner(err.message));
  });
  $("#run").addEventListener("change", ev => { state.run = ev.target.value; loadHunt().catch(err => banner(err.message)); });
  $("#model").addEventListener("change", ev => { state.model = ev.target.value; state.cursors = [0]; loadPage().catch(err => banner(err.message)); });
  $("#next").addEventListener("click", () => { if (state.next != null) { state.cursors.push(state.next); loadPage().catch(err => banner(err.message)); } });
  $("#prev").addEventListener("click", () => { if (state.cursors.length > 1) { state.cursors.pop(); loadPage().catch(err => banner(err.message)); } });
  $("#score-btn").addEventListener("click", () => { if (!state.model) { banner("no threat model to score with: train one first"); return; } startJob("runs", { model: state.model }).catch(err => banner(err.message)); });
  $("#retrain-btn").addEventListener("click", () => { if (!state.model) { banner("no threat model to retrain"); return; } startJob("retrain", { model: state.model, run: state.run }).catch(err => banner(err.message)); });
  $("#diff-form").addEventListener("submit", ev => showDiff(ev).catch(err => banner(err.message)));
  $("#serving-form").addEventListener("submit", ev => { ev.preventDefault(); state.spark = []; scrape().catch(err => banner(err.message)); });
  showView("hunt");
});
