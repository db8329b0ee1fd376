// Compare pages. The form (/compare): a photo, the methods that will run (GET /methods; every available one
// ticked), an optional colour reference (uploaded or picked) that brings in the reference methods, and
// POST /compare with inline errors. The view (/compare/{id}/view): polls GET /compare/{id} every second,
// fills one card per method as results arrive, a metrics table (best value per column highlighted) and an
// enlarge dialog with a slider.
"use strict";

(function () {
  const CL = window.ColorLab;
  const { $, el, showError } = CL;

  const form = $("compare-form");
  if (form) setupForm(form);
  const root = $("comparison");
  if (root) setupView(root);

  // =========================================================================================== the form
  function setupForm(form) {
    const files = { image: null, reference: null };
    let methods = [];

    // Drop zones (file picker, drag and drop, paste, Remove: see common.js); a new file clears the form error.
    CL.setupDropzones(form, files, () => showFormError(null));
    const references = CL.referencePicker(form, files); // upload one, or pick an earlier one or an example

    // ---- Methods: checkboxes (ColorLab.methodCard), every available one ticked (a reference-based one once a
    // reference is added)
    function chosen() {
      return [...form.querySelectorAll('input[name="methods"]:checked')].map((box) => box.value);
    }

    function needsReference(names) {
      return methods.some((m) => m.needs_reference && names.includes(m.name));
    }

    function updateCount() {
      const names = chosen();
      const n = names.length;
      $("method-count").textContent = methods.length ? `${n} of ${methods.filter((m) => m.available !== false).length} available selected` : "";
      if (!$("submit").disabled) $("submit").querySelector(".label").textContent = n > 1 ? `Compare ${n} methods` : n === 1 ? "Run 1 method" : "Compare";
    }

    async function loadMethods() {
      const list = $("method-list");
      const loaded = await CL.fetchMethods(list);
      if (!loaded) return;
      methods = loaded;
      // The methods that can run are cards; the others fold away under one line with their reasons.
      const usable = methods.filter((m) => m.available !== false);
      const missing = methods.filter((m) => m.available === false);
      list.replaceChildren(...usable.map((m) => CL.methodCard(m, { multiple: true, checked: !m.needs_reference })));
      list.removeAttribute("aria-busy");
      const others = $("unavailable-methods");
      others.hidden = !missing.length;
      $("unavailable-summary").textContent = missing.length === 1
        ? "1 more method is not available on this server"
        : `${missing.length} more methods are not available on this server`;
      $("unavailable-list").replaceChildren(...missing.map((m) => el("li", { "data-method": m.name },
        el("strong", { text: m.title || m.name }), document.createTextNode(": not installed on this server"))));
      // The reference step only matters when a reference-based method can run here.
      $("reference-section").hidden = !usable.some((m) => m.needs_reference);
      if (!$("reference-section").hidden) references.load();
      if (!usable.length) showError($("method-error"), "No method is installed on this server yet: ask its administrator.");
      updateCount();
    }

    $("method-list").addEventListener("change", () => {
      showError($("method-error"), "");
      showError($("reference-error"), "");
      updateCount();
    });

    // Adding a reference (or picking one) ticks the fast methods that use one (the exemplar takes minutes:
    // the person ticks it); removing it unticks them all.
    function tickReferenceMethods(on) {
      for (const m of methods) {
        if (!m.needs_reference || m.available === false || (on && m.iterative)) continue;
        $("method-" + m.name).checked = on;
      }
      showError($("reference-error"), "");
      updateCount();
    }
    form.addEventListener("filechange", (event) => {
      if (event.detail.key === "reference") tickReferenceMethods(Boolean(event.detail.file));
    });
    $("reference-list").addEventListener("change", () => tickReferenceMethods(true));

    const showFormError = (messages) => CL.showFormError($("form-error"), messages);

    function setBusy(busy) {
      const button = $("submit");
      button.disabled = busy;
      button.querySelector(".spinner").hidden = !busy;
      form.setAttribute("aria-busy", busy ? "true" : "false");
      if (busy) button.querySelector(".label").textContent = "Uploading…";
      else updateCount();
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      showFormError(null);
      const names = chosen();
      let invalid = null;
      if (!files.image) {
        showError($("image-error"), "Choose a photo to compare the methods on: drop it on the box above or use the file picker.");
        invalid = invalid || $("image");
      }
      if (methods.length && !names.length) {
        showError($("method-error"), "Tick at least one method.");
        invalid = invalid || $("method-list");
      }
      const refId = references.pickedId();
      if (needsReference(names) && !files.reference && !refId) {
        const needy = methods.filter((m) => m.needs_reference && names.includes(m.name)).map((m) => `“${m.title}”`);
        const listed = needy.length > 1 ? `${needy.slice(0, -1).join(", ")} and ${needy.at(-1)}` : needy[0];
        const [verb, it] = needy.length > 1 ? ["copy", "them"] : ["copies", "it"];
        showError($("reference-error"), `${listed} ${verb} colours from a reference photo: add one here, or untick ${it}.`);
        invalid = invalid || $("reference");
      }
      if (invalid) {
        CL.focusInvalid(invalid);
        return;
      }
      const data = new FormData();
      data.append("image", files.image, files.image.name || "image");
      if (names.length) data.append("methods", names.join(","));
      if (needsReference(names)) {
        if (files.reference) data.append("reference", files.reference, files.reference.name || "reference");
        else data.append("reference_id", refId);
      }
      CL.submit("/compare", data, {
        setBusy, showFormError, form,
        checking: "Checking the photo…",
        opening: "Opening comparison…",
        pageUrl: (body) => "/compare/" + encodeURIComponent(body.id) + "/view",
        detail: { capitalize: true, byStatus: { 429: "Too many uploads in a minute: wait a little and try again." } },
      });
    });

    window.addEventListener("pageshow", (event) => { if (event.persisted) setBusy(false); });
    loadMethods();
  }

  // =========================================================================================== the view
  function setupView(root) {
    const { FINISHED, STATUS_LABELS: LABELS, seconds } = CL;
    const METRICS_GRACE_POLLS = 20; // metrics land just after a job is marked done
    let data = null;
    let gracePolls = 0;

    // ---- Formatting
    const pct = (v) => (v * 100).toFixed(1) + "%";
    const signed = (v) => (v > 0 ? "+" : v < 0 ? "−" : "") + Math.abs(v).toFixed(1);

    // Columns: how to show a value and how good it is (higher score = better).
    const COLUMNS = [
      { key: "eq9_accuracy", label: "Eq. 9 accuracy", fmt: pct, score: (v) => v },
      { key: "auc", label: "AuC", fmt: pct, score: (v) => v },
      { key: "psnr", label: "PSNR", fmt: (v) => (v == null ? "∞" : v.toFixed(2) + " dB"), score: (v) => (v == null ? Infinity : v), nullMeans: true },
      { key: "ssim", label: "SSIM", fmt: (v) => v.toFixed(3), score: (v) => v },
      { key: "colourfulness", label: "Colourfulness", fmt: (v) => v.toFixed(1), score: (v, m) => -Math.abs(v - m.colourfulness_truth) },
      { key: "colourfulness_gap", label: "ΔCF", fmt: signed, score: (v) => -Math.abs(v) },
    ];

    // ---- Cards
    // The server renders one card per job; a job it did not know of gets a copy of the first card.
    function cardFor(job) {
      const found = root.querySelector(`.cmp-card[data-job-id="${CSS.escape(job.id)}"]`);
      if (found) return found;
      const model = root.querySelector('.cmp-card[data-kind="method"]');
      if (!model) return null;
      const card = model.cloneNode(true);
      card.dataset.jobId = job.id;
      card.dataset.method = job.method;
      card.querySelector(".cmp-card-title").textContent = job.method_title;
      const thumb = card.querySelector(".cmp-thumb");
      thumb.dataset.enlarge = job.id;
      thumb.disabled = true;
      thumb.setAttribute("aria-label", "Enlarge: " + job.method_title);
      const img = thumb.querySelector("img");
      img.src = imageUrl("input");
      img.alt = `${job.method_title}: waiting (gray input shown)`;
      card.querySelector(".cmp-progress").setAttribute("aria-label", job.method_title + " progress");
      card.querySelector(".cmp-download").hidden = true;
      card.querySelector(".cmp-job-link").href = job.urls.page;
      const last = [...root.querySelectorAll('.cmp-card[data-kind="method"]')].pop();
      last.after(card);
      return card;
    }

    function renderCard(job) {
      const card = cardFor(job);
      if (!card) return;
      const status = job.status;
      const finished = FINISHED.has(status);
      card.dataset.status = status;
      card.querySelector(".cmp-card-title").textContent = job.method_title;
      const badge = card.querySelector(".badge");
      badge.dataset.status = status;
      badge.textContent = LABELS[status] || status;

      const p = job.progress || {};
      const bar = card.querySelector(".cmp-progress");
      bar.hidden = finished;
      const percent = CL.setProgress(bar, p.fraction, status === "queued" || (status === "running" && !p.fraction));

      let meta;
      if (status === "queued") meta = "Waiting for a worker…";
      else if (status === "running") {
        meta = p.total && p.step != null ? `Iteration ${p.step} of ${p.total}` : "Colorizing…";
        if (p.fraction) meta += ` · ${percent}%`;
      } else if (status === "done") meta = seconds(job.run_seconds) ? "Ran for " + seconds(job.run_seconds) : "Done";
      else if (status === "cancelled") meta = "Cancelled before it finished";
      else meta = "";
      card.querySelector(".cmp-card-meta").textContent = meta;
      const error = card.querySelector(".cmp-card-error");
      error.hidden = status !== "failed";
      if (status === "failed") error.textContent = job.error || "The worker did not say why.";

      const img = card.querySelector(".cmp-thumb img");
      const thumb = card.querySelector(".cmp-thumb");
      const result = job.urls && job.urls.result;
      if (status === "done" && result) {
        if (img.getAttribute("src") !== result) {
          img.src = result;
          img.alt = `${job.method_title}: colorized result`;
        }
        thumb.disabled = false;
        const download = card.querySelector(".cmp-download");
        download.href = result;
        download.setAttribute("download", CL.resultFileName(job));
        download.setAttribute("aria-label", `Download the ${job.method_title} result (PNG)`);
        download.hidden = false;
      } else if (status === "running" && job.urls && job.urls.preview) {
        if (img.getAttribute("src") !== job.urls.preview) {
          const next = new Image();
          next.onload = () => { img.src = next.src; };
          next.src = job.urls.preview;
        }
      }
    }

    // ---- Metrics table
    // Drawn anew only when a job's status or scores changed: a screen reader reading the table every second
    // while jobs run would lose its place at each poll.
    let drawnMetrics = null;
    function renderMetrics(jobs) {
      const body = $("metrics-body");
      if (!body) return;
      const key = JSON.stringify([gracePolls < METRICS_GRACE_POLLS, jobs.map((j) => [j.id, j.status, j.metrics])]);
      if (key === drawnMetrics) return;
      drawnMetrics = key;
      const scored = jobs.filter((j) => j.status === "done" && j.metrics);
      const best = {};
      for (const col of COLUMNS) {
        const values = scored.map((j) => j.metrics).filter((m) => m[col.key] != null || (col.nullMeans && col.key in m));
        if (values.length < 2) continue; // one result is not a ranking
        best[col.key] = Math.max(...values.map((m) => col.score(m[col.key], m)));
      }
      const truth = scored.length ? scored[0].metrics.colourfulness_truth : null;
      if (truth != null) $("truth-colourfulness").textContent = truth.toFixed(1);
      renderVerdict(scored, best);

      const rows = jobs.map((job) => {
        const row = el("tr", { "data-job-id": job.id, "data-status": job.status },
          el("th", { scope: "row", text: job.method_title }));
        const m = job.metrics;
        if (job.status === "done" && m) {
          for (const col of COLUMNS) {
            const value = m[col.key];
            const missing = value == null && !col.nullMeans;
            const isBest = !missing && col.key in best && col.score(value, m) === best[col.key];
            const cell = el("td", { class: "num" + (isBest ? " is-best" : ""), "data-metric": col.key, "data-label": col.label, text: missing ? "–" : col.fmt(value) });
            if (isBest) cell.append(el("span", { class: "visually-hidden", text: " (best)" }));
            row.append(cell);
          }
        } else {
          const text = {
            queued: "Waiting for the result…",
            running: "Waiting for the result…",
            failed: "No result: the job failed",
            cancelled: "No result: cancelled",
          }[job.status] || (gracePolls < METRICS_GRACE_POLLS ? "Scoring…" : "No scores were recorded");
          row.append(el("td", { class: "num muted", colspan: String(COLUMNS.length), text }));
        }
        return row;
      });
      body.replaceChildren(...rows);
    }

    // The table in plain words: which method came closest to the real colours (AuC), and which has about
    // the original's colourfulness (neither dull nor garish).
    function renderVerdict(scored, best) {
      const verdict = $("metrics-verdict");
      if (!verdict) return;
      const winner = (key, score) => scored.find((j) => j.metrics[key] != null && score(j.metrics[key], j.metrics) === best[key]);
      const closest = "auc" in best ? winner("auc", (v) => v) : null;
      const lively = "colourfulness" in best ? winner("colourfulness", (v, m) => -Math.abs(v - m.colourfulness_truth)) : null;
      verdict.hidden = !closest;
      if (!closest) return;
      verdict.replaceChildren("In plain words: closest to the real colours: ", el("strong", { text: closest.method_title }),
        ...(lively ? ["; colours about as strong as the original's: ", el("strong", { text: lively.method_title })] : []), ".");
    }

    // ---- Page status
    function renderStatus(d) {
      const jobs = d.jobs;
      const done = jobs.filter((j) => j.status === "done").length;
      const failed = jobs.filter((j) => j.status === "failed").length;
      const badge = $("cmp-status");
      let status;
      let text;
      if (d.finished) {
        status = failed && !done ? "failed" : "done";
        text = failed ? `Done · ${failed} failed` : "Done";
      } else {
        status = jobs.some((j) => j.status === "running") ? "running" : "queued";
        text = `${done} of ${jobs.length} done`;
      }
      badge.dataset.status = status;
      badge.textContent = text;
      $("delete-comparison").hidden = !d.owned; // a shared link views; only its maker may delete it
      $("cmp-meta").textContent = [
        jobs.length && jobs[0].source_name ? jobs[0].source_name : null,
        d.width && d.height ? `${d.width} × ${d.height} px` : null,
        jobs.length === 1 ? "1 method" : `${jobs.length} methods`,
        d.has_ground_truth ? "colour original kept as ground truth" : null,
      ].filter(Boolean).join(" · ");
      document.title = (d.finished ? "Done" : `${done}/${jobs.length}`) + " · Comparison · ColorLab";
    }

    function render(d) {
      data = d;
      root.removeAttribute("aria-busy");
      d.jobs.forEach(renderCard);
      // The server's list is the truth: drop a card whose job it no longer lists (keep one as the model).
      const listed = new Set(d.jobs.map((j) => j.id));
      const cards = [...root.querySelectorAll('.cmp-card[data-kind="method"]')];
      cards.filter((c) => !listed.has(c.dataset.jobId)).forEach((c) => {
        if (root.querySelectorAll('.cmp-card[data-kind="method"]').length > 1) c.remove();
      });
      renderMetrics(d.jobs);
      renderStatus(d);
      if (viewer.open && current) showInViewer(current, false);
    }

    function settled(d) {
      if (!d.finished) return false;
      if (!d.has_ground_truth) return true;
      return d.jobs.every((j) => j.status !== "done" || j.metrics) || gracePolls >= METRICS_GRACE_POLLS;
    }

    // Deleting cancels the jobs still running and deletes them all with their images; then History.
    CL.deleteButton($("delete-comparison"), root.dataset.url, $("delete-error"), () => {
      const n = data ? data.jobs.length : 0;
      return `Delete this comparison (${n} ${n === 1 ? "result" : "results"}) and its images? This cannot be undone.`;
    });

    // ---- Polling
    const poller = CL.poller(root.dataset.url, {
      onData(d) {
        if (d.finished) gracePolls += 1;
        render(d);
      },
      done: settled,
      current: () => data,
      onNotFound() {
        const badge = $("cmp-status");
        badge.dataset.status = "cancelled";
        badge.textContent = "Not found";
        root.removeAttribute("aria-busy");
      },
    });

    // ---- Enlarge dialog: a before/after slider for a result, the plain image for the input or original
    const viewer = $("viewer");
    let current = null; // a job id, "input" or "original"

    function viewable() {
      const ids = ["input"];
      if (data) for (const j of data.jobs) if (j.status === "done" && j.urls.result) ids.push(j.id);
      if (root.dataset.groundTruth === "true") ids.push("original");
      return ids;
    }

    function baseChoice() {
      const checked = viewer.querySelector('input[name="viewer-base"]:checked');
      return checked ? checked.value : "input";
    }

    function imageUrl(kind) {
      const fixed = root.querySelector(`.cmp-card[data-kind="${kind}"] img`);
      return fixed ? fixed.getAttribute("src") : null;
    }

    function showInViewer(id, resetSlider) {
      current = id;
      const job = data && data.jobs.find((j) => j.id === id);
      const single = !job;
      $("viewer-compare").hidden = single;
      $("viewer-base").hidden = single;
      $("viewer-single").hidden = !single;
      const download = $("viewer-download");
      if (single) {
        const original = id === "original";
        $("viewer-title").textContent = original ? "Original (ground truth)" : "Gray input";
        const img = $("viewer-single-img");
        img.src = imageUrl(id);
        img.alt = original ? "Original colour photo (ground truth)" : "Gray input";
        download.href = img.src;
        download.setAttribute("download", `colorlab-${original ? "original" : "input"}-${root.dataset.id.slice(0, 8)}.png`);
      } else {
        $("viewer-title").textContent = job.method_title;
        const original = baseChoice() === "original";
        const base = $("viewer-base-img");
        base.src = original ? imageUrl("original") : imageUrl("input");
        base.alt = original ? "Original colour photo (ground truth)" : "Gray input";
        $("viewer-base-tag").textContent = original ? "Original" : "Gray";
        $("viewer-top").src = job.urls.result;
        $("viewer-top").alt = `${job.method_title}: colorized result`;
        if (data.width && data.height) {
          CL.fitToWindow($("viewer-compare"), data.width, data.height, 72);
        }
        if (resetSlider) { $("viewer-range").value = "50"; moveSlider(); }
        download.href = job.urls.result;
        download.setAttribute("download", CL.resultFileName(job));
      }
      const ids = viewable();
      $("viewer-prev").disabled = ids.length < 2;
      $("viewer-next").disabled = ids.length < 2;
    }

    function step(delta) {
      const ids = viewable();
      const i = ids.indexOf(current);
      showInViewer(ids[(i + delta + ids.length) % ids.length], true);
    }

    const moveSlider = CL.slider($("viewer-compare"), $("viewer-range"));
    $("viewer-base").addEventListener("change", () => { if (current) showInViewer(current, false); });
    $("viewer-prev").addEventListener("click", () => step(-1));
    $("viewer-next").addEventListener("click", () => step(1));
    $("viewer-close").addEventListener("click", () => viewer.close());
    // A click on the backdrop (outside the dialog box) closes it.
    viewer.addEventListener("click", (event) => { if (event.target === viewer) viewer.close(); });
    viewer.addEventListener("keydown", (event) => {
      if (event.target.matches("input")) return; // the slider and the radio buttons use the arrow keys
      if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
      if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
    });
    viewer.addEventListener("close", () => { current = null; });

    $("cmp-grid").addEventListener("click", (event) => {
      const button = event.target.closest(".cmp-thumb");
      if (!button || button.disabled) return;
      showInViewer(button.dataset.enlarge, true);
      viewer.showModal();
      $("viewer-close").focus();
    });

    poller.poll();
  }
})();
