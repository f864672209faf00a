// The episode page: video and plots share one cursor (the step on screen); labels are compare-and-set writes.
"use strict";

const episodeId = decodeURIComponent(location.pathname.split("/")[2]);
const pageParams = new URLSearchParams(location.search);
const query = listQuery(pageParams);
const video = document.getElementById("video");
const status = document.getElementById("status");
let data = null;          // the episode payload
let labelVersion = null;  // the label version this page's decision is based on
let plots = [];
let step = 0;
let failureStep = null;   // the failure moment to send with the next failure label
let neighbours = {};

function say(text, kind) { status.textContent = text; status.className = `status ${kind || ""}`; }

function setStep(next) {
  step = Math.min(data.length - 1, Math.max(0, next));
  for (const plot of plots) plot.setCursor(step);
  const timeline = document.getElementById("timeline");
  timeline.dataset.step = step;
  document.getElementById("clock").textContent =
    `step ${step + 1} / ${data.length} · ${(step / data.fps).toFixed(2)} s of ${data.duration_s.toFixed(2)} s`;
}

function seek(target) {
  if (data.cameras.length) video.currentTime = (target + 0.5) / data.fps;  // the cursor follows on "seeked"
  else setStep(target);
}

function followVideo() {
  setStep(Math.floor(video.currentTime * data.fps));
  if (!video.paused && !video.ended) requestAnimationFrame(followVideo);
}

function renderLabel(label) {
  labelVersion = label.version;
  document.getElementById("outcome").replaceChildren(badge(label.outcome));
  const list = document.getElementById("history");
  list.replaceChildren();
  for (const event of [...label.history].reverse()) {
    const li = document.createElement("li");
    const moment = event.failure_time !== undefined && event.failure_time !== null
      ? ` at ${event.failure_time.toFixed(2)} s` : "";
    li.textContent = `${event.time.slice(0, 19).replace("T", " ")}  ${event.outcome}${moment}  ` +
      `${event.by || ""}${event.note ? " – " + event.note : ""}`;
    list.append(li);
  }
  const latest = label.history[label.history.length - 1];
  const marked = latest.failure_time !== undefined && latest.failure_time !== null
    ? Math.floor(latest.failure_time * data.fps) : null;
  showFailureMoment(marked);
}

function showFailureMoment(marked) {
  failureStep = marked;
  document.getElementById("failure-moment").textContent =
    marked === null ? "none" : `step ${marked + 1} (${(marked / data.fps).toFixed(2)} s)`;
  for (const plot of plots) { plot.o.marker = marked; plot.draw(); }
}

function renderFacts() {
  const facts = [["episode", data.episode_id], ["task", data.task], ["source", data.source],
    ["policy", data.policy_version || "–"], ["iteration", data.iteration ?? "–"],
    ["steps", `${data.length} (${data.duration_s.toFixed(1)} s at ${data.fps} Hz)`],
    ["intervention", `${(100 * data.intervention_share).toFixed(0)}% of steps`],
    ["recorded", data.created.slice(0, 19).replace("T", " ")]];
  const dl = document.getElementById("facts");
  dl.replaceChildren();
  for (const [name, value] of facts) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value;
    dl.append(dt, dd);
  }
}

function curveCanvas(title) {
  const canvas = document.createElement("canvas");
  canvas.className = "curve";
  canvas.title = title;
  const box = document.createElement("div");
  box.className = "plot";
  box.append(canvas);
  document.getElementById("curves").append(box);
  return canvas;
}

function renderPlots() {
  document.getElementById("curves").replaceChildren();
  const common = { length: data.length, segments: data.intervention };
  const labels = data.labels && data.labels.covers_episode ? data.labels : null;
  const indicator = labels ? labels.indicator : null;
  plots = [new StepPlot(document.getElementById("timeline"),
    { ...common, title: "timeline – click to seek", ticks: indicator }, seek)];
  if (labels && labels.value) {
    plots.push(new StepPlot(curveCanvas("value"), { ...common, title: `value (${labels.name})`,
      series: [{ values: labels.value, rises: true }] }, seek));
  }
  if (labels && labels.advantage) {
    plots.push(new StepPlot(curveCanvas("advantage"), { ...common, ticks: indicator,
      title: `advantage, threshold ${labels.threshold === null ? "–" : labels.threshold.toFixed(4)}, I = 1 below`,
      threshold: labels.threshold, series: [{ values: labels.advantage, color: "#7c3aed" }] }, seek));
  }
  if (data.labels && !labels) say(`label set ${data.labels.name} does not cover this episode`);
  for (const [key, name] of [["state", "state"], ["action", "action"]]) {
    plots.push(new StepPlot(curveCanvas(name), { ...common, title: `${name} (${data[key].length} dims)`,
      series: data[key].map((values, i) => ({ values, color: PALETTE[i % PALETTE.length] })) }, seek));
  }
}

