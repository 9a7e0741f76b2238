// The review page: one field at a time, keyboard first. Enter accepts, digits + Enter correct,
// b blank as printed, s source error, j/k move, l teach a label, t table view, ? help.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const S = { items: [], idx: 0, ctx: null, buf: "", busy: false, filters: {} };

  function readFilters() {
    const f = new FormData($("filters"));
    S.filters = { agency: f.get("agency") || "", year: f.get("year") || "", reason: f.get("reason") || "" };
  }

  function shortKey(k) { const p = k.split("."); return p.slice(-2).join("."); }
  function fmt(v) { return v === null || v === undefined ? "?" : String(v); }
  function say(msg, kind) { const m = $("message"); m.textContent = msg || ""; m.className = "message " + (kind || ""); }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function queueLine(q) {
    if (!q) return;
    let claimed = 0;
    Object.values(q.counts || {}).forEach((c) => { claimed += c.claimed || 0; });
    $("queue-count").textContent = q.open + " open, " + claimed + " being reviewed, in " + q.documents + " document(s)";
  }

  function load(bundle) {
    if (bundle && bundle.queue) queueLine(bundle.queue);
    if (!bundle || !bundle.item) {
      $("work").hidden = true; $("empty").hidden = false; S.items = []; S.ctx = null;
      return;
    }
    S.items = bundle.items.length ? bundle.items : [{ id: bundle.item.id, key: bundle.item.field_key }];
    S.idx = Math.max(0, S.items.findIndex((i) => i.id === bundle.item.id));
    S.ctx = bundle.context; S.buf = "";
    $("empty").hidden = true; $("work").hidden = false;
    render();
  }

  function current() { return S.items[S.idx]; }

  function render() {
    const c = S.ctx; if (!c) return;
    const f = c.field || {};
    const d = c.document;
    $("doc-title").textContent = (d.agency || d.filename) + (d.year ? " " + d.year : "");
    $("doc-meta").textContent = "#" + d.id + " · " + d.filename + " · v" + d.version;
    $("doc-status").textContent = d.status; $("doc-status").dataset.status = d.status;
    $("doc-link").href = "/review/documents/" + d.id;
    const list = $("item-list"); list.textContent = "";
    S.items.forEach((it, i) => {
      const li = el("li", {}, shortKey(it.key) + (it.done ? " ✓" : ""));
      if (i === S.idx) li.setAttribute("aria-current", "true");
      if (it.done) li.className = "done";
      list.appendChild(li);
    });
    $("field-title").textContent = c.labels.row + " · " + c.labels.column;
    $("field-key").textContent = c.key;
    const kind = $("field-kind");
    kind.hidden = c.item.kind === "flagged"; kind.textContent = c.item.kind === "spot_check" ? "spot check" : c.item.kind;
    $("raw-text").textContent = f.text === "" ? "(blank)" : (f.text || "(blank)");
    $("proposed").textContent = fmt(f.value);
    $("confidence").textContent = f.confidence === undefined ? "" : Number(f.confidence).toFixed(2);
    const rs = $("reasons"); rs.textContent = "";
    (f.reasons || []).forEach((r) => rs.appendChild(el("li", {}, r)));
    if (c.item.state === "done") rs.appendChild(el("li", { class: "ok" }, "decided"));
    renderEvidence(c.evidence);
    renderValue(); renderRelations(); renderLearn(c.learn);
    say("");
  }

  function renderEvidence(ev) {
    const box = $("evidence"); box.textContent = "";
    if (!ev) return;
    if (ev.kind === "crop") {
      box.appendChild(el("img", { src: ev.url, alt: "page " + ev.page + " around the cell (outlined in red)" }));
      return;
    }
    if (!ev.lines || !ev.lines.length) { box.appendChild(el("p", { class: "muted" }, "No printed context found for this row.")); return; }
    const t = el("table", { class: "context" });
    ev.lines.forEach((ln) => {
      const tr = el("tr", ln.hit ? { class: "hit" } : {});
      tr.appendChild(el("th", { scope: "row" }, String(ln.no)));
      ln.cells.forEach((cell) => tr.appendChild(el("td", {}, cell === "" ? "·" : cell)));
      t.appendChild(tr);
    });
    box.appendChild(t);
  }

  function typed() {
    if (S.buf === "" || S.buf === "-" || S.buf === ".") return null;
    const v = Number(S.buf); return Number.isFinite(v) ? v : null;
  }

  function renderValue() {
    const v = $("value");
    if (S.buf === "") { v.textContent = "Enter = accept " + fmt((S.ctx.field || {}).value); v.dataset.empty = "1"; }
    else { v.textContent = S.buf; v.dataset.empty = ""; }
  }

  function renderRelations() {
    const box = $("relations"); box.textContent = "";
    const mine = S.ctx.key; const t = typed();
    (S.ctx.relations || []).forEach((r) => {
      const side = (cells) => {
        let sum = 0, unknown = 0; const parts = [];
        cells.forEach((cell) => {
          const v = cell.key === mine && t !== null ? t : cell.value;
          if (v === null || v === undefined) unknown += 1; else sum += Number(v);
          parts.push((cell.key === mine ? "▸" : "") + shortKey(cell.key) + "=" + fmt(v));
        });
        return { sum, unknown, parts };
      };
      const L = side(r.lhs), R = side(r.rhs);
      let state = "unknown";
      if (!L.unknown && !R.unknown) state = Math.abs(L.sum - R.sum) < 1e-9 ? "ok" : "bad";
      else if ((L.unknown && !R.unknown && L.sum > R.sum) || (!L.unknown && R.unknown && R.sum > L.sum)) state = "bad";
      const div = el("div", { class: "rel " + state });
      div.appendChild(el("div", { class: "rel-name" }, r.label + (r.source_error ? " (source's error)" : "")));
      div.appendChild(el("div", {}, L.parts.join(" + ") + "  →  " + L.sum + (L.unknown ? " + ?" : "")));
      div.appendChild(el("div", {}, R.parts.join(" + ") + "  →  " + R.sum + (R.unknown ? " + ?" : "")));
      div.appendChild(el("div", { class: "rel-state" }, state === "ok" ? "✓ holds" : state === "bad" ? "✗ does not hold" : "… incomplete"));
      box.appendChild(div);
    });
  }

  function renderLearn(learn) {
    const box = $("learn");
    $("learn-form").hidden = true;
    if (!learn) { box.hidden = true; return; }
    box.hidden = false; $("learn-row").textContent = learn.label + " (" + learn.row + ")";
    const dl = $("learn-suggestions"); dl.textContent = "";
    (learn.suggestions || []).forEach((s) => dl.appendChild(el("option", { value: s })));
    $("learn-text").value = (learn.suggestions || [])[0] || "";
  }

  async function claim(preferDoc) {
    readFilters();
    try { load(await nb.api("POST", "/review/api/claim", Object.assign({}, S.filters, { document_id: preferDoc || null }))); }
    catch (e) { say(e.message, "error"); }
  }

  async function move(delta) {
    if (S.items.length < 2) return;
    S.idx = (S.idx + delta + S.items.length) % S.items.length;
    try { S.ctx = await nb.api("GET", "/review/api/items/" + current().id); S.buf = ""; render(); }
    catch (e) { say(e.message, "error"); }
  }

  async function decide(body, what) {
    if (S.busy || !S.ctx) return;
    S.busy = true;
    const doc = S.ctx.document.id;
    try {
      const r = await nb.api("POST", "/review/api/items/" + current().id + "/decision",
                             Object.assign(body, { filters: S.filters }));
      const res = r.result;
      const banner = $("done-banner");
      if (res.status === "extracted") {
        banner.hidden = false; banner.dataset.document = String(doc); banner.dataset.status = "extracted";
        banner.textContent = "Document #" + doc + " is now extracted: nothing flagged any more.";
      } else { banner.hidden = true; banner.dataset.status = res.status; }
      load(r.next);
      say(what + " · " + shortKey(res.field_key) + (Object.keys(res.changed || {}).length ?
          " · relations pinned/flagged " + Object.keys(res.changed).map(shortKey).join(", ") : ""), "ok");
    } catch (e) { say(e.message, "error"); }
    finally { S.busy = false; }
  }

  function toggleHelp(show) { $("help").hidden = !show; }

  async function submitLabel(ev) {
    ev.preventDefault();
    const text = $("learn-text").value.trim(); if (!text) return;
    try {
      const r = await nb.api("POST", "/review/api/items/" + current().id + "/label", { text });
      say(r.state === "learned" ? "Label learned (rules v" + r.version + "); it applies from the next extraction."
          : r.state === "voted" ? "Label vote recorded (" + r.votes + ")." : "This label is already known.", "ok");
      $("learn-form").hidden = true;
    } catch (e) { say(e.message, "error"); }
  }

  document.addEventListener("keydown", (e) => {
    if (!$("help").hidden) { if (e.key === "Escape" || e.key === "?") { toggleHelp(false); e.preventDefault(); } return; }
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      if (e.key === "Escape") { t.blur(); $("learn-form").hidden = true; }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { toggleHelp(true); e.preventDefault(); return; }
    if (!S.ctx || $("work").hidden) return;
    const k = e.key;
    if (/^[0-9]$/.test(k) || (k === "." && !S.buf.includes(".")) || (k === "-" && S.buf === "")) {
      S.buf += k; renderValue(); renderRelations(); e.preventDefault(); return;
    }
    switch (k) {
      case "Backspace": S.buf = S.buf.slice(0, -1); break;
      case "Escape": S.buf = ""; break;
      case "Enter": {
        const v = typed();
        if (v !== null) decide({ verdict: "corrected", value: v }, "corrected to " + v);
        else if (S.buf !== "") { say("Not a number: " + S.buf, "error"); }
        else if (S.ctx.field.value === null && S.ctx.item.kind === "flagged") {
          say("No value to accept: type the number, or press b if the cell is blank as printed.", "error");
        } else decide({ verdict: "confirmed" }, "confirmed");
        break;
      }
      case "b": decide({ verdict: "confirmed", blank: true }, "blank as printed"); break;
      case "s": decide({ verdict: "source_error" }, "source error: printed value stands"); break;
      case "j": move(1); break;
      case "k": move(-1); break;
      case "t": window.open("/review/documents/" + S.ctx.document.id, "_blank"); break;
      case "l":
        if (S.ctx.learn) { $("learn-form").hidden = false; $("learn-text").focus(); }
        break;
      default: return;
    }
    renderValue(); renderRelations(); e.preventDefault();
  });

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); claim(null); });
  $("learn-form").addEventListener("submit", submitLabel);
  claim(app.dataset.document || null);
})();
