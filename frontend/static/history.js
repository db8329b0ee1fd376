// History page: cards of unfinished jobs follow their job (GET /jobs/{id}) until it finishes.
"use strict";

(function () {
  const LABELS = { queued: "Queued", running: "Running", done: "Done", failed: "Failed", cancelled: "Cancelled" };
  const FINISHED = new Set(["done", "failed", "cancelled"]);
  const cards = () => [...document.querySelectorAll(".job-card")].filter((c) => !FINISHED.has(c.dataset.status));

  async function refresh(card) {
    const response = await fetch("/jobs/" + encodeURIComponent(card.dataset.jobId), {
      headers: { Accept: "application/json" }, cache: "no-store",
    });
    if (!response.ok) return;
    const job = await response.json();
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
  }

  function tick() {
    const pending = cards();
    if (!pending.length) return;
    Promise.allSettled(pending.slice(0, 12).map(refresh)).then(() => setTimeout(tick, 2000));
  }
  setTimeout(tick, 2000);
})();
