// Job page, "Fix colours" (methods whose options include `hints`): click (or tap, or Enter on the keyboard
// crosshair) the spot whose colour is wrong, then choose its colour. The click only marks the spot (a pending
// point, moved by the next click); the colour chosen makes it a hint, and each change re-runs the job with
// the hints (POST /jobs/{id}/rerun, debounced, one at a time) and shows the new result in place. Undo goes
// back one step with its result; "Keep this" opens the kept job's page. Preview jobs that are not kept are
// deleted (DELETE /jobs/{id}) when undone or when the page goes.
"use strict";

(function () {
  const root = document.getElementById("job");
  const CL = window.ColorLab;
  if (!root || !CL || !CL.jobPage) return;
  const { $, el } = CL;

  const DEBOUNCE_MS = 400;
  const POLL_MS = 250; // previews take a second or two: poll faster than the page's own job
  const MAX_HINTS = 64; // worker/colorizers/hints.py
  const MAX_STEPS = 30; // undo depth; the previews of older steps are deleted
  // A click this close to a marker selects that hint instead of adding one; a finger lands farther from
  // where it aims than a mouse (its markers are larger there too: app.css).
  const NEAR_PX = window.matchMedia("(pointer: coarse)").matches ? 22 : 12;
  const NEUTRAL_COLOUR = "#808080"; // the picker with no hint to show: a gray, not a colour that looks chosen
  // A phone: a shorter photo, so that it and the colours under it fit on one screen.
  const NARROW = window.matchMedia("(max-width: 760px)");
  const PALETTE = [
    ["Sky blue", "#6fa8dc"], ["Deep blue sky", "#3a78c2"], ["Grass green", "#5a8f29"],
    ["Dark foliage", "#2f5d2a"], ["Light skin", "#f1c8a8"], ["Medium skin", "#c68d64"],
    ["Dark skin", "#7a4a2e"], ["Red", "#d0312d"], ["Yellow", "#f2c500"], ["White", "#ffffff"],
    ["Black", "#000000"],
  ];

  let base = null; // the page's job: its hints are the first step and it is never deleted
  // The undo history; the last step is what is shown. step: {hints, job (finished job JSON) | null, error}
  let steps = [];
  let selected = -1; // index of the selected hint in the current step
  let pending = null; // {x, y}: the spot clicked, waiting for its colour (no hint, no re-run until then)
  let cursor = { x: 0.5, y: 0.5 }; // the keyboard crosshair, and the last point clicked
  let timer = null;
  let inFlight = null; // {step, id}: the one preview job being made
  let retryAt = 0; // after a 429, no new re-run before this time (ms)
  let sampler = null; // 2D context holding the shown result, for "colour here now"
  let leaving = false;
  let fresh = null; // the step that added a hint, while that hint is still selected and unchanged since

  const current = () => steps[steps.length - 1];
  const hintsKey = (hints) => JSON.stringify(hints);
  const pct = (v) => Math.round(v * 100) + "%";
  const hex = (r, g, b) => "#" + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  const color = () => $("fix-color").value.toLowerCase();

  // ---- Start: once the page's job is shown as done ------------------------------------------------------
  function start(job) {
    if (base || !job || job.status !== "done" || !job.params || !("hints" in job.params)) return;
    base = job;
    const hints = Array.isArray(job.params.hints) ? job.params.hints.map((h) => ({ ...h })) : [];
    steps = [{ hints, job, error: null }];
    $("fix-palette").replaceChildren(...PALETTE.map(([name, value]) => swatch(name, value)));
    if (job.urls.reference) referenceColours(job.urls.reference);
    fitStage();
    NARROW.addEventListener("change", fitStage);
    $("fix-section").hidden = false;
    showPicker(lastColour());
    render();
  }

  // Keep tall photos within the window (the markers are placed relative to the image's own box); on a phone
  // within half of it, leaving room for the colours below.
  function fitStage() {
    if (base.width && base.height) CL.fitToWindow($("fix-stage"), base.width, base.height, NARROW.matches ? 50 : 75);
  }

  // ---- Colours ----------------------------------------------------------------------------------------
  function swatch(name, value) {
    const button = el("button", {
      type: "button", class: "fix-swatch", title: `${name} ${value}`, "aria-label": `${name} ${value}`,
      "data-color": value,
    });
    button.style.setProperty("--swatch", value);
    return button;
  }

  // The picker and its code show a colour (a hint's, or the one just chosen); nothing changes otherwise.
  function showPicker(value) {
    $("fix-color").value = value;
    showColourName(value);
  }

  // The code of the picker's colour, and the name of a swatch of that colour ("Grass green"): the swatches
  // are named only in their labels, which a touch screen never shows.
  function showColourName(value) {
    $("fix-color-code").textContent = value;
    $("fix-color-name").textContent = colourName(value);
  }

  // A swatch's name for a colour ("Grass green"), or "" for a colour of one's own.
  function colourName(value) {
    const twin = [...document.querySelectorAll(".fix-swatch")].find((b) => b.dataset.color === value);
    return twin ? twin.getAttribute("aria-label").replace(/\s*#[0-9a-f]{6}$/i, "") : "";
  }

  // Where a hint is, in words: "top left", "centre", "bottom" (the list names hints so, not by coordinates).
  function placeWords(x, y) {
    const row = y < 1 / 3 ? "top" : y < 2 / 3 ? "" : "bottom";
    const column = x < 1 / 3 ? "left" : x < 2 / 3 ? "" : "right";
    return [row, column].filter(Boolean).join(" ") || "centre";
  }

  // What the picker shows when no hint is selected: the last hint's colour, or a neutral gray.
  const lastColour = () => {
    const hints = current().hints;
    return hints.length ? hints[hints.length - 1].color : NEUTRAL_COLOUR;
  };

  // A colour chosen (swatch, picker): it colours the pending spot (a new hint) or the selected hint. The only
  // way a hint is made or recoloured, so each choice is one change and one re-run.
  function chooseColour(value) {
    showPicker(value);
    const hints = current().hints;
    if (pending) {
      addHint(pending, value);
    } else if (selected >= 0 && hints[selected]) {
      if (hints[selected].color === value) return;
      const recoloured = hints.map((h, i) => (i === selected ? { ...h, color: value } : h));
      if (fresh === current() && selected === hints.length - 1) {
        // The hint just made gets another colour: still one step, so Undo removes the hint (not only its colour).
        const index = selected;
        dropStep();
        change(recoloured);
        selected = index;
        fresh = current();
        render();
      } else {
        change(recoloured);
      }
    } else {
      renderState("Click a spot on the photo first, then its colour.");
    }
  }

  // The shown result, drawn into a same-origin canvas so its colours can be read back.
  function loadSampler(img) {
    const scale = Math.min(1, 1024 / Math.max(img.naturalWidth, img.naturalHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    sampler = ctx;
    showHere();
  }

  // The mean colour of a small patch of the result around a point (x, y relative to the photo).
  function sampleAt(x, y) {
    if (!sampler) return null;
    const { width, height } = sampler.canvas;
    const r = 2;
    const cx = Math.min(width - 1, Math.max(0, Math.round(x * (width - 1))));
    const cy = Math.min(height - 1, Math.max(0, Math.round(y * (height - 1))));
    const x0 = Math.max(0, cx - r);
    const y0 = Math.max(0, cy - r);
    const w = Math.min(width, cx + r + 1) - x0;
    const h = Math.min(height, cy + r + 1) - y0;
    const data = sampler.getImageData(x0, y0, w, h).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c += 1) sum[c] += data[i + c];
    const n = data.length / 4;
    return hex(sum[0] / n, sum[1] / n, sum[2] / n);
  }

  function showHere() {
    const point = pending || (selected >= 0 && current().hints[selected]) || cursor;
    const value = sampleAt(point.x, point.y);
    $("fix-here-group").hidden = !value;
    if (value) $("fix-here").replaceChildren(swatch(`The result at ${pct(point.x)}, ${pct(point.y)}:`, value));
  }

  // sRGB (0-255) to CIE Lab (D65): distances in it are close to how different two colours look.
  function toLab(r, g, b) {
    const linear = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    const [R, G, B] = [linear(r), linear(g), linear(b)];
    const f = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
    const fx = f((0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047);
    const fy = f(0.2126 * R + 0.7152 * G + 0.0722 * B);
    const fz = f((0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883);
    return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
  }

  const NEUTRAL_CHROMA = 12; // Lab chroma below this reads as white, gray, black or a faint beige
  const DISTINCT = 25; // swatches at least this far apart (Lab distance) so no two look alike
  const MIN_SHARE = 0.004; // a colour on fewer pixels is a fringe or a glint, not a thing's colour

  // The colours worth offering from RGBA pixels: the distinct colourful ones first, those covering more and
  // more vivid first (by pixel count alone, white walls and gray shadows would fill every swatch), then the
  // commonest neutral; neutrals fill the swatches only when there is no colourful one.
  function mainColours(data, count) {
    const bins = new Map(); // Lab cells of 8 units: {n, rgb sums, Lab sums}
    for (let i = 0; i < data.length; i += 4) {
      const lab = toLab(data[i], data[i + 1], data[i + 2]);
      const cell = lab.map((v) => Math.round(v / 8));
      const key = cell.join(",");
      const bin = bins.get(key) || { cell, n: 0, rgb: [0, 0, 0], lab: [0, 0, 0] };
      bin.n += 1;
      for (let c = 0; c < 3; c += 1) { bin.rgb[c] += data[i + c]; bin.lab[c] += lab[c]; }
      bins.set(key, bin);
    }
    // Each cell with its neighbours: a thing's shades spread over a few cells, so this counts all of them
    // and gives their mean colour.
    const minimum = Math.max(2, (data.length / 4) * MIN_SHARE);
    const colours = [];
    for (const bin of bins.values()) {
      const sum = { n: 0, rgb: [0, 0, 0], lab: [0, 0, 0] };
      for (let d = 0; d < 27; d += 1) {
        const near = bins.get([bin.cell[0] + (d % 3) - 1, bin.cell[1] + (Math.floor(d / 3) % 3) - 1, bin.cell[2] + Math.floor(d / 9) - 1].join(","));
        if (!near) continue;
        sum.n += near.n;
        for (let c = 0; c < 3; c += 1) { sum.rgb[c] += near.rgb[c]; sum.lab[c] += near.lab[c]; }
      }
      if (sum.n < minimum) continue;
      const lab = sum.lab.map((v) => v / sum.n);
      colours.push({ n: sum.n, rgb: sum.rgb.map((v) => v / sum.n), lab, chroma: Math.hypot(lab[1], lab[2]) });
    }
    const colourful = colours.filter((c) => c.chroma >= NEUTRAL_CHROMA).sort((a, b) => b.n * b.chroma - a.n * a.chroma);
    const neutral = colours.filter((c) => c.chroma < NEUTRAL_CHROMA).sort((a, b) => b.n - a.n);
    const picked = [];
    const take = (c) => {
      if (picked.length >= count || picked.some((p) => Math.hypot(...p.lab.map((v, k) => v - c.lab[k])) < DISTINCT)) return false;
      picked.push(c);
      return true;
    };
    colourful.forEach((c) => { if (picked.length < count - 1) take(c); });
    if (picked.length) neutral.some(take); // one neutral, for the white or gray things
    else neutral.forEach(take);
    return picked.map((c) => hex(...c.rgb));
  }

  function referenceColours(url) {
    const img = new Image();
    img.onload = () => {
      const side = 64;
      const canvas = document.createElement("canvas");
      canvas.width = side;
      canvas.height = side;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.imageSmoothingEnabled = false; // samples, not averages: two things side by side make no third colour
      ctx.drawImage(img, 0, 0, side, side);
      const picked = mainColours(ctx.getImageData(0, 0, side, side).data, 6);
      $("fix-reference").replaceChildren(...picked.map((value, i) => swatch(`Reference colour ${i + 1}`, value)));
      $("fix-reference-group").hidden = picked.length === 0;
    };
    img.src = url;
  }

  // ---- Hints: mark a spot, colour it, select, remove --------------------------------------------------------
  // A click (tap, Enter) marks the spot that a colour chosen next will get; another click moves it.
  function markSpot(x, y) {
    if (current().hints.length >= MAX_HINTS) {
      showError(`At most ${MAX_HINTS} hints: remove one first.`);
      return;
    }
    showError(null);
    pending = { x: Math.round(x * 10000) / 10000, y: Math.round(y * 10000) / 10000 };
    cursor = pending;
    selected = -1;
    render();
  }

  function dropPending() {
    if (!pending) return false;
    pending = null;
    showPicker(lastColour());
    render();
    return true;
  }

  function addHint(point, value) {
    pending = null;
    change([...current().hints, { x: point.x, y: point.y, color: value }]);
    selected = current().hints.length - 1;
    fresh = current();
    render();
  }

  function removeHint(index) {
    selected = -1;
    change(current().hints.filter((_, i) => i !== index));
    showPicker(lastColour());
  }

  function select(index) {
    selected = index;
    pending = null;
    const hint = current().hints[index];
    if (hint) cursor = { x: hint.x, y: hint.y };
    showPicker(hint ? hint.color : lastColour());
    render();
  }

  function nearestHint(x, y, rect) {
    let best = -1;
    let bestDistance = NEAR_PX;
    current().hints.forEach((h, i) => {
      const distance = Math.hypot((h.x - x) * rect.width, (h.y - y) * rect.height);
      if (distance <= bestDistance) { best = i; bestDistance = distance; }
    });
    return best;
  }

  // ---- Steps: every change is a step; its result comes from a preview job -------------------------------
  function change(hints) {
    showError(null);
    const reuse = steps.find((s) => s.job && hintsKey(s.hints) === hintsKey(hints));
    steps.push({ hints, job: reuse ? reuse.job : null, error: null });
    selected = Math.min(selected, hints.length - 1);
    while (steps.length > MAX_STEPS) release(steps.splice(1, 1)[0].job);
    render();
    clearTimeout(timer);
    if (!current().job) timer = setTimeout(rerun, DEBOUNCE_MS);
  }

  // Undo: the spot marked last if any (it is the last thing done), else the last change; the picker then shows
  // the colour of the hint now last.
  function undo() {
    if (dropPending()) return;
    if (!dropStep()) return;
    showPicker(lastColour());
    render();
  }

  // The current step goes (its preview with it); the one before is shown, re-run if it has no result.
  function dropStep() {
    if (steps.length < 2) return false;
    const gone = steps.pop();
    clearTimeout(timer);
    if (inFlight && inFlight.step === gone && inFlight.id) discard(inFlight.id); // else follow() drops it
    release(gone.job);
    selected = -1;
    showError(null);
    render();
    if (!current().job && !current().error) timer = setTimeout(rerun, DEBOUNCE_MS);
    return true;
  }

  // Deletes a preview job that no step shows any more (never the page's own job).
  function release(job) {
    if (!job || job.id === base.id || steps.some((s) => s.job && s.job.id === job.id)) return;
    discard(job.id);
  }

  // One DELETE cancels a preview still running and deletes it. Each preview is discarded once, however many
  // ways lead here.
  const discarded = new Set();
  const following = new Map(); // preview id -> { poller, finish } while it runs
  async function discard(id, keepalive) {
    if (discarded.has(id)) return;
    discarded.add(id);
    const followed = following.get(id);
    if (followed) followed.poller.stop(); // its job is going: no poll may ask for it again (a 404)
    const url = "/jobs/" + encodeURIComponent(id);
    const options = { method: "DELETE", headers: { Accept: "application/json" }, keepalive: Boolean(keepalive) };
    try {
      await fetch(url, options);
    } catch (_) { /* gone with the page: retention deletes it later */ }
    if (followed) followed.finish(null);
  }

  async function rerun() {
    const step = current();
    if (inFlight || step.job || step.error) return;
    const wait = retryAt - Date.now();
    if (wait > 0) { timer = setTimeout(rerun, wait); return; }
    const options = { hints: step.hints };
    if (typeof base.params.vividness === "number") options.vividness = base.params.vividness;
    const form = new FormData();
    form.append("options", JSON.stringify(options));
    form.append("fix_preview", "true"); // out of the history until kept; swept if never kept
    inFlight = { step, id: null };
    renderState();
    let response;
    let body = null;
    try {
      response = await fetch(`/jobs/${encodeURIComponent(base.id)}/rerun`, {
        method: "POST", body: form, headers: { Accept: "application/json" },
      });
      body = await response.json().catch(() => null);
    } catch (err) {
      inFlight = null;
      step.error = "Could not reach the server (" + err.message + ").";
      return after();
    }
    if (response.status === 429) {
      // Too many re-runs this minute: try again when the server says.
      inFlight = null;
      retryAt = Date.now() + 1000 * (Number(response.headers.get("Retry-After")) || 10);
      showError(CL.detailMessages(body, 429).join(" ") + " Trying again shortly…");
      timer = setTimeout(rerun, retryAt - Date.now());
      return;
    }
    if (response.status !== 202 || !body) {
      inFlight = null;
      step.error = CL.detailMessages(body, response.status, { capitalize: true }).join(" ");
      return after();
    }
    inFlight.id = body.id;
    follow(step, body.id, body.status_url);
  }

  // Polls the preview job until it finishes; its result is shown if its step is still the current one.
  function follow(step, id, statusUrl) {
    let latest = null;
    const finish = (data) => {
      following.delete(id);
      if (!inFlight || inFlight.id !== id) return;
      inFlight = null;
      const kept = steps.includes(step);
      if (data && data.status === "done" && kept) step.job = data;
      else if (data && data.status === "failed" && kept) step.error = "Colouring with these hints failed: " + (data.error || "no reason given");
      else if (kept && !step.job) step.error = "The preview was stopped.";
      if (!kept && data) discard(id);
      after();
    };
    const poller = CL.poller(statusUrl, {
      interval: POLL_MS,
      onData: (data) => { latest = data; if (CL.FINISHED.has(data.status)) finish(data); },
      done: (data) => CL.FINISHED.has(data.status),
      current: () => latest,
      onNotFound: () => finish(null),
      onRetry: () => renderState("Lost contact with the server; retrying…"),
    });
    following.set(id, { poller, finish });
    poller.poll();
  }

  // After a preview finished or failed: show where we are; the current step may need its own run.
  function after() {
    const step = current();
    if (step.error) showError(step.error);
    render();
    if (!step.job && !step.error) rerun();
  }

  // ---- Keep -------------------------------------------------------------------------------------------
  async function keep() {
    const step = current();
    if (!step.job || step.job.id === base.id) return;
    leaving = true;
    $("fix-keep").disabled = true;
    $("fix-keep").textContent = "Opening…";
    clearTimeout(timer);
    // The kept preview becomes a job like any other: in the history, kept as long.
    let kept = null;
    try {
      kept = await fetch(`/jobs/${encodeURIComponent(step.job.id)}/keep`, {
        method: "POST", headers: { Accept: "application/json" },
      });
    } catch (_) { /* reported below */ }
    if (!kept || !kept.ok) {
      leaving = false;
      $("fix-keep").textContent = "Keep this";
      const body = kept ? await kept.json().catch(() => null) : null;
      showError("Could not keep it: " + (kept ? CL.detailMessages(body, kept.status).join(" ") : "the server did not answer.") + " Try again.");
      renderState();
      return;
    }
    const others = new Set(steps.map((s) => s.job && s.job.id).filter((id) => id && id !== base.id && id !== step.job.id));
    if (inFlight && inFlight.id) others.add(inFlight.id);
    // Give the deletes a moment, but never hold the person back for long.
    const deletes = Promise.all([...others].map((id) => discard(id)));
    await Promise.race([deletes, new Promise((resolve) => setTimeout(resolve, 1500))]);
    location.assign(step.job.urls.page);
  }

  // Leaving the page without keeping: the previews go (a page kept in the back/forward cache keeps them).
  window.addEventListener("pagehide", (event) => {
    if (leaving || event.persisted || !base) return;
    const ids = new Set(steps.map((s) => s.job && s.job.id).filter((id) => id && id !== base.id));
    if (inFlight && inFlight.id) ids.add(inFlight.id);
    ids.forEach((id) => discard(id, true));
  });

  // ---- Rendering --------------------------------------------------------------------------------------
  function showError(message) {
    const box = $("fix-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function renderState(message) {
    const step = current();
    const updating = !step.job && !step.error;
    $("fix-stage").classList.toggle("is-updating", updating);
    $("fix-section").setAttribute("aria-busy", updating ? "true" : "false");
    const edited = step.job && step.job.id !== base.id;
    const asking = pending ? `Spot ${step.hints.length + 1}: now pick its colour` : "";
    $("fix-state").textContent = message || asking || (updating ? "Updating…" : edited ? "Updated" : "");
    $("fix-undo").disabled = steps.length < 2 && !pending;
    $("fix-use").hidden = !pending;
    $("fix-keep").disabled = leaving || !edited;
  }

  function marker(point, number, className, colour) {
    const node = el("span", { class: "fix-marker" + className, text: String(number) });
    node.style.setProperty("--x", String(point.x));
    node.style.setProperty("--y", String(point.y));
    if (colour) node.style.setProperty("--hint", colour);
    return node;
  }

  // The hints' markers, and the pending spot's: hollow until its colour is chosen (it then takes the
  // picker's colour while the picker is open, as does the selected hint).
  function renderMarkers(previewing) {
    const hints = current().hints;
    const markers = hints.map((h, i) =>
      marker(h, i + 1, i === selected ? " is-selected" : "", i === selected && previewing ? color() : h.color));
    if (pending) markers.push(marker(pending, hints.length + 1, " is-pending", previewing ? color() : null));
    $("fix-markers").replaceChildren(...markers);
  }

  function renderList() {
    const hints = current().hints;
    $("fix-count").textContent = hints.length ? `(${hints.length})` : "(none yet)";
    $("fix-list").replaceChildren(...hints.map((h, i) => {
      const dot = el("span", { class: "fix-dot", "aria-hidden": "true" });
      dot.style.setProperty("--hint", h.color);
      const label = `Hint ${i + 1} at ${pct(h.x)} across, ${pct(h.y)} down: ${h.color}`;
      return el("li", { class: i === selected ? "is-selected" : null },
        el("button", { type: "button", class: "fix-pick link-like", "data-index": i, "aria-pressed": String(i === selected), "aria-label": "Select " + label.charAt(0).toLowerCase() + label.slice(1) },
          dot, document.createTextNode(`${[colourName(h.color), h.color].filter(Boolean).join(" ")} · ${placeWords(h.x, h.y)}`)),
        el("button", { type: "button", class: "button button-ghost button-small fix-remove", "data-index": i, "aria-label": `Remove hint ${i + 1}`, text: "Remove" }));
    }));
  }

  function renderCursor() {
    const cross = $("fix-crosshair");
    cross.style.setProperty("--x", String(cursor.x));
    cross.style.setProperty("--y", String(cursor.y));
  }

  function render() {
    const step = current();
    const shown = step.job || [...steps].reverse().find((s) => s.job).job; // until ready: the last result
    const img = $("fix-img");
    if (img.dataset.jobId !== shown.id) {
      img.dataset.jobId = shown.id;
      img.src = shown.urls.result;
      CL.jobPage.showResultImages(shown);
    }
    renderMarkers();
    renderList();
    renderCursor();
    renderState();
  }

  // ---- Events -----------------------------------------------------------------------------------------
  $("fix-img").addEventListener("load", (event) => {
    $("fix-img").dataset.loadedJobId = $("fix-img").dataset.jobId;
    loadSampler(event.target);
  });

  $("fix-stage").addEventListener("click", (event) => {
    const rect = $("fix-img").getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const x = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
    $("fix-crosshair").hidden = true; // the keyboard's pointer: noise over the spot a click or tap marks
    const near = nearestHint(x, y, rect);
    if (near >= 0) select(near);
    else markSpot(x, y);
    showHere();
  });

  $("fix-stage").addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 0.1 : 0.02;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[event.key]) {
      event.preventDefault();
      const [dx, dy] = moves[event.key];
      cursor = { x: Math.min(1, Math.max(0, cursor.x + dx)), y: Math.min(1, Math.max(0, cursor.y + dy)) };
      $("fix-crosshair").hidden = false;
      if (selected >= 0) select(-1);
      renderCursor();
      showHere();
    } else if (event.key === "Enter" || event.key === " ") {
      // As a click there: marks the spot; Tab then reaches the colours.
      event.preventDefault();
      $("fix-crosshair").hidden = false;
      markSpot(cursor.x, cursor.y);
      showHere();
    } else if ((event.key === "Delete" || event.key === "Backspace") && (pending || selected >= 0)) {
      event.preventDefault();
      if (!dropPending()) removeHint(selected);
    } else if (event.key === "Escape") {
      if (!dropPending()) select(-1);
    }
  });
  // Focus by keyboard shows the crosshair; focus by a click or tap does not.
  $("fix-stage").addEventListener("focus", () => { $("fix-crosshair").hidden = !$("fix-stage").matches(":focus-visible"); });
  $("fix-stage").addEventListener("blur", () => { $("fix-crosshair").hidden = true; });

  $("fix-color").addEventListener("input", () => {
    showColourName(color());
    renderMarkers(true); // the marker follows the picker; the hint is made or changed when the picker closes
  });
  $("fix-color").addEventListener("change", () => chooseColour(color()));

  $("fix-section").addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.classList.contains("fix-swatch")) chooseColour(target.dataset.color);
    else if (target.classList.contains("fix-remove")) {
      const index = Number(target.dataset.index);
      removeHint(index);
      focusInList("fix-remove", index); // the list is drawn anew: focus the next Remove, else the one before
    } else if (target.classList.contains("fix-pick")) {
      const index = Number(target.dataset.index);
      select(index === selected ? -1 : index);
      focusInList("fix-pick", index);
    }
  });

  // After the list is drawn anew the pressed button is gone: focus its like at ``index`` (or the last one),
  // else the stage (no hints left), so a keyboard user goes on where they were.
  function focusInList(kind, index) {
    const buttons = [...$("fix-list").querySelectorAll("." + kind)];
    const next = buttons[Math.min(index, buttons.length - 1)];
    (next || $("fix-stage")).focus();
  }
  $("fix-use").addEventListener("click", () => chooseColour(color()));
  $("fix-undo").addEventListener("click", undo);
  $("fix-keep").addEventListener("click", keep);

  document.addEventListener("keydown", (event) => {
    if (!base || $("fix-section").hidden) return;
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      const tag = event.target && event.target.tagName;
      if ((tag === "INPUT" && event.target.type !== "color" && event.target.type !== "range") || tag === "TEXTAREA") return;
      event.preventDefault();
      undo();
    }
  });

  root.addEventListener("jobresult", (event) => start(event.detail));
  // The hints shown now (kept or not): "Colour again" (job.js) re-runs with them.
  CL.jobPage.hints = () => (base ? current().hints.map((h) => ({ ...h })) : null);
  start(CL.jobPage.current());
})();
