// The episode list: filters, sorting and paging all happen on the server; the URL holds the state.
"use strict";

const FILTER_NAMES = { task: "task", source: "source", policy_version: "policy", iteration: "iteration",
  outcome: "outcome" };
const PAGE = 50;
let params = new URLSearchParams(location.search);
let page = null;
let selected = 0;

function go(changes) {
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === "") params.delete(key); else params.set(key, value);
  }
  history.replaceState(null, "", "?" + params.toString());
  load();
}

function renderFilters(facets) {
  const box = document.getElementById("filters");
  box.replaceChildren();
  for (const [key, name] of Object.entries(FILTER_NAMES)) {
    const label = document.createElement("label");
    label.textContent = name;
    const select = document.createElement("select");
    select.id = `filter-${key}`;
    select.add(new Option("all", ""));
    for (const [value, count] of facets[key]) {
      select.add(new Option(`${value === "" ? "(none)" : value} (${count})`, value));
    }
    if (key === "outcome" && !facets.outcome.some(([v]) => v === "unlabelled")) {
      select.add(new Option("unlabelled (0)", "unlabelled"));
    }
    select.value = params.get(key) ?? "";
    select.addEventListener("change", () => go({ [key]: select.value, offset: null }));
    label.append(select);
    box.append(label);
  }
}

function renderRows(rows) {
  const body = document.querySelector("#episodes tbody");
  body.replaceChildren();
  const query = listQuery(params);
  rows.forEach((row, i) => {
    const tr = document.createElement("tr");
    tr.dataset.episode = row.episode_id;
    const share = row.intervention;
    const cells = [
      [row.episode_id, "id"], [row.task], [row.source], [row.policy_version || "–"],
      [row.iteration ?? "–", "num"], [row.length, "num"], [badge(row.outcome)],
      [share === null ? "?" : `${(100 * share).toFixed(0)}%`, "num"],
    ];
    for (const [value, cls] of cells) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.append(value);
      tr.append(td);
    }
    if (share) {
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(1, 40 * share)}px`;
      tr.lastChild.prepend(bar);
    }
    tr.addEventListener("click", () => { location.href = episodeUrl(row.episode_id, query); });
    if (i === selected) tr.classList.add("selected");
    body.append(tr);
  });
}

function renderSort() {
  const sort = params.get("sort") || "episode_id";
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === sort);
    th.classList.toggle("desc", th.dataset.sort === sort && params.get("order") === "desc");
  }
}

async function load() {
  const query = new URLSearchParams(params);
  query.set("limit", PAGE);
  page = await api(`/api/episodes?${query}`);
  selected = Math.min(selected, Math.max(page.rows.length - 1, 0));
  renderFilters(page.facets);
  renderRows(page.rows);
  renderSort();
  const first = page.total ? page.offset + 1 : 0;
  document.getElementById("page-info").textContent =
    `${first}–${page.offset + page.rows.length} of ${page.total}`;
  document.getElementById("counts").textContent =
    `${page.store_total} episodes, ${page.unlabelled} unlabelled`;
  document.getElementById("prev-page").disabled = page.offset === 0;
  document.getElementById("next-page").disabled = page.offset + page.rows.length >= page.total;
  document.body.dataset.ready = "1";
  performance.mark("recap-ready");  // the rows are in the page (read by benchmarks/review.py)
}

function turn(pages) {
  const offset = Math.max(0, (page ? page.offset : 0) + pages * PAGE);
  if (page && offset >= page.total) return;
  selected = 0;
  go({ offset: offset || null });
}

function move(delta) {
  const rows = document.querySelectorAll("#episodes tbody tr");
  if (!rows.length) return;
  rows[selected]?.classList.remove("selected");
  selected = Math.min(rows.length - 1, Math.max(0, selected + delta));
  rows[selected].classList.add("selected");
  rows[selected].scrollIntoView({ block: "nearest" });
}

async function nextUnlabelled() {
  // the first unlabelled episode in the list's current order
  const query = listQuery(params);
  query.set("outcome", "unlabelled");
  query.set("limit", "1");
  const found = await api(`/api/episodes?${query}`);
  if (found.rows.length) location.href = episodeUrl(found.rows[0].episode_id, listQuery(params));
  else document.getElementById("counts").textContent += " – none left to label here";
}

for (const th of document.querySelectorAll("th[data-sort]")) {
  th.addEventListener("click", () => {
    const same = (params.get("sort") || "episode_id") === th.dataset.sort;
    go({ sort: th.dataset.sort, order: same && params.get("order") !== "desc" ? "desc" : null, offset: null });
  });
}
document.getElementById("prev-page").addEventListener("click", () => turn(-1));
document.getElementById("next-page").addEventListener("click", () => turn(1));
reviewerInput(document.getElementById("reviewer"));
onKeys({
  n: nextUnlabelled, j: () => move(1), k: () => move(-1), "[": () => turn(-1), "]": () => turn(1),
  Enter: () => document.querySelectorAll("#episodes tbody tr")[selected]?.click(),
});
api("/api/info").then((info) => { document.getElementById("store").textContent = info.store; });
load().catch((error) => { document.getElementById("counts").textContent = `error: ${error.message}`; });