function renderVideo() {
  const captions = document.getElementById("cameras");
  captions.replaceChildren();
  if (!data.cameras.length) { video.remove(); return; }
  const total = data.cameras.reduce((sum, c) => sum + c.width, 0);
  for (const camera of data.cameras) {
    const span = document.createElement("span");
    span.style.width = `${(100 * camera.width) / total}%`;
    span.textContent = camera.name;
    captions.append(span);
  }
  video.src = `/api/episodes/${encodeURIComponent(episodeId)}/video`;
  video.addEventListener("seeked", () => setStep(Math.floor(video.currentTime * data.fps)));
  video.addEventListener("timeupdate", () => setStep(Math.floor(video.currentTime * data.fps)));
  video.addEventListener("play", () => requestAnimationFrame(followVideo));
  video.addEventListener("loadeddata", () => performance.mark("recap-video"), { once: true });
  video.addEventListener("error", () => say(`the video could not be played (${video.error?.message || "error"})`, "error"));
}

async function label(outcome) {
  const body = { outcome, version: labelVersion, note: document.getElementById("note").value.trim() };
  const reviewer = document.getElementById("reviewer").value.trim();
  if (reviewer) body.reviewer = reviewer;
  if (outcome === "failure" && failureStep !== null) body.failure_time = failureStep / data.fps;
  try {
    const label = await api(`/api/episodes/${encodeURIComponent(episodeId)}/label`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    renderLabel(label);
    document.getElementById("note").value = "";
    say(`saved: ${outcome}`, "ok");
  } catch (error) {
    say(error.status === 409 ? `not saved: ${error.message}` : `error: ${error.message}`, "error");
  }
}

function open(id, none) {
  if (id) location.href = episodeUrl(id, new URLSearchParams(pageParams));
  else say(none);
}

async function load() {
  const suffix = pageParams.has("labels") ? `?labels=${encodeURIComponent(pageParams.get("labels"))}` : "";
  data = await api(`/api/episodes/${encodeURIComponent(episodeId)}${suffix}`);
  document.title = `${data.episode_id} – recap review`;
  document.getElementById("title").textContent = data.episode_id;
  document.getElementById("back").href = `/?${query}`;
  const select = document.getElementById("label-set");
  select.add(new Option("none", ""));
  for (const name of data.label_sets) select.add(new Option(name, name));
  select.value = data.labels ? data.labels.name : "";
  select.addEventListener("change", () => {
    pageParams.set("labels", select.value || "");
    location.search = pageParams.toString();
  });
  renderFacts();
  renderPlots();
  renderLabel(data.label);
  renderVideo();
  setStep(0);
  performance.mark("recap-painted");  // curves drawn (read by benchmarks/review.py)
  neighbours = await api(`/api/episodes/${encodeURIComponent(episodeId)}/neighbours?${query}`);
  document.getElementById("position").textContent =
    neighbours.position >= 0 ? `${neighbours.position + 1} of ${neighbours.total} in the list` : "";
  document.body.dataset.ready = "1";
}

document.getElementById("label-success").addEventListener("click", () => label("success"));
document.getElementById("label-failure").addEventListener("click", () => label("failure"));
document.getElementById("label-clear").addEventListener("click", () => label("unlabelled"));
document.getElementById("mark-failure").addEventListener("click", () => showFailureMoment(step));
document.getElementById("unmark-failure").addEventListener("click", () => showFailureMoment(null));
window.addEventListener("resize", () => plots.forEach((p) => p.draw()));
reviewerInput(document.getElementById("reviewer"));
onKeys({
  s: () => label("success"), f: () => label("failure"), u: () => label("unlabelled"),
  j: () => open(neighbours.next, "this is the last episode of the list"),
  k: () => open(neighbours.previous, "this is the first episode of the list"),
  n: () => open(neighbours.next_unlabelled, "no other unlabelled episode in the list"),
  m: () => showFailureMoment(step),
  " ": () => (video.paused ? video.play() : video.pause()),
  ",": () => seek(step - 1), ".": () => seek(step + 1),
});
load().catch((error) => say(`error: ${error.message}`, "error"));
