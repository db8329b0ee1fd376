// Upload page: drop zones, method cards from GET /methods, options from each method's params,
// the reference picker (GET /references) and submission to POST /colorize with inline errors.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;

  const CL = window.ColorLab;
  const { $, el, showError } = CL;

  const state = { methods: [], method: null, files: { image: null, reference: null }, batch: [], pages: 1 };
  const MISSING_REFERENCE = "This method needs a reference image: a colour photo whose colours are copied onto " +
    "yours. Upload one above, or pick one of your earlier uploads or a bundled example.";

  // ---- Drop zones (file picker, drag and drop, paste: see common.js) ---------------------------------
  window.ColorLab.setupDropzones(form, state.files);
  const references = CL.referencePicker(form, state.files); // upload one, or pick an earlier one

  // ---- Many photos: several files, a folder or a zip become one batch (POST /batches) -----------------
  // Hidden files and folders and macOS's __MACOSX are left out, as the server leaves them out of a zip.
  const isJunk = (f) => (f.webkitRelativePath || f.name).split("/")
    .some((part) => (part.startsWith(".") && part !== "." && part !== "..") || part === "__MACOSX");
  const isBatchFile = (f) => !isJunk(f) &&
    (f.type.startsWith("image/") || /\.zip$/i.test(f.name) || /\.(jpe?g|png|webp|tiff?|bmp|gif)$/i.test(f.name));

  function setBatch(files) {
    state.batch = [...files].filter(isBatchFile);
    const count = state.batch.length;
    $("batch-summary").hidden = count === 0;
    const bytes = state.batch.reduce((n, f) => n + f.size, 0);
    const zips = state.batch.filter((f) => /\.zip$/i.test(f.name)).length;
    $("batch-count").textContent = count === 0 ? "" :
      `${count} file${count === 1 ? "" : "s"}${zips ? ` (${zips} zip)` : ""} · ${CL.formatBytes(bytes)} · colorized as one batch`;
    $("image-drop").classList.toggle("is-batch", count > 0);
    labelSubmit();
  }

  // "Colorize all" for a batch (several files, or the pages of a TIFF), else "Colorize".
  function labelSubmit(busy = false) {
    const many = state.batch.length || (state.files.image && state.pages > 1);
    $("submit").querySelector(".label").textContent = busy ? "Uploading…" : many ? "Colorize all" : "Colorize";
  }

  // A multi-page TIFF (an album, a letter's pages) chosen as the photo goes as a batch: each page a photo.
  form.addEventListener("filechange", async (event) => {
    if (event.detail.key !== "image") return;
    const file = event.detail.file;
    state.pages = 1;
    const pages = file ? await CL.tiffPages(file) : 1;
    if (state.files.image !== file) return; // another photo was chosen meanwhile
    state.pages = pages;
    const note = $("image-pages");
    note.hidden = pages < 2;
    note.textContent = pages < 2 ? "" : `This TIFF holds ${pages} pages: each is colorized as a photo of its own, as one batch.`;
    labelSubmit();
  });

  $("batch-files").addEventListener("change", (event) => setBatch(event.target.files));
  $("batch-folder").addEventListener("change", (event) => setBatch(event.target.files));
  $("batch-clear").addEventListener("click", () => {
    $("batch-files").value = "";
    $("batch-folder").value = "";
    setBatch([]);
  });

  // Every file under a dropped folder (the File and Directory Entries API).
  async function filesOf(entry) {
    if (entry.isFile) return [await new Promise((ok, fail) => entry.file(ok, fail))];
    const reader = entry.createReader();
    const out = [];
    for (;;) {
      const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) return out;
      for (const child of batch) out.push(...await filesOf(child));
    }
  }

  // Several files, a folder or a zip dropped on the photo box: a batch (one plain photo stays a single job).
  $("image-drop").addEventListener("drop", async (event) => {
    const items = [...((event.dataTransfer && event.dataTransfer.items) || [])];
    const entries = items.map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    const files = [...((event.dataTransfer && event.dataTransfer.files) || [])];
    const many = files.length > 1 || entries.some((e) => e.isDirectory) || files.some((f) => /\.zip$/i.test(f.name));
    if (!many) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    $("image-drop").classList.remove("is-dragover");
    const collected = [];
    for (const entry of entries) collected.push(...await filesOf(entry));
    setBatch(collected.length ? collected : files);
  }, { capture: true });

  // ---- Methods (the cards: ColorLab.methodCard) ------------------------------------------------------
  async function loadMethods() {
    const list = $("method-list");
    const loaded = await CL.fetchMethods(list);
    if (!loaded) return;
    state.methods = loaded;
    // Usable methods first; the unavailable ones stay visible (disabled) with the reason.
    const ordered = [...state.methods].sort((a, b) => (b.available !== false) - (a.available !== false));
    list.replaceChildren(...ordered.map((method) => CL.methodCard(method, { details: true })));
    list.removeAttribute("aria-busy");
    if (!state.methods.length) {
      list.append(el("p", { class: "muted", text: "No colorization methods are installed." }));
      return;
    }
    const wanted = new URLSearchParams(location.search).get("method");
    const usable = state.methods.filter((m) => m.available !== false);
    // Default: the requested method, else the first one that needs nothing but the photo.
    const initial = usable.find((m) => m.name === wanted) || usable.find((m) => m.default) ||
      usable.find((m) => !m.needs_reference) || usable[0];
    if (initial) {
      $("method-" + initial.name).checked = true;
      selectMethod(initial.name);
    } else {
      showError($("method-error"), "No method is installed on this server yet: ask its administrator.");
    }
  }

  $("method-list").addEventListener("change", (event) => {
    if (event.target.name === "method") selectMethod(event.target.value);
  });

  function selectMethod(name) {
    state.method = state.methods.find((m) => m.name === name) || null;
    showError($("method-error"), "");
    showError($("form-error"), "");
    const needsRef = Boolean(state.method && state.method.needs_reference);
    $("reference-section").hidden = !needsRef;
    showError($("reference-error"), "");
    if (needsRef) references.load();
    renderOptions();
    renderPresets();
    numberSteps();
  }

  // The steps shown are numbered in order: photo 1, method 2, then the reference, the presets and the options
  // as far as the method has them.
  function numberSteps() {
    const presets = $("reference-section").hidden ? 3 : 4;
    $("presets-step-no").textContent = String(presets);
    $("options-step-no").textContent = String($("presets-section").hidden ? presets : presets + 1);
  }

  // ---- Presets (Quick · Balanced · Paper) and the expected time ---------------------------------------
  function renderPresets() {
    const presets = (state.method && state.method.presets) || [];
    const chosen = presets.find((preset) => preset.default) || presets[0];
    $("presets-section").hidden = presets.length === 0;
    $("preset-list").replaceChildren(...presets.map((preset) => el("label", { class: "preset", "data-preset": preset.name },
      el("input", { type: "radio", name: "preset", value: preset.name, id: "preset-" + preset.name, checked: preset === chosen }),
      el("span", { class: "preset-label", text: preset.label }),
      el("span", { class: "preset-time", text: CL.presetTime(preset) }),
      el("span", { class: "preset-summary", text: preset.summary }))));
    if (chosen) applyPreset(chosen);
    else showExpected(state.method && state.method.iterative ? state.method.expected_seconds : null, false);
    const details = $("options-section");
    $("options-title").textContent = presets.length ? "Advanced settings" : "Options";
    if (presets.length && !details.dataset.touched) details.open = false;
  }

  function applyPreset(preset) {
    for (const [name, value] of Object.entries(preset.options)) {
      const input = $("opt-" + name);
      if (!input) continue;
      if (input.type === "checkbox") input.checked = Boolean(value);
      else input.value = String(value);
      input.dispatchEvent(new Event("input"));
    }
    showExpected(preset.expected_seconds, preset.over_time_limit);
  }

  // Over the server's time limit a job stops there with the colours it has reached: say so before it runs.
  function showExpected(secondsValue, overLimit) {
    const node = $("expected-time");
    const text = CL.about(secondsValue);
    node.hidden = !text;
    node.classList.toggle("expected-over-limit", Boolean(text && overLimit));
    if (!text) node.textContent = "";
    else if (overLimit) {
      const limit = CL.about(state.method.time_limit_seconds).replace(/^about /, "");
      node.textContent = `Expected time on this server: ${text} per photo, more than its limit of ${limit} per job: ` +
        "the colorization stops at the limit and keeps the colours it has reached by then.";
    } else node.textContent = `Expected time on this server: ${text} per photo, once a worker starts it.`;
  }

  $("preset-list").addEventListener("change", (event) => {
    const preset = ((state.method && state.method.presets) || []).find((p) => p.name === event.target.value);
    if (preset) applyPreset(preset);
  });
  // Changing a raw knob leaves the presets: the estimate no longer applies.
  $("options").addEventListener("change", () => {
    if (!((state.method && state.method.presets) || []).length) return;
    form.querySelectorAll('input[name="preset"]').forEach((r) => { r.checked = false; });
    showExpected(null, false);
    $("expected-time").hidden = false;
    $("expected-time").textContent = "Custom settings: the time grows with the iterations and the working size.";
  });

  // ---- Options ------------------------------------------------------------------------------------
  function stepFor(param) {
    if (param.type === "int") return 1;
    const span = (param.maximum ?? 0) - (param.minimum ?? 0);
    if (!(span > 0)) return "any";
    return Math.pow(10, Math.floor(Math.log10(span)) - 2);
  }

  function optionField(param) {
    const id = "opt-" + param.name;
    const descId = id + "-desc";
    const label = param.name.replace(/_/g, " ");
    const desc = param.description ? el("p", { class: "field-desc", id: descId, text: param.description }) : null;
    const common = { id, name: id, "data-param": param.name, "aria-describedby": desc ? descId : null };

    if (param.type === "bool") {
      const box = el("input", { ...common, type: "checkbox" });
      box.checked = Boolean(param.default);
      return el("div", { class: "field field-check" }, box,
        el("div", {}, el("label", { for: id, class: "field-label", text: label }), desc));
    }
    if (param.ends && param.ends.length === 2) {
      return CL.endsSlider(param, { ...common, step: stepFor(param), value: param.default ?? param.minimum }, desc);
    }
    if (param.type === "choice") {
      const select = el("select", common, ...(param.choices || []).map((c) => el("option", { value: c, text: c })));
      select.value = String(param.default);
      return el("div", { class: "field" }, el("label", { for: id, text: label }), select, desc);
    }
    const number = el("input", {
      ...common, type: "number", inputmode: param.type === "int" ? "numeric" : "decimal",
      min: param.minimum ?? null, max: param.maximum ?? null,
      step: param.type === "int" ? 1 : "any", value: param.default ?? "",
    });
    const row = el("div", { class: "field-row" });
    // A slider only where the range is short enough to drag through (not seeds or log-scale weights).
    const span = param.maximum - param.minimum;
    if (param.minimum != null && param.maximum != null && span > 0 && span <= (param.type === "int" ? 5000 : 10)) {
      const range = el("input", {
        type: "range", min: param.minimum, max: param.maximum, step: stepFor(param),
        value: param.default ?? param.minimum, "aria-label": label + " (slider)", tabindex: "-1",
      });
      range.addEventListener("input", () => { number.value = range.value; });
      number.addEventListener("input", () => { if (number.value !== "") range.value = number.value; });
      row.append(range);
    }
    row.append(number);
    const fmt = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 6 });
    const bounds = [param.minimum != null ? "min " + fmt(param.minimum) : "", param.maximum != null ? "max " + fmt(param.maximum) : ""]
      .filter(Boolean).join(", ");
    return el("div", { class: "field" },
      el("label", { for: id, text: label }), row,
      el("p", { class: "field-desc", id: descId, text: [param.description, bounds && "(" + bounds + ")"].filter(Boolean).join(" ") }));
  }

  // Options the form shows (colour hints are given on the job page or through the API, not typed in here).
  const formParams = (method) => ((method && method.params) || []).filter((p) => p.type !== "hints");

  function renderOptions() {
    const params = formParams(state.method);
    $("options").replaceChildren(...params.map(optionField));
    const details = $("options-section");
    details.hidden = params.length === 0;
    $("options-count").textContent = params.length + (params.length === 1 ? " setting" : " settings") + " · defaults filled in";
    // Open on wide screens; on a phone the defaults are a tap away instead of a long scroll.
    if (!details.dataset.touched) details.open = window.matchMedia("(min-width: 641px)").matches;
  }

  $("options-reset").addEventListener("click", renderOptions);
  $("options-section").querySelector("summary").addEventListener("click", () => { $("options-section").dataset.touched = "1"; });

  function collectOptions() {
    const options = {};
    const problems = [];
    for (const param of formParams(state.method)) {
      const input = $("opt-" + param.name);
      if (!input) continue;
      if (param.type === "bool") options[param.name] = input.checked;
      else if (param.type === "choice") options[param.name] = input.value;
      else {
        const raw = input.value.trim();
        const value = Number(raw);
        if (raw === "" || !Number.isFinite(value)) problems.push(`${param.name}: enter a number`);
        else if (param.type === "int" && !Number.isInteger(value)) problems.push(`${param.name}: enter a whole number`);
        else if (param.minimum != null && value < param.minimum) problems.push(`${param.name}: at least ${param.minimum}`);
        else if (param.maximum != null && value > param.maximum) problems.push(`${param.name}: at most ${param.maximum}`);
        else options[param.name] = value;
      }
    }
    return { options, problems };
  }

  // ---- Submit -----------------------------------------------------------------------------------
  const showFormError = (messages) => window.ColorLab.showFormError($("form-error"), messages);

  function setBusy(busy) {
    const button = $("submit");
    button.disabled = busy;
    button.querySelector(".spinner").hidden = !busy;
    labelSubmit(busy);
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    showFormError(null);
    let invalid = null;
    const pagesOf = state.files.image && state.pages > 1; // a multi-page TIFF: a batch of its pages
    const batch = state.batch.length > 0 || pagesOf;
    if (!state.files.image && !batch) {
      showError($("image-error"), "Choose a photo to colorize: drop it on the box above or use the file picker.");
      invalid = invalid || $("image");
    }
    // A batch over the server's size limit would be sent whole and then refused: say so before sending.
    const pick = $("batch-pick");
    const batchBytes = state.batch.reduce((n, f) => n + f.size, 0);
    if (state.batch.length && batchBytes > Number(pick.dataset.maxBytes)) {
      showError($("image-error"), `These files are ${CL.formatBytes(batchBytes)} together; a batch takes at most ` +
        `${pick.dataset.maxLabel}: choose fewer, or send them as several batches.`);
      invalid = invalid || $("batch-files");
    }
    if (!state.method) {
      showError($("method-error"), "Choose a colorization method.");
      invalid = invalid || $("method-list");
    }
    const refId = references.pickedId();
    if (state.method && state.method.needs_reference && !state.files.reference && !refId) {
      showError($("reference-error"), MISSING_REFERENCE);
      invalid = invalid || $("reference");
    }
    const { options, problems } = collectOptions();
    if (problems.length) {
      showFormError(problems);
      return;
    }
    if (invalid) {
      window.ColorLab.focusInvalid(invalid);
      return;
    }

    const data = new FormData();
    if (batch) {
      // A folder's files go with their path inside it: where two share a name (IMG_0001.jpg from two
      // cameras) the server shows as much of the path as tells them apart.
      const sent = state.batch.length ? state.batch : [state.files.image];
      for (const file of sent) data.append("images", file, file.webkitRelativePath || file.name);
    } else data.append("image", state.files.image, state.files.image.name || "image");
    data.append("method", state.method.name);
    data.append("options", JSON.stringify(options));
    if (state.method.needs_reference) {
      if (state.files.reference) data.append("reference", state.files.reference, state.files.reference.name || "reference");
      else if (refId) data.append("reference_id", refId);
    }
    window.ColorLab.submit(batch ? "/batches" : "/colorize", data, {
      setBusy, showFormError, form,
      checking: batch ? "Checking the photos…" : "Checking the photo…",
      opening: batch ? "Opening batch…" : "Opening job…",
      pageUrl: (body) => (batch ? "/batches/" : "/jobs/") + encodeURIComponent(body.id) + "/view",
    });
  });

  // Coming back with the browser's Back button restores this page as it was left: make it usable again.
  window.addEventListener("pageshow", (event) => { if (event.persisted) setBusy(false); });

  loadMethods();
})();
