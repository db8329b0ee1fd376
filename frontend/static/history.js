// History page: a card per job, and one per batch or comparison (its jobs together). Unfinished cards follow
// their job (GET /jobs/{id}) or group (GET /batches/{id}, GET /compare/{id}) with ColorLab.poller until it
// finishes; cards can be selected to download their results as one zip (GET /results.zip) or deleted
// (DELETE on the same URLs).
"use strict";

(function () {
  const CL = window.ColorLab;
  const { $, FINISHED, STATUS_LABELS: LABELS } = CL;
  const allCards = () => [...document.querySelectorAll("#job-grid .job-card")];
  const isGroup = (card) => card.dataset.kind !== "job";
  const urlOf = (card) => isGroup(card) ? card.dataset.statusUrl : "/jobs/" + encodeURIComponent(card.dataset.jobId);
  const maxZip = Number($("history-toolbar").dataset.maxZip);

  function setStatus(card, status) {
    card.dataset.status = status;
    const badge = card.querySelector(".badge");
    badge.dataset.status = status;
    badge.textContent = LABELS[status] || status;
  }

  // ---- Following unfinished cards: at most MAX_FOLLOWED at a time, each every 2 s ----------------------
  const MAX_FOLLOWED = 12;
  const FOLLOW_MS = 2000;
  const waiting = allCards().filter((c) => !FINISHED.has(c.dataset.status));
  let followed = 0;

  function showJob(card, job) {
    if (job.status === card.dataset.status) return;
    setStatus(card, job.status);
    if (job.status === "done" && job.urls.result) {
      const img = card.querySelector("img");
      img.src = job.urls.thumb || job.urls.result;
      img.alt = img.alt.replace(/^Input photo/, "Colorized result");
    }
  }

  // The same words and badge as pages.group_card on the server.
  function groupSummary(statuses) {
    const count = (status) => statuses.filter((s) => s === status).length;
    const done = count("done");
    const words = [done === statuses.length ? `${done} done` : `${done} of ${statuses.length} done`];
    for (const status of ["failed", "cancelled"]) if (count(status)) words.push(`${count(status)} ${status}`);
    return words.join(" · ");
  }
  const groupStatus = (statuses) => ["running", "queued", "done", "failed"].find((s) => statuses.includes(s)) || "cancelled";

  function showGroup(card, group) {
    const jobs = group.items || group.jobs;  // a batch's items, a comparison's jobs
    const statuses = jobs.map((j) => j.status);
    card.dataset.done = String(statuses.filter((s) => s === "done").length);
    card.querySelector(".group-summary").textContent = groupSummary(statuses);
    if (groupStatus(statuses) !== card.dataset.status) setStatus(card, groupStatus(statuses));
    // the mosaic shows results as they come (a comparison lists its jobs in the methods' order)
    const thumbs = card.querySelectorAll(".job-mosaic img");
    const byThumb = new Map(jobs.map((j) => [j.urls.thumb.replace(/\?of=\w+$/, ""), j.urls.thumb]));
    thumbs.forEach((img) => {
      const latest = byThumb.get(img.getAttribute("src").replace(/\?of=\w+$/, ""));
      if (latest && latest !== img.getAttribute("src")) img.src = latest;
    });
  }

  function follow(card) {
    followed += 1;
    let latest = null;
    const stop = () => { followed -= 1; followNext(); };
    const poller = CL.poller(urlOf(card), {
      interval: FOLLOW_MS,
      onData: (data) => {
        latest = data;
        if (isGroup(card)) showGroup(card, data);
        else showJob(card, data);
        updateSelection();
        if (FINISHED.has(card.dataset.status)) stop();
      },
      done: () => FINISHED.has(card.dataset.status),
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
  const results = (card) => isGroup(card) ? Number(card.dataset.done) : Number(card.dataset.status === "done");
  const jobCount = (card) => isGroup(card) ? Number(card.dataset.total) : 1;
  const counted = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const jobsWord = (n) => counted(n, "job", "jobs");
  // What the cards are, as a person chose them: "1 batch (3 photos)", "2 jobs and 1 comparison (6 jobs in all)".
  function describe(cards) {
    const kinds = { job: 0, batch: 0, comparison: 0 };
    cards.forEach((c) => { kinds[c.dataset.kind] = (kinds[c.dataset.kind] || 0) + 1; });
    const parts = [];
    if (kinds.job) parts.push(jobsWord(kinds.job));
    if (kinds.batch) parts.push(counted(kinds.batch, "batch", "batches"));
    if (kinds.comparison) parts.push(counted(kinds.comparison, "comparison", "comparisons"));
    const words = parts.length > 1 ? parts.slice(0, -1).join(", ") + " and " + parts[parts.length - 1] : parts[0];
    const total = cards.reduce((sum, c) => sum + jobCount(c), 0);
    if (!kinds.batch && !kinds.comparison) return words;
    if (!kinds.job && kinds.batch === 1 && !kinds.comparison) return `${words} (${counted(total, "photo", "photos")})`;
    return `${words} (${jobsWord(total)} in all)`;
  }

  function zipQuery(cards) {
    const param = { job: "id", batch: "batch", comparison: "comparison" };
    return cards.map((c) => {
      const id = isGroup(c) ? c.dataset.entryId : c.dataset.jobId;
      return param[c.dataset.kind] + "=" + encodeURIComponent(id);
    }).join("&");
  }

  function updateSelection() {
    const chosen = selected();
    const ready = chosen.filter((c) => results(c) > 0);
    const count = ready.reduce((sum, c) => sum + results(c), 0);
    const link = $("download-selected");
    if (count && count <= maxZip) {
      link.href = "/results.zip?" + zipQuery(ready);
      link.removeAttribute("aria-disabled");
    } else {
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
    }
    link.textContent = !count ? "Download selected"
      : count <= maxZip ? `Download selected (${count})` : `${count} results: at most ${maxZip} per download`;
    $("delete-selected").disabled = chosen.length === 0;
    $("select-all").checked = chosen.length > 0 && chosen.length === allCards().length;
  }

  async function remove(card) {
    const url = urlOf(card);
    const headers = { Accept: "application/json" };
    // One DELETE cancels what has not finished and deletes it all
    const response = await fetch(url, { method: "DELETE", headers });
    if (response.status === 204 || response.status === 404) {
      card.remove();
      return null;
    }
    const body = await response.json().catch(() => null);
    return (body && body.detail) || `HTTP ${response.status}`;
  }

  async function removeMany(chosen) {
    const what = describe(chosen);
    // Where the keyboard goes on: the first card after those deleted (its link), else the status line
    const cards = allCards();
    const after = cards.slice(cards.indexOf(chosen[chosen.length - 1]) + 1).find((c) => !chosen.includes(c));
    const hadFocus = chosen.some((c) => c.contains(document.activeElement));
    const problems = (await Promise.all(chosen.map(remove))).filter(Boolean);
    $("history-status").textContent = problems.length
      ? `Could not delete ${problems.length}: ${problems[0]}`
      : `Deleted ${what}.`;
    if (!allCards().length) location.reload();  // shows the empty state
    updateSelection();
    if (hadFocus || document.activeElement === document.body) {
      const next = after && after.isConnected ? after.querySelector(".job-card-link") : null;
      (next || $("history-status")).focus();
    }
  }

  $("job-grid").addEventListener("change", (event) => {
    if (event.target.classList.contains("job-check")) updateSelection();
  });
  $("job-grid").addEventListener("click", (event) => {
    const button = event.target.closest(".job-delete");
    if (!button) return;
    const card = button.closest(".job-card");
    const name = card.querySelector(".job-card-name").textContent;
    const question = isGroup(card)
      ? `Delete “${name}” (${jobsWord(jobCount(card))}) and their images?`
      : `Delete “${name}” and its images?`;
    if (window.confirm(question)) removeMany([card]);
  });
  $("select-all").addEventListener("change", (event) => {
    allCards().forEach((c) => { c.querySelector(".job-check").checked = event.target.checked; });
    updateSelection();
  });
  $("delete-selected").addEventListener("click", () => {
    const chosen = selected();
    if (chosen.length && window.confirm(`Delete ${describe(chosen)} and their images?`)) removeMany(chosen);
  });
  updateSelection();
})();
