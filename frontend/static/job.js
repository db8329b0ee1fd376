// Job page: polls GET /jobs/{id} until the job finishes, shows progress (iteration k/N, losses and a live
// preview for iterative methods), cancels (POST /jobs/{id}/cancel), and ends in a before/after comparison.
"use strict";

(function () {
  const root = document.getElementById("job");
  if (!root) return;

  const CL = window.ColorLab;
  const { $, el, FINISHED, STATUS_LABELS: LABELS } = CL;
  const jobUrl = root.dataset.jobUrl;
  const jobId = root.dataset.jobId;
  let resultShown = false;
  let lastPreview = null;
  let job = null;

  // ---- Formatting ------------------------------------------------------------------------------------
  const seconds = (value) => CL.seconds(value) ?? "–";

  function formatLoss(value) {
    if (typeof value !== "number") return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs >= 1e5 || abs < 1e-3)) return value.toExponential(3);
    return value.toPrecision(5);
  }

  function when(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  // ---- Rendering -------------------------------------------------------------------------------------
  function setProgress(fraction, indeterminate) {
    const pct = CL.setProgress($("progress"), fraction, indeterminate);
    $("progress-pct").textContent = indeterminate ? "" : pct + "%";
  }

  function renderDetails(data) {
    const rows = [
      ["File", data.source_name || "–"],
      ["Method", data.method_title || data.method],
      ["Photo", data.width && data.height ? `${data.width} × ${data.height} px` : "–"],
      ["Created", when(data.created_at)],
      ["Waited in queue", seconds(data.queue_seconds)],
      data.status === "running" && data.started_at
        ? ["Running for", seconds((Date.now() - new Date(data.started_at).getTime()) / 1000)]
        : ["Ran for", seconds(data.run_seconds)],
    ];
    if (data.attempts > 1) rows.push(["Attempts", String(data.attempts)]);
    const resumedFrom = (data.progress || {}).resumed_from;
    if (resumedFrom) rows.push(["Went on from", `iteration ${resumedFrom} (its worker had stopped; the iterations before were kept)`]);
    // Iterations actually run (the "iterations" option may be 0 = the mode's default).
    if (data.iterations) rows.push(["Iterations run", `${data.iterations.run} of ${data.iterations.planned}`]);
    for (const [key, value] of Object.entries(data.params || {})) {
      if (data.iterations && key === "iterations") continue;
      if (key === "hints") { // a list of points: how many (they are shown under "Fix colours")
        if (Array.isArray(value) && value.length) rows.push(["Colour hints", String(value.length)]);
        continue;
      }
      rows.push([key.replace(/_/g, " "), String(value)]);
    }
    rows.push(["Job id", data.id]);
    const list = $("details");
    list.replaceChildren(...rows.map(([k, v]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      if (k === "Job id") {
        const code = document.createElement("code");
        code.textContent = v;
        dd.append(code);
      } else dd.textContent = v;
      div.append(dt, dd);
      return div;
    }));
  }

  function renderLive(data) {
    const p = data.progress || {};
    const iterative = p.total != null && p.total > 0 && p.step != null;
    const hasLosses = p.losses && Object.keys(p.losses).length > 0;
    const preview = data.urls && data.urls.preview;
    const showLive = data.status === "running" && (iterative || hasLosses || preview);
    $("live").hidden = !showLive;
    if (!showLive) return;
    $("iteration").textContent = iterative ? `${p.step} / ${p.total}` : "–";
    const losses = $("losses");
    root.querySelector(".losses-heading").hidden = !hasLosses; // none while preparing
    losses.replaceChildren(...Object.entries(p.losses || {}).map(([name, value]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      const label = name.replace(/_/g, " ");
      dt.textContent = label.charAt(0).toUpperCase() + label.slice(1);
      dd.textContent = formatLoss(value);
      div.append(dt, dd);
      return div;
    }));
    const img = $("preview");
    const figure = img.closest("figure");
    if (data.width && data.height) {
      // Scale the small working-size preview up to the column, but keep tall photos within the window.
      CL.fitToWindow(figure, data.width, data.height, 60);
    }
    figure.hidden = !preview && !lastPreview;
    if (preview && preview !== lastPreview) {
      // Load off-screen first so the visible preview never flashes empty.
      const next = new Image();
      next.onload = () => { img.src = next.src; figure.hidden = false; };
      next.src = preview;
      lastPreview = preview;
    }
  }

  function render(data) {
    job = data;
    root.removeAttribute("aria-busy");
    const status = data.status;
    const finished = FINISHED.has(status);
    const badge = $("job-status");
    badge.dataset.status = status;
    badge.textContent = LABELS[status] || status;
    $("job-title").textContent = data.source_name || data.method_title || data.method || "Colorization";
    $("job-meta").textContent = [
      data.source_name ? data.method_title || data.method : null,
      data.width && data.height ? `${data.width} × ${data.height} px` : null,
      data.has_ground_truth ? "colour original kept as ground truth" : null,
    ].filter(Boolean).join(" · ");
    // A job of a comparison links back to it.
    const group = $("job-group");
    group.hidden = !data.group_id;
    if (data.group_id) group.querySelector("a").href = "/compare/" + encodeURIComponent(data.group_id) + "/view";
    // A re-run (other options, colour hints) links back to the job it was made from.
    const rerunOf = $("job-rerun-of");
    rerunOf.hidden = !data.rerun_of;
    if (data.rerun_of) {
      const link = rerunOf.querySelector("a");
      link.href = "/jobs/" + encodeURIComponent(data.rerun_of) + "/view";
      link.querySelector("code").textContent = data.rerun_of.slice(0, 8);
    }
    const batch = $("job-batch");
    batch.hidden = !data.batch_id;
    if (data.batch_id) batch.querySelector("a").href = "/batches/" + encodeURIComponent(data.batch_id) + "/view";

    const p = data.progress || {};
    let message = p.message;
    const inLine = CL.queueText(data);
    if (!message) {
      message = {
        queued: data.error ? data.error : inLine || "Waiting for a worker…",
        running: "Colorizing…",
        done: "Finished.",
        failed: "The colorization failed.",
        cancelled: "Cancelled.",
      }[status];
    }
    if (status === "running" && p.total && p.step != null && (!p.message || /^iteration\b/i.test(p.message))) {
      message = `Iteration ${p.step} of ${p.total}: optimising the colours…`;
      if (inLine) message += ` (${inLine})`;
    }
    // The worker's phase messages are lower-case ("preparing: loading the network"): a sentence here.
    $("progress-message").textContent = message ? message.charAt(0).toUpperCase() + message.slice(1) : "";
    setProgress(status === "done" ? 1 : p.fraction, status === "queued" || (status === "running" && !p.fraction));
    $("progress-section").hidden = status === "done" || status === "cancelled" || status === "failed";
    announce(data, status, p);

    const pending = $("pending-input");
    const showPending = !finished && !(data.urls && data.urls.preview) && !lastPreview;
    pending.hidden = !showPending;
    if (showPending && !$("pending-img").getAttribute("src")) $("pending-img").src = data.urls.input;

    renderLive(data);

    // Only its maker may cancel or delete it: a shared link views (data.owned, from the server).
    const cancel = $("cancel");
    cancel.hidden = finished || !data.owned;
    $("error-section").hidden = status !== "failed";
    if (status === "failed") $("error-text").textContent = data.error || "The worker did not say why.";
    $("cancelled-section").hidden = status !== "cancelled";
    const stopped = status === "failed" || status === "cancelled";
    $("stopped-section").hidden = !stopped;
    if (stopped && !$("stopped-img").getAttribute("src")) $("stopped-img").src = data.urls.thumb || data.urls.input;
    $("again").hidden = status !== "done";
    $("delete").hidden = !finished || !data.owned;

    if (status === "done" && data.urls.result && !resultShown) showResult(data);
    renderDetails(data);
    offerPresets(data);
    document.title = (LABELS[status] || status) +
      (status === "running" && p.fraction ? ` ${Math.round(p.fraction * 100)}%` : "") +
      ` · ${data.source_name || data.method_title || "Job"} · ColorLab`;
  }

  // The phase (queued, running, finished, failed, cancelled) and each quarter of a running job's progress,
  // each told once through #job-announce.
  let announced = null;
  function announce(data, status, p) {
    const quarter = status === "running" && p.fraction ? Math.floor(p.fraction * 4) : 0;
    const key = `${status}:${quarter}`;
    if (key === announced) return;
    announced = key;
    const words = {
      queued: "Waiting in line for a worker.",
      running: quarter ? `Colorizing: ${quarter * 25}% done.` : "Colorizing.",
      done: "Finished: the colorized photo is shown below.",
      failed: `The colorization failed: ${data.error || "the worker did not say why"}.`,
      cancelled: "Cancelled.",
    }[status];
    $("job-announce").textContent = words || "";
  }

  // ---- Result: slider, side by side, download ------------------------------------------------------------
  // The result images and downloads; also called by fix_colours.js with a preview job (same photo).
  function showResultImages(data) {
    const urls = data.urls;
    $("compare-top").src = urls.result;
    $("sbs-result").src = urls.result;
    $("sbs-result-link").href = urls.result;
    const download = $("download");
    download.href = urls.result;
    download.setAttribute("download", CL.resultFileName(data));
    download.hidden = false;
    const jpeg = $("download-jpg");
    jpeg.href = urls.result + "?format=jpg&quality=90&download=true";
    jpeg.hidden = false;
  }

  function showResult(data) {
    resultShown = true;
    const urls = data.urls;
    const base = $("compare-base");
    const compare = $("compare");
    base.src = urls.input;
    if (data.width && data.height) {
      base.width = data.width;
      base.height = data.height;
      // Keep tall photos within the window: the width follows from a height of at most 75vh.
      CL.fitToWindow(compare, data.width, data.height, 75);
    }
    const link = (id, url) => { $(id).href = url; };
    $("sbs-input").src = urls.input; link("sbs-input-link", urls.input);
    if (data.has_ground_truth) {
      $("sbs-original").src = urls.original; link("sbs-original-link", urls.original);
      $("sbs-original-fig").hidden = false;
      $("base-switch").hidden = false;
    }
    if (urls.reference) {
      $("sbs-reference").src = urls.reference; link("sbs-reference-link", urls.reference);
      $("sbs-reference-fig").hidden = false;
    }
    showResultImages(data);
    // An iterative job stopped at the server's time limit: its result is the colours reached by then.
    const its = data.iterations;
    const short = its && its.planned && its.run < its.planned;
    const said = (data.progress && data.progress.message) || "";
    $("result-note").hidden = !short;
    $("result-note").textContent = !short ? "" : /^stopped/.test(said)
      ? said.charAt(0).toUpperCase() + said.slice(1) + "."
      : `Stopped after iteration ${its.run} of ${its.planned}: this is the result so far.`;
    $("result-section").hidden = false;
    offerAdjustments(data);
    offerAnotherReference(data);
    root.dispatchEvent(new CustomEvent("jobresult", { detail: data }));
  }

  // For fix_colours.js (loaded after this file): the finished job once it is shown, and the in-place update.
  CL.jobPage = { current: () => (resultShown ? job : null), showResultImages };

  // The job's method as GET /methods describes it (its presets and sliders), fetched once; null without it.
  let methodLookup = null;
  function methodOf(data) {
    methodLookup = methodLookup || fetch("/methods", { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : []))
      .then((methods) => methods.find((m) => m.name === data.method) || null)
      .catch(() => null); // no offer without the list; the page works without it
    return methodLookup;
  }

  // A new job from this one (POST …/rerun with the form), then its page; the buttons wait meanwhile and a
  // refusal is shown in `error`.
  function submitRerun(form, buttons, error) {
    return CL.submit(jobUrl + "/rerun", form, {
      setBusy: (busy) => { buttons.forEach((b) => { b.disabled = busy; }); },
      showFormError: (messages) => { error.textContent = (messages || []).join(" "); },
      opening: "Opening…",
      pageUrl: (body) => `/jobs/${body.id}/view`,
    });
  }

  // A failed or cancelled job runs again as it was: the same photo, method, options and reference.
  $("run-again").addEventListener("click", () => submitRerun(new FormData(), [$("run-again")], $("run-again-error")));

  // ---- Presets (exemplar): run the same photo and reference again with another one (a new job) -----------
  let presetsOffered = false;
  async function offerPresets(data) {
    if (presetsOffered || !FINISHED.has(data.status)) return;
    presetsOffered = true;
    const method = await methodOf(data);
    if (!method || !method.presets || !method.presets.length) return;
    $("rerun-presets").replaceChildren(...method.presets.map((preset) => {
      const button = el("button", { type: "button", class: "button preset-button", "data-preset": preset.name },
        el("span", { class: "preset-label", text: preset.label }),
        el("span", { class: "preset-time", text: CL.presetTime(preset) }));
      button.title = preset.summary + (preset.over_time_limit
        ? " Expected to take longer than this server's time limit per job: it stops there with the colours reached."
        : "");
      button.addEventListener("click", () => rerunWith(preset.options));
      return button;
    }));
    $("rerun-section").hidden = false;
  }

  async function rerunWith(options) {
    const form = new FormData();
    form.append("options", JSON.stringify(options));
    await submitRerun(form, [...$("rerun-presets").querySelectorAll("button")], $("rerun-error"));
  }

  // ---- Adjust (vividness, how closely to follow the reference): re-run with other settings (a new job) ----
  // One plain-words slider per option of the method that has ends ("safer" … "more vivid"), at this job's
  // value (its default for a job made before the option existed).
  async function offerAdjustments(data) {
    const method = await methodOf(data);
    const params = ((method && method.params) || []).filter((p) => p.ends && p.ends.length === 2);
    if (!params.length) return;
    const value = (param) => (typeof (data.params || {})[param.name] === "number" ? data.params[param.name] : param.default);
    $("adjust-sliders").replaceChildren(...params.map((param) => {
      const id = "adjust-" + param.name;
      const desc = el("p", { class: "field-desc", id: id + "-desc", text: param.description });
      const attrs = { id, name: param.name, step: "0.05", value: value(param), "aria-describedby": desc.id };
      return CL.endsSlider(param, attrs, desc);
    }));
    // "Not close enough to the reference?" only where there is one
    document.querySelectorAll("#adjust-help .reference-only").forEach((span) => { span.hidden = !method.needs_reference; });
    $("adjust-section").hidden = false;
  }

  $("adjust-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    const options = {};
    $("adjust-sliders").querySelectorAll("input[type=range]").forEach((range) => { options[range.name] = Number(range.value); });
    // The hints placed under "Fix colours" and not kept yet go along (else the server keeps this job's own).
    const hints = CL.jobPage.hints ? CL.jobPage.hints() : null;
    if (hints) options.hints = hints;
    form.append("options", JSON.stringify(options));
    await submitRerun(form, [$("adjust-apply")], $("adjust-error"));
  });

  // ---- Another reference: the same photo coloured from another colour photo (a new job) -----------------
  const referenceFiles = { reference: null };
  const anotherForm = $("another-reference-form");
  CL.setupDropzones(anotherForm, referenceFiles);
  const references = CL.referencePicker(anotherForm, referenceFiles);

  // Offered where a reference steers the method, and on the default method (its reference-guided form).
  async function offerAnotherReference(data) {
    const method = await methodOf(data);
    if (!method || !(method.needs_reference || method.default)) return;
    if (!method.needs_reference) $("another-reference-heading").textContent = "Colour from a reference";
    if (!method.params.some((p) => p.name === "hints")) {  // the exemplar takes no colour hints
      document.querySelectorAll(".hints-go-along").forEach((span) => { span.hidden = true; });
    }
    $("another-reference-section").hidden = false;
    references.load();
  }

  anotherForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    const picked = references.pickedId();
    if (referenceFiles.reference) form.append("reference", referenceFiles.reference, referenceFiles.reference.name || "reference");
    else if (picked) form.append("reference_id", picked);
    else {
      CL.showError($("reference-error"), "Choose a reference: upload a colour photo or pick one below.");
      $("reference").focus();
      return;
    }
    const hints = CL.jobPage.hints ? CL.jobPage.hints() : null; // placed under "Fix colours", not kept yet
    if (hints) form.append("options", JSON.stringify({ hints }));
    await submitRerun(form, [$("another-reference-apply")], $("another-reference-error"));
  });

  CL.slider($("compare"), $("compare-range"));

  $("base-switch").addEventListener("change", (event) => {
    if (!job) return;
    const original = event.target.value === "original";
    const base = $("compare-base");
    base.src = original ? job.urls.original : job.urls.input;
    base.alt = original ? "Original colour photo (ground truth)" : "Grayscale input";
    $("compare-base-tag").textContent = original ? "Original" : "Gray";
  });

  // ---- Polling and cancel --------------------------------------------------------------------------------
  const poller = CL.poller(jobUrl, {
    onData: render,
    done: (data) => FINISHED.has(data.status),
    current: () => job,
    onNotFound() {
      root.removeAttribute("aria-busy");
      $("job-status").textContent = "Not found";
      $("progress-message").textContent = "This job no longer exists.";
      $("cancel").hidden = true;
    },
    onRetry(status) {
      $("progress-message").textContent = status == null
        ? "Lost contact with the server; retrying…"
        : `The server answered ${status}; retrying…`;
    },
  });

  // A finished job (done, failed, cancelled) is deleted with its images, after a confirmation; then History.
  CL.deleteButton($("delete"), jobUrl, $("delete-error"), () => {
    const name = (job && (job.source_name || job.method_title)) || "this job";
    return `Delete “${name}” and its images? This cannot be undone.`;
  });

  $("cancel").addEventListener("click", async () => {
    const button = $("cancel");
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      const response = await fetch(jobUrl + "/cancel", { method: "POST", headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => null);
      if (response.ok && body) render(body);
      else if (response.status === 409) $("progress-message").textContent = (body && body.detail) || "This job cannot be cancelled.";
      else $("progress-message").textContent = (body && body.detail) || `Could not cancel (HTTP ${response.status}).`;
    } catch (err) {
      $("progress-message").textContent = "Could not reach the server to cancel: " + err.message;
    } finally {
      button.disabled = false;
      button.textContent = "Cancel";
    }
    poller.schedule(0);
  });

  if (!jobId) return;
  poller.poll();
})();
