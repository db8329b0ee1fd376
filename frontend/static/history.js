// History page: cards of unfinished jobs follow their job (GET /jobs/{id}, ColorLab.poller) until it
// finishes; cards can be selected to download their results as one zip (GET /results.zip) or deleted
// (DELETE /jobs/{id}).
"use strict";

(function () {
  const CL = window.ColorLab;
  const { $, FINISHED, STATUS_LABELS: LABELS } = CL;
  const allCards = () => [...document.querySelectorAll(".job-card")];

  // ---- Following unfinished jobs: at most MAX_FOLLOWED at a time, each every 2 s ----------------------
  const MAX_FOLLOWED = 12;
  const FOLLOW_MS = 2000;
  const waiting = allCards().filter((c) => !FINISHED.has(c.dataset.status));
  let followed = 0;

  function show(card, job) {
    if (job.status === card.dataset.status) return;
    card.dataset.status = job.status;
    const badge = card.querySelector(".badge");
    badge.dataset.status = job.status;
    badge.textContent = LABELS[job.status] || job.status;
    if (job.status === "done" && job.urls.result) {
      const img = card.querySelector("img");
      img.src = job.urls.thumb || job.urls.result;
      img.alt = img.alt.replace(/^Input photo/, "Colorized result");
    }
    updateSelection();
  }

  function follow(card) {
    followed += 1;
    let latest = null;
    const stop = () => { followed -= 1; followNext(); };
    const poller = CL.poller("/jobs/" + encodeURIComponent(card.dataset.jobId), {
      interval: FOLLOW_MS,
      onData: (job) => {
        latest = job;
        show(card, job);
        if (FINISHED.has(job.status)) stop();
      },
      done: (job) => FINISHED.has(job.status),
      current: () => latest,
      onNotFound: stop,  // deleted meanwhile (from this page or another)
    });
    poller.schedule(FOLLOW_MS);
  }

  function followNext() {
    while (followed < MAX_FOLLOWED && waiting.length) follow(waiting.shift());
  }
  followNext();

  // ---- Selection: download as one zip, delete ---------------------------------------------------------
  const selected = () => allCards().filter((c) => c.querySelector(".job-check").checked);

  function updateSelection() {
    const chosen = selected();
    const done = chosen.filter((c) => c.dataset.status === "done");
    const link = $("download-selected");
    if (done.length) {
      link.href = "/results.zip?" + done.map((c) => "id=" + encodeURIComponent(c.dataset.jobId)).join("&");
      link.removeAttribute("aria-disabled");
    } else {
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
    }
    link.textContent = done.length ? `Download selected (${done.length})` : "Download selected";
    $("delete-selected").disabled = chosen.length === 0;
    $("select-all").checked = chosen.length > 0 && chosen.length === allCards().length;
  }

  async function remove(card) {
    const url = "/jobs/" + encodeURIComponent(card.dataset.jobId);
    const headers = { Accept: "application/json" };
    // An unfinished job is cancelled first (the first DELETE), then deleted.
    let response = await fetch(url, { method: "DELETE", headers });
    if (response.status === 200) response = await fetch(url, { method: "DELETE", headers });
    if (response.status === 204 || response.status === 404) {
      card.remove();
      return null;
    }
    const body = await response.json().catch(() => null);
    return (body && body.detail) || `HTTP ${response.status}`;
  }

  async function removeMany(chosen) {
    const problems = (await Promise.all(chosen.map(remove))).filter(Boolean);
    $("history-status").textContent = problems.length
      ? `Could not delete ${problems.length}: ${problems[0]}`
      : `Deleted ${chosen.length} ${chosen.length === 1 ? "job" : "jobs"}.`;
    if (!allCards().length) location.reload();  // shows the empty state
    updateSelection();
  }

  $("job-grid").addEventListener("change", (event) => {
    if (event.target.classList.contains("job-check")) updateSelection();
  });
  $("job-grid").addEventListener("click", (event) => {
    const button = event.target.closest(".job-delete");
    if (!button) return;
    const card = button.closest(".job-card");
    const name = card.querySelector(".job-card-name").textContent;
    if (window.confirm(`Delete “${name}” and its images?`)) removeMany([card]);
  });
  $("select-all").addEventListener("change", (event) => {
    allCards().forEach((c) => { c.querySelector(".job-check").checked = event.target.checked; });
    updateSelection();
  });
  $("delete-selected").addEventListener("click", () => {
    const chosen = selected();
    if (chosen.length && window.confirm(`Delete ${chosen.length} ${chosen.length === 1 ? "job" : "jobs"} and their images?`)) {
      removeMany(chosen);
    }
  });
  updateSelection();
})();
