// Helpers shared by the list and the episode page.
"use strict";

async function api(url, options) {
  const response = await fetch(url, options);
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { body = { error: text }; }
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function badge(outcome) {
  const span = document.createElement("span");
  span.className = `badge ${outcome}`;
  span.textContent = outcome;
  return span;
}

// The reviewer's name is kept by the browser; empty means the server's --reviewer.
function reviewerInput(input) {
  input.value = localStorage.getItem("recap-reviewer") || "";
  input.addEventListener("change", () => localStorage.setItem("recap-reviewer", input.value.trim()));
}

// Single-key shortcuts, ignored while typing in a text field.
function onKeys(handlers) {
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.matches && target.matches("input, textarea, select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const handler = handlers[event.key];
    if (handler) { event.preventDefault(); handler(event); }
  });
}

// The list's filter/sort query, carried from the list into episode pages so j/k follow the same order.
const LIST_KEYS = ["task", "source", "policy_version", "iteration", "outcome", "sort", "order"];
function listQuery(params) {
  const out = new URLSearchParams();
  for (const key of LIST_KEYS) if (params.has(key)) out.set(key, params.get(key));
  return out;
}

function episodeUrl(id, query) {
  const q = query.toString();
  return `/episode/${encodeURIComponent(id)}${q ? "?" + q : ""}`;
}

function fmt(x, digits = 1) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }
