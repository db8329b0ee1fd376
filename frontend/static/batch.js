// Batch page: polls GET /batches/{id}; a grid of the photos fills in as results arrive; a click on a finished
// photo shows it before/after; "Download all" takes the finished results as one zip.
"use strict";

(function () {
  const root = document.getElementById("batch");
  if (!root) return;
  const CL = window.ColorLab;
  const { $, el, showError, STATUS_LABELS: LABELS } = CL;
  const url = root.dataset.batchUrl;
  const cards = new Map();
  let viewing = null;

  function card(item) {
    const img = el("img", { src: item.urls.thumb, alt: "", loading: "lazy" });
    const badge = el("span", { class: "badge", "data-status": item.status, text: LABELS[item.status] || item.status });
    // Named by what it shows (the photo's name and status), so a screen reader hears "Failed" too
    const open = el("button", { type: "button", class: "job-card-link" },
      el("span", { class: "job-thumb" }, img),
      el("span", { class: "job-card-body" },
        el("span", { class: "visually-hidden", text: "Before and after: " }),
        el("span", { class: "job-card-name", text: item.name || "photo" }),
        el("span", { class: "job-card-meta" }, badge),
        el("span", { class: "job-card-error", text: item.error || "", hidden: !item.error })));
    const node = el("li", { class: "job-card", "data-status": item.status, "data-job-id": item.job_id }, open);
    open.addEventListener("click", () => show(node.item, open));
    node.item = item;
    return node;
  }

  function update(node, item) {
    node.item = item;
    if (node.dataset.status === item.status) return;
    node.dataset.status = item.status;
    const badge = node.querySelector(".badge");
    badge.dataset.status = item.status;
    badge.textContent = LABELS[item.status] || item.status;
    const error = node.querySelector(".job-card-error"); // why it failed, shown: a tooltip reaches no one on touch
    error.textContent = item.error || "";
    error.hidden = !item.error;
    if (item.urls.result) node.querySelector("img").src = item.urls.thumb;
  }

  // A tall photo's before/after stays within the window (as on the job page). The viewer is scrolled to
  // once its photo has its height: scrolled to before, the loading images pushed it below a phone's screen.
  let scrollOnLoad = false;
  $("compare-base").addEventListener("error", () => { scrollOnLoad = false; });
  $("compare-base").addEventListener("load", (event) => {
    const img = event.target;
    if (img.naturalWidth && img.naturalHeight) CL.fitToWindow($("compare"), img.naturalWidth, img.naturalHeight, 75);
    if (scrollOnLoad) $("viewer").scrollIntoView({ block: "start" });
    scrollOnLoad = false;
  });

  // The viewer sits after the whole grid: focus goes to it, and "Back to the photos" returns to the card.
  let openedFrom = null;
  function show(item, from) {
    viewing = item;
    if (from) openedFrom = from;
    $("viewer").hidden = false;
    $("viewer-heading").textContent = `Before and after: ${item.name || "photo"}`;
    $("viewer-page").href = item.urls.page;
    $("compare-base").src = item.urls.input;
    $("compare-top").src = item.urls.result || item.urls.input;
    scrollOnLoad = !$("compare-base").complete;
    $("viewer").scrollIntoView({ block: "start" });
    if (from) $("viewer-heading").focus({ preventScroll: true });
  }
  $("viewer-back").addEventListener("click", () => {
    if (openedFrom && openedFrom.isConnected) {
      openedFrom.focus();
      openedFrom.scrollIntoView({ block: "nearest" });
    }
  });

  function render(batch) {
    root.removeAttribute("aria-busy");
    const grid = $("batch-grid");
    for (const item of batch.items) {
      const node = cards.get(item.job_id);
      if (node) update(node, item);
      else {
        const fresh = card(item);
        cards.set(item.job_id, fresh);
        grid.append(fresh);
      }
    }
    const counts = batch.counts || {};
    const done = counts.done || 0;
    const failed = (counts.failed || 0) + (counts.cancelled || 0);
    const waiting = batch.total - done - failed;
    CL.setProgress($("batch-progress"), batch.progress, false);
    $("batch-pct").textContent = Math.round(batch.progress * 100) + "%";
    $("batch-meta").textContent = `${batch.method_title} · ${batch.total} ${batch.total === 1 ? "photo" : "photos"}`;
    $("batch-message").textContent = !batch.total ? "Every photo of this batch was deleted."
      : batch.finished ? `Finished: ${done} colorized${failed ? `, ${failed} failed` : ""}.`
      : `${done} of ${batch.total} colorized; ${waiting} still to do…`;
    total = batch.total;
    $("delete-batch").hidden = !batch.owned; // a shared link views; only its maker may delete it
    $("stop-batch").hidden = !batch.owned || batch.finished;
    $("download-all").hidden = done === 0;
    $("download-all-jpg").hidden = done === 0;
    // While photos are still running a zip holds only the finished ones: the buttons say how many.
    $("download-all-label").textContent = batch.finished ? "Download all" : `Download ${done} finished`;
    $("download-all-jpg").textContent = batch.finished ? "All as JPEG" : `${done} as JPEG`;
    const rejected = batch.rejected || [];
    $("rejected").hidden = rejected.length === 0;
    $("rejected-count").textContent = `${rejected.length} ${rejected.length === 1 ? "file was" : "files were"} not a usable photo and left out:`;
    $("rejected-list").replaceChildren(...rejected.map((r) => el("li", { text: `${r.name}: ${r.detail}` })));
    if (viewing) {
      const current = batch.items.find((i) => i.job_id === viewing.job_id);
      if (current && current.urls.result && !viewing.urls.result) show(current);
    }
    document.title = `${Math.round(batch.progress * 100)}% · Batch · ColorLab`;
  }

  // Deleting cancels the photos still to do and deletes every photo with its images; then History.
  let total = 0;
  CL.deleteButton($("delete-batch"), url, $("delete-error"), () =>
    `Delete this batch (${total} ${total === 1 ? "photo" : "photos"}) and its images? This cannot be undone.`);

  // Stopping cancels the photos still to do and keeps the finished ones (and their zip).
  $("stop-batch").addEventListener("click", async () => {
    const button = $("stop-batch");
    button.disabled = true;
    showError($("delete-error"), "");
    try {
      const response = await fetch(url + "/cancel", { method: "POST", headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => null);
      if (response.ok && body) render(body);
      else showError($("delete-error"), (body && body.detail) || `Could not stop the batch (HTTP ${response.status}).`);
    } catch (err) {
      showError($("delete-error"), "Could not reach the server to stop the batch: " + err.message);
    } finally {
      button.disabled = false;
    }
  });

  CL.slider($("compare"), $("compare-range"));
  const poller = CL.poller(url, {
    onData: render,
    done: (batch) => batch.finished,
    current: () => null,
    onNotFound() {
      root.removeAttribute("aria-busy");
      $("batch-message").textContent = "This batch no longer exists.";
    },
    onRetry(status) {
      $("batch-message").textContent = status == null ? "Lost contact with the server; retrying…" : `The server answered ${status}; retrying…`;
    },
  });
  poller.poll();
})();
