// Character Studio: light progressive enhancement over server-rendered pages (no build step).
// Every form also works without this file; it adds drag-and-drop, live job progress from
// the job's Server-Sent Events stream (reconnecting after a server restart), the results
// grid refresh, and the recommended-range marks of the strength inputs.
// Every fetch POST carries the session's CSRF token (X-CSRF-Token, from the csrf-token meta
// tag); the Content-Security-Policy allows no style attributes, so computed positions
// (face boxes, range bars) come as data-style and are applied here through the CSSOM.
"use strict";

function $(sel, root) { return (root || document).querySelector(sel); }

function csrfHeaders() {
  const meta = document.querySelector("meta[name=csrf-token]");
  return meta && meta.content ? { "X-CSRF-Token": meta.content } : {};
}

function applyDataStyles(root) {
  (root || document).querySelectorAll("[data-style]").forEach((el) => { el.style.cssText = el.dataset.style; });
}

function errorFrom(html, fallback) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const node = doc.querySelector("#error-message") || doc.querySelector("[role=alert]");
  return node ? node.textContent.trim() : fallback;
}

// -- Library: create a character by dropping images onto the page -----------------------
function setupCreate() {
  const form = $("#create");
  if (!form) return;
  const input = $("#new-files", form), name = $("#new-name", form), out = $("#create-error", form);
  const show = (text) => { out.textContent = text; out.hidden = !text; };
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) document.body.classList.remove("dragging"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    input.files = e.dataTransfer.files;
    if (name.value.trim()) form.requestSubmit();
    else { show(`${input.files.length} image(s) ready: name the character, then press Create.`); name.focus(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    show("");
    const button = $("button[type=submit]", form);
    button.disabled = true;
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers: csrfHeaders() });
      if (response.ok && response.redirected) { window.location.assign(response.url); return; }
      show(errorFrom(await response.text(), `upload failed (HTTP ${response.status})`));
    } catch (err) {
      show("The server cannot be reached; try again.");
    } finally {
      button.disabled = false;
    }
  });
}

// -- Jobs: follow one job's stream; reconnect when the server goes away ------------------
function followJob(box) {
  const id = box.dataset.followJob, onEnd = box.dataset.onEnd;
  const bar = $("progress", box), pct = $(".percent", box), state = $("[data-state]", box);
  const message = $("[data-message]", box), error = $("[data-error]", box);
  const conn = $("[data-connection]", box), cancel = $("[data-cancel]", box);
  let source = null, wait = 500, lost = null;

  function show(info) {
    const total = info.progress_total, step = info.progress_step;
    const value = total ? Math.round((100 * step) / total) : (["succeeded", "partial"].includes(info.state) ? 100 : 0);
    bar.value = value; bar.textContent = pct.textContent = `${value} %`;
    state.textContent = info.state; state.className = `badge state state-${info.state}`;
    box.dataset.jobState = info.state;
    message.textContent = info.message || "";
    error.textContent = info.error || ""; error.hidden = !info.error;
    if (cancel) cancel.hidden = ["succeeded", "partial", "failed", "cancelled"].includes(info.state);
  }
  function finished(final) {
    if (onEnd === "reload" && final === "succeeded") {
      window.location.replace(window.location.pathname + window.location.hash);
    } else if (onEnd === "results") {
      refreshResults();
    }
  }
  function open() {
    source = new EventSource(`/studio/jobs/${encodeURIComponent(id)}/events`);
    source.addEventListener("progress", (e) => {
      clearTimeout(lost); lost = null; conn.hidden = true; wait = 500;
      show(JSON.parse(e.data));
    });
    source.addEventListener("end", (e) => { source.close(); finished(JSON.parse(e.data).state); });
    source.onerror = () => {
      // The server ends each stream after a while and the browser reconnects within a
      // second: say the connection is lost only when no event has come back by then.
      if (lost === null) lost = setTimeout(() => { conn.hidden = false; }, 2000);
      if (source.readyState === EventSource.CLOSED) {  // the browser gave up: we retry
        setTimeout(open, wait);
        wait = Math.min(wait * 2, 4000);
      }
    };
  }
  open();
}

// -- Generate: the results grid, refreshed until identity scores arrive ------------------
async function refreshResults() {
  const holder = $("[data-results]");
  if (!holder) return;
  const id = holder.dataset.results;
  try {
    const show = new URLSearchParams(window.location.search).get("show");
    const query = show ? `?show=${encodeURIComponent(show)}` : "";
    const response = await fetch(`/studio/jobs/${encodeURIComponent(id)}/results${query}`);
    if (!response.ok) throw new Error(String(response.status));
    holder.innerHTML = await response.text();
    applyDataStyles(holder);
  } catch (err) {
    setTimeout(refreshResults, 1500);
    return;
  }
  const pending = $("[data-score-pending]", holder);
  if (!pending) return;
  if (!pending.dataset.scorePending) {
    try { await fetch(`/studio/jobs/${encodeURIComponent(id)}/score`, { method: "POST", headers: csrfHeaders() }); } catch (err) { /* retried below */ }
  }
  setTimeout(refreshResults, 1000);
}

// -- Jobs page: refresh the table while the page is open --------------------------------
function setupJobRows() {
  const rows = $("#job-rows");
  if (!rows) return;
  setInterval(async () => {
    try {
      const response = await fetch(rows.dataset.refresh);
      if (response.ok) rows.innerHTML = await response.text();
    } catch (err) { /* the server is restarting; try again at the next tick */ }
  }, 1500);
}

// -- Strengths: mark the value on the recommended-range bar -----------------------------
function setupStrengths() {
  document.querySelectorAll("input[data-recommended]").forEach((input) => {
    const [low, high] = input.dataset.recommended.split("-").map(Number);
    const wrap = input.closest(".strength"), mark = $("[data-mark]", wrap), warn = $("[data-outside]", wrap);
    const update = () => {
      const v = parseFloat(input.value);
      mark.hidden = isNaN(v) || input.disabled;
      if (!isNaN(v)) mark.style.left = `${Math.min(Math.max(v, 0), 2) * 50}%`;
      warn.hidden = isNaN(v) || input.disabled || (v >= low && v <= high);
    };
    input.addEventListener("input", update);
    update();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  applyDataStyles();
  setupCreate();
  setupJobRows();
  setupStrengths();
  document.querySelectorAll("[data-follow-job]").forEach(followJob);
});
