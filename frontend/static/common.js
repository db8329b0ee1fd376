// Shared by the pages' scripts (loaded before them): DOM helpers, formatting, the photo drop zones (file
// picker, drag and drop, paste, preview), the method cards, form submission with inline errors, the job
// status labels, polling with back-off and the before/after slider. Everything hangs off `window.ColorLab`.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // el("p", { class: "x", text: "…", "aria-label": "…" }, ...children): false/null attributes are left out.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === false || value == null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  // ---- Formatting -------------------------------------------------------------------------------------
  function formatBytes(n) {
    if (n < 1000) return n + " B";
    if (n < 1e6) return (n / 1e3).toFixed(0) + " KB";
    return (n / 1e6).toFixed(1) + " MB";
  }

  // A duration in seconds as "850 ms", "12.5 s" or "3 min 4 s"; null when there is none.
  function seconds(value) {
    if (value == null) return null;
    if (value < 1) return (value * 1000).toFixed(0) + " ms";
    if (value < 90) return value.toFixed(1) + " s";
    return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  }

  function slug(text) {
    return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  }

  // The download name of a job's result: <original stem>-<method>.png (from the server), else a made-up one.
  function resultFileName(job) {
    return job.download_name || `colorlab-${slug(job.method)}-${String(job.id).slice(0, 8)}.png`;
  }

  // "1st", "2nd", "3rd", "4th", ..., "11th", "21st".
  function ordinal(n) {
    const tens = n % 100;
    const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
    return n + suffix;
  }

  // A rough, friendly duration: "under a second", "a few seconds", "about 40 s", "about 3 min", "about 1 h 10 min".
  function about(secondsValue) {
    if (secondsValue == null || !Number.isFinite(secondsValue)) return null;
    if (secondsValue < 1) return "under a second";
    if (secondsValue < 5) return "a few seconds";
    if (secondsValue < 90) return `about ${Math.round(secondsValue / 5) * 5 || 5} s`;
    const minutes = Math.round(secondsValue / 60);
    if (minutes < 60) return `about ${minutes} min`;
    return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  // A preset's expected time (GET /methods), saying when it is more than the server's time limit per job.
  function presetTime(preset) {
    return (about(preset.expected_seconds) || "") + (preset.over_time_limit ? " · over the limit" : "");
  }

  // "3rd in line · about 40 s" for a queued job; "about 2 min left" for a running one (GET /jobs/{id}).
  function queueText(job) {
    const q = job.queue;
    if (!q) return null;
    const untilFinish = q.estimated_finish ? (new Date(q.estimated_finish).getTime() - Date.now()) / 1000 : null;
    if (job.status === "running") return untilFinish != null ? `${about(Math.max(untilFinish, 0))} left` : null;
    const place = q.ahead === 0 ? "Next in line" : `${ordinal(q.ahead + 1)} in line`;
    const wait = untilFinish != null ? ` · done in ${about(Math.max(untilFinish, 0))}` : "";
    return place + wait;
  }

  // ---- Errors -----------------------------------------------------------------------------------------
  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  // The messages in an error response. Options: capitalize (a string detail), byStatus ({429: "…"}: a
  // message for a status whose body has no detail).
  function detailMessages(body, status, options) {
    const opts = options || {};
    const detail = body && body.detail;
    if (typeof detail === "string") return [opts.capitalize ? detail.charAt(0).toUpperCase() + detail.slice(1) : detail];
    if (Array.isArray(detail)) {
      return detail.map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(" › ") : "";
        return (where ? where + ": " : "") + (d.msg || JSON.stringify(d));
      });
    }
    if (status === 413) return ["The file is too large for this server."];
    if (opts.byStatus && opts.byStatus[status]) return [opts.byStatus[status]];
    return [`The server answered ${status}. Please try again.`];
  }

  // The form-wide error box: one message as text, several as a list; null hides it.
  function showFormError(box, messages) {
    box.replaceChildren();
    if (!messages || !messages.length) { box.hidden = true; return; }
    if (messages.length === 1) box.textContent = messages[0];
    else box.append(el("span", { text: "Please fix the following:" }), el("ul", {}, ...messages.map((m) => el("li", { text: m }))));
    box.hidden = false;
    box.focus();
  }

  // Brings the first invalid field's section into view and focuses the field.
  function focusInvalid(field) {
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    field.closest("section").scrollIntoView({ behavior: still ? "auto" : "smooth", block: "center" });
    field.focus({ preventScroll: true });
  }

  // POSTs a form's data; 202 opens the page the answer names (fallback: pageUrl(body)), anything else shows
  // its messages. hooks: setBusy(busy), showFormError(messages), opening (the button's label meanwhile),
  // pageUrl(body), detail (detailMessages' options), form (locked while it uploads: what is sent is fixed),
  // checking (the button's label once all is sent; until then it counts the upload up: XMLHttpRequest
  // reports it, fetch does not). A refusal about one
  // file (the answer's `field`, e.g. "image") is shown beside it (#image-error) where the form has that
  // field, and the field gets the focus. Leaving the page mid-upload asks first.
  async function submit(url, data, hooks) {
    hooks.setBusy(true);
    if (hooks.form) lockForm(hooks.form, true);
    const stay = (event) => { event.preventDefault(); event.returnValue = ""; };
    window.addEventListener("beforeunload", stay);
    // "Stop the upload" (the form_actions macro): nothing is stored unless the whole request arrives
    const control = { stopped: false, abort: null };
    const stop = $("stop-upload");
    const onStop = () => { control.stopped = true; if (control.abort) control.abort(); };
    if (stop) { stop.hidden = false; stop.addEventListener("click", onStop); }
    const label = $("submit") && $("submit").querySelector(".label");  // the upload forms' button
    const uploaded = (fraction) => {
      if (label) label.textContent = fraction < 1 ? `Uploading… ${Math.floor(fraction * 100)}%` : hooks.checking;
    };
    let response;
    try {
      response = await post(url, data, uploaded, control);
    } catch (err) {
      response = null;
    }
    window.removeEventListener("beforeunload", stay);
    if (stop) { stop.hidden = true; stop.removeEventListener("click", onStop); }
    if (response && response.status === 202 && response.body) {
      if (label) label.textContent = hooks.opening;
      location.assign(response.body.page_url || hooks.pageUrl(response.body));
      return;
    }
    if (hooks.form) lockForm(hooks.form, false);
    hooks.setBusy(false);
    if (control.stopped) {
      $("submit").focus();
      return;
    }
    if (!response) {
      hooks.showFormError(["The upload did not reach the server: check your connection and try again."]);
      return;
    }
    const messages = detailMessages(response.body, response.status, hooks.detail);
    if (response.body && typeof response.body.field === "string" && showFieldError(response.body.field, messages[0])) return;
    hooks.showFormError(messages);
  }

  // {status, body (parsed JSON or null)}; rejects when the request never got an answer (or control.abort()
  // stopped it).
  function post(url, data, uploaded, control) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      if (control) control.abort = () => request.abort();
      request.open("POST", url);
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && event.total > 0) uploaded(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON: the status speaks */ }
        resolve({ status: request.status, body });
      });
      request.addEventListener("error", () => reject(new Error("network")));
      request.addEventListener("abort", () => reject(new Error("aborted")));
      request.send(data);
    });
  }

  // Disables a form's fields while it uploads (not those for the upload itself: data-during-upload), and
  // re-enables only those it disabled.
  function lockForm(form, locked) {
    for (const field of form.elements) {
      if ("duringUpload" in field.dataset) continue;
      if (locked && !field.disabled) {
        field.disabled = true;
        field.dataset.lockedForUpload = "1";
      } else if (!locked && field.dataset.lockedForUpload) {
        field.disabled = false;
        delete field.dataset.lockedForUpload;
      }
    }
  }

  function showFieldError(field, message) {
    const box = document.getElementById(field + "-error");
    const input = document.getElementById(field);
    if (!box || !input || !input.closest("form")) return false;
    showError(box, message.charAt(0).toUpperCase() + message.slice(1));
    focusInvalid(input);
    return true;
  }

  // ---- Multi-page TIFFs --------------------------------------------------------------------------------
  // How many pages a TIFF file holds, read from its directory chain as the server reads it
  // (backend/tiff_pages.py): previews and masks (NewSubfileType bits 1 and 4, or SubfileType 2) are not pages.
  // 1 for any other file or one whose chain cannot be read.
  async function tiffPages(file) {
    const read = async (at, length) => new DataView(await file.slice(at, at + length).arrayBuffer());
    if (!file || file.size < 16) return 1;
    const head = await read(0, 16);
    const order = head.getUint16(0);
    if (order !== 0x4949 && order !== 0x4d4d) return 1;
    const little = order === 0x4949;
    const magic = head.getUint16(2, little);
    if (magic !== 42 && magic !== 43) return 1;
    const big = magic === 43;
    const offset = (view, at) => (big ? Number(view.getBigUint64(at, little)) : view.getUint32(at, little));
    const countSize = big ? 8 : 2, entrySize = big ? 20 : 12, offsetSize = big ? 8 : 4;
    let directory = offset(head, big ? 8 : 4);
    let pages = 0;
    const seen = new Set();
    try {
      while (directory && !seen.has(directory) && seen.size < 1000 && directory + countSize <= file.size) {
        seen.add(directory);
        const countView = await read(directory, countSize);
        if (countView.byteLength < countSize) break;
        const entries = big ? Number(countView.getBigUint64(0, little)) : countView.getUint16(0, little);
        const length = countSize + entries * entrySize + offsetSize;
        const view = await read(directory, length);
        if (view.byteLength < length) break;
        let isPage = true;
        for (let i = 0; i < entries; i++) {
          const at = countSize + i * entrySize;
          const tag = view.getUint16(at, little), kind = view.getUint16(at + 2, little);
          const valueAt = at + (big ? 12 : 8);
          const value = kind === 3 ? view.getUint16(valueAt, little) : kind === 4 ? view.getUint32(valueAt, little) : 0;
          if ((tag === 254 && (value & 0x5)) || (tag === 255 && value === 2)) isPage = false;
        }
        if (pages === 0 || isPage) pages += 1;
        directory = offset(view, length - offsetSize);
      }
    } catch (_) { /* a damaged chain: the pages read so far */ }
    return Math.max(1, pages);
  }

  // ---- Drop zones -------------------------------------------------------------------------------------
  // Wires every .dropzone of a form (markup: the dropzone macro in _macros.html). The chosen files go into
  // files[<input name>]; each zone fires a bubbling "filechange" event ({key, file}; file is null once it
  // is removed or the picker is cancelled). The form's data-max-bytes / data-max-label set the size limit;
  // errors go to #<name>-error. onAccept runs after a file passes. Returns {<input name>: accept(file)}.
  function setupDropzones(form, files, onAccept) {
    function setupDropzone(zone) {
      const input = $(zone.dataset.input);
      const preview = zone.querySelector(".dropzone-preview");
      const img = preview.querySelector("img");
      const key = input.name;
      const errorNode = $(key + "-error");
      let objectUrl = null;

      function setFile(file) {
        if (objectUrl) URL.revokeObjectURL(objectUrl);
        objectUrl = null;
        files[key] = file || null;
        zone.classList.toggle("has-file", Boolean(file));
        preview.hidden = !file;
        if (file) {
          objectUrl = URL.createObjectURL(file);
          preview.classList.remove("no-preview");
          img.src = objectUrl;
          preview.querySelector(".file-name").textContent = file.name || "pasted image";
          preview.querySelector(".file-size").textContent = formatBytes(file.size) + (file.type ? " · " + file.type : "");
        } else {
          input.value = "";
        }
        zone.dispatchEvent(new CustomEvent("filechange", { bubbles: true, detail: { key, file: file || null } }));
      }

      function accept(file) {
        if (form.getAttribute("aria-busy") === "true") return; // uploading: what is sent is already fixed
        if (file && file.type && !file.type.startsWith("image/")) {
          showError(errorNode, `“${file.name}” is not an image (${file.type}). Choose a photo file.`);
          return;
        }
        const maxBytes = Number(form.dataset.maxBytes);
        if (file && maxBytes && file.size > maxBytes) {
          showError(errorNode, `“${file.name}” is ${formatBytes(file.size)}: larger than the ${form.dataset.maxLabel} limit.`);
          return;
        }
        showError(errorNode, "");
        if (onAccept) onAccept(key, file);
        setFile(file);
      }

      // Formats the browser cannot show (TIFF, PPM, ...) still upload: the server decodes them.
      img.addEventListener("error", () => { if (files[key]) preview.classList.add("no-preview"); });
      input.addEventListener("change", () => accept(input.files[0]));
      preview.querySelector(".change-file").addEventListener("click", () => input.click());
      const remove = preview.querySelector(".remove-file");
      if (remove) remove.addEventListener("click", () => { setFile(null); input.focus(); });
      ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("is-dragover");
      }));
      ["dragleave", "dragend"].forEach((type) => zone.addEventListener(type, (event) => {
        if (!zone.contains(event.relatedTarget)) zone.classList.remove("is-dragover");
      }));
      zone.addEventListener("drop", (event) => {
        event.preventDefault();
        zone.classList.remove("is-dragover");
        const file = event.dataTransfer && event.dataTransfer.files[0];
        if (!file) return;
        try {
          input.files = event.dataTransfer.files;
        } catch (_) { /* older browsers: the file is kept in `files` only */ }
        accept(file);
      });
      return accept;
    }

    const acceptInto = {};
    form.querySelectorAll(".dropzone").forEach((zone) => { acceptInto[zone.dataset.input] = setupDropzone(zone); });
    // A pasted image (e.g. a screenshot) becomes the photo.
    document.addEventListener("paste", (event) => {
      const file = [...((event.clipboardData && event.clipboardData.files) || [])].find((f) => f.type.startsWith("image/"));
      if (file) acceptInto.image(file);
    });
    // A file dropped outside a zone must not navigate away from the form.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
    return acceptInto;
  }

  // ---- Methods ----------------------------------------------------------------------------------------
  // One card per method of GET /methods: its title, one plain line of what a person gets, and tags; a
  // method this server lacks says so (the command that installs it is for the administrator). opts:
  // multiple (a checkbox named "methods", the compare form; else a radio named "method"), checked, and
  // details (what the method is, paper and architecture, behind "details": the card is then wrapped in a
  // .method-item).
  // GET /methods into `list` (a busy container): the methods, or null once `list` says they could not be had.
  async function fetchMethods(list) {
    try {
      const response = await fetch("/methods", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      return await response.json();
    } catch (err) {
      list.replaceChildren(el("p", { class: "field-error", text: "Could not load the methods (" + err.message + "). Reload the page to try again." }));
      list.removeAttribute("aria-busy");
      return null;
    }
  }

  function methodCard(method, opts) {
    const options = opts || {};
    const available = method.available !== false;
    const id = "method-" + method.name;
    const tags = el("span", { class: "method-tags", id: id + "-tags" });
    if (method.needs_reference) tags.append(el("span", { class: "tag tag-ref", text: "needs a reference" }));
    if (method.iterative) tags.append(el("span", { class: "tag tag-iter", text: "slow · live preview" }));
    if (!method.iterative && available) tags.append(el("span", { class: "tag", text: "fast" })); // seconds, one pass
    // Named by its title alone, described by the rest: a label's whole text as the name made a screen reader
    // read the summary twice (once in the name, once as the description).
    const described = [id + "-desc", available ? null : id + "-reason", tags.childElementCount ? id + "-tags" : null];
    const input = el("input", {
      type: options.multiple ? "checkbox" : "radio", name: options.multiple ? "methods" : "method", value: method.name, id,
      disabled: !available, "aria-labelledby": id + "-title", "aria-describedby": described.filter(Boolean).join(" "),
    });
    input.checked = available && Boolean(options.checked);
    const card = el("label", {
      class: "method-card" + (options.multiple ? " cmp-method-card" : "") + (available ? "" : " is-disabled"),
      "data-method": method.name,
    },
      input,
      el("span", { class: "method-top" },
        el("span", { class: "method-title", id: id + "-title", text: method.title || method.name }),
        el("span", { class: options.multiple ? "cmp-check" : "method-check", "aria-hidden": "true" })),
      el("span", {
        class: "method-desc", id: id + "-desc", title: options.details ? null : method.description || null,
        text: method.summary || method.description || "",
      }),
      available ? null : el("span", { class: "method-reason", id: id + "-reason", text: "Not installed on this server" }),
      tags.childElementCount ? tags : null);
    if (!options.details) return card;
    const details = el("details", { class: "method-details" },
      el("summary", {}, "details", el("span", { class: "visually-hidden", text: ` of ${method.title || method.name}` })),
      el("p", { text: method.description || "" }),
      method.paper ? el("p", { class: "muted", text: "Paper: " + method.paper }) : null);
    return el("div", { class: "method-item", "data-method": method.name }, card, details);
  }

  // ---- Jobs -------------------------------------------------------------------------------------------
  const FINISHED = new Set(["done", "failed", "cancelled"]);
  // The words of each status, from the server (backend/templates.py, on <body data-status-labels>).
  const STATUS_LABELS = JSON.parse(document.body.dataset.statusLabels || "{}");
  const POLL_MS = 1000;

  // A progress bar (.progress with --value): a fraction 0…1, or an indeterminate stripe. Returns the percent.
  function setProgress(bar, fraction, indeterminate) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
    bar.classList.toggle("is-indeterminate", Boolean(indeterminate));
    bar.style.setProperty("--value", pct + "%");
    if (indeterminate) bar.removeAttribute("aria-valuenow");
    else bar.setAttribute("aria-valuenow", String(pct));
    return pct;
  }

  // Polls url every hooks.interval ms (default: every second; five times slower while the tab is hidden)
  // until hooks.done(data); errors back off up to 15 s. hooks: onData(data), done(data), current() (the
  // latest data, also from elsewhere, or null), onNotFound(), onRetry(status) (status null: no answer),
  // interval. Returns {poll, schedule(ms), stop()} (stop: no request after it, no hook called).
  function poller(url, hooks) {
    const every = hooks.interval || POLL_MS;
    let timer = null;
    let failures = 0;
    let stopped = false;

    function schedule(ms) {
      clearTimeout(timer);
      if (!stopped) timer = setTimeout(poll, ms);
    }

    function stop() {
      stopped = true;
      clearTimeout(timer);
    }

    function retry(status) {
      failures += 1;
      if (hooks.onRetry) hooks.onRetry(status);
      schedule(Math.min(every * 2 ** failures, 15000));
    }

    async function poll() {
      if (stopped) return;
      let response;
      try {
        response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      } catch (_) {
        if (!stopped) retry(null);
        return;
      }
      if (stopped) return;
      if (response.status === 404) {
        hooks.onNotFound();
        return;
      }
      if (!response.ok) {
        retry(response.status);
        return;
      }
      failures = 0;
      const data = await response.json();
      hooks.onData(data);
      if (!hooks.done(data)) schedule(document.hidden ? every * 5 : every);
    }

    document.addEventListener("visibilitychange", () => {
      const data = hooks.current();
      if (!document.hidden && data && !hooks.done(data)) schedule(0);
    });
    return { poll, schedule, stop };
  }

  // The before/after slider (.compare with an .compare-range input): the range sets --pos. Returns the
  // function that applies the range's value (call it after setting the value from code).
  function slider(container, range) {
    const move = () => container.style.setProperty("--pos", range.value + "%");
    range.addEventListener("input", move);
    move();
    // Touch: the range takes no touches (app.css), so that a vertical swipe over the photo scrolls the page
    // (the container is touch-action: pan-y; the browser then cancels the pointer) and leaves the divider.
    // A horizontal drag or a tap moves it.
    let touch = null;
    const moveTo = (x) => {
      const box = container.getBoundingClientRect();
      range.value = String(Math.min(100, Math.max(0, ((x - box.left) / box.width) * 100)));
      range.dispatchEvent(new Event("input", { bubbles: true }));
    };
    container.addEventListener("pointerdown", (event) => {
      if (event.pointerType === "touch") touch = { x: event.clientX, y: event.clientY, dragging: false };
    });
    container.addEventListener("pointermove", (event) => {
      if (!touch || event.pointerType !== "touch") return;
      const dx = Math.abs(event.clientX - touch.x);
      if (!touch.dragging && (dx < 6 || dx < Math.abs(event.clientY - touch.y))) return; // not (yet) sideways
      touch.dragging = true;
      moveTo(event.clientX);
    });
    container.addEventListener("pointerup", (event) => {
      const tap = touch && Math.hypot(event.clientX - touch.x, event.clientY - touch.y) < 10;
      if (touch && (touch.dragging || tap)) moveTo(event.clientX);
      touch = null;
    });
    container.addEventListener("pointercancel", () => { touch = null; }); // the page scrolled instead
    return move;
  }

  // Keeps a photo's box (width × height px) no taller than `share` % of the window: its width follows from
  // that height and the aspect ratio, and never passes its column.
  function fitToWindow(node, width, height, share) {
    node.style.setProperty("max-width", `min(100%, calc(${share}vh * ${width / height}))`);
  }

  // A form field with a plain-words slider for a method's option with ends (vividness: "safer" … "more
  // vivid"); its exact value is shown beside its name (a tooltip reaches no one on a touch screen). attrs:
  // the range input's own (id, name, step, value, …).
  function endsSlider(param, attrs, desc) {
    const label = param.name.replace(/_/g, " ");
    const range = el("input", { type: "range", min: param.minimum, max: param.maximum, class: "ends-slider", ...attrs });
    // aria-hidden: a screen reader hears the value from the slider itself (aria-valuetext)
    const value = el("output", { class: "ends-value", for: attrs.id, "aria-hidden": "true" });
    const show = () => {
      value.textContent = Number(range.value).toFixed(2);
      range.title = label + " " + value.textContent;
      range.setAttribute("aria-valuetext", range.title);
    };
    range.addEventListener("input", show);
    range.addEventListener("change", show);
    show();
    return el("div", { class: "field" },
      el("div", { class: "ends-head" },
        el("label", { for: attrs.id, text: label.charAt(0).toUpperCase() + label.slice(1) }), value),
      el("div", { class: "ends-row" },
        el("span", { class: "ends-label", text: param.ends[0] }), range, el("span", { class: "ends-label", text: param.ends[1] })),
      desc);
  }

  // The reference chooser (the reference_chooser macro): upload one (#reference, a drop zone whose file goes
  // in files.reference) or pick an earlier upload or a bundled example (GET /references, radios named
  // reference_id); each excludes the other. load() fetches the list once; pickedId() is the radio's value.
  function referencePicker(form, files) {
    const list = $("reference-list");
    let loaded = false;
    async function load() {
      if (loaded) return;
      loaded = true;
      let refs = [];
      try {
        const response = await fetch("/references", { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error("HTTP " + response.status);
        refs = await response.json();
      } catch (err) {
        loaded = false;
        list.replaceChildren(el("p", { class: "muted", text: "Could not load earlier images (" + err.message + ")." }));
        return;
      }
      if (!refs.length) {
        list.replaceChildren(el("p", { class: "muted", text: "No earlier uploads or examples yet: upload a reference above." }));
        return;
      }
      list.replaceChildren(...refs.map((ref) => {
        const example = ref.source === "example";
        const label = ref.label || (example ? "Example" : "Your upload");
        return el("label", { class: "ref-option", title: label, "data-source": ref.source },
          el("input", { type: "radio", name: "reference_id", value: ref.id, "aria-label": label + (example ? " (bundled example)" : " (your earlier upload)") }),
          el("img", { src: ref.url, alt: "", loading: "lazy" }),
          el("span", { class: "ref-source", text: example ? "Example" : "Yours" }),
          el("span", { text: label }));
      }));
    }
    list.addEventListener("change", () => {
      showError($("reference-error"), "");
      if (files.reference) {
        $("reference").value = "";
        $("reference-drop").classList.remove("has-file");
        $("reference-drop").querySelector(".dropzone-preview").hidden = true;
        files.reference = null;
      }
    });
    $("reference-drop").addEventListener("filechange", (event) => {
      if (!event.detail.file) return;
      form.querySelectorAll('input[name="reference_id"]').forEach((r) => { r.checked = false; });
    });
    const pickedId = () => {
      const checked = form.querySelector('input[name="reference_id"]:checked');
      return checked ? checked.value : null;
    };
    return { load, pickedId };
  }

  // A "Delete" button of a page about one thing (a job, a batch, a comparison): after the confirmation,
  // DELETE url and go to the history; a refusal's detail goes to errorBox. question() is asked each time.
  function deleteButton(button, url, errorBox, question) {
    button.addEventListener("click", async () => {
      if (!window.confirm(question())) return;
      button.disabled = true;
      errorBox.textContent = "";
      try {
        const response = await fetch(url, { method: "DELETE", headers: { Accept: "application/json" } });
        if (response.status === 204 || response.status === 404) { window.location.assign("/history"); return; }
        const body = await response.json().catch(() => null);
        errorBox.textContent = detailMessages(body, response.status, { capitalize: true }).join(" ");
      } catch (err) {
        errorBox.textContent = "Could not reach the server to delete: " + err.message;
      }
      button.disabled = false;
    });
  }

  window.ColorLab = {
    deleteButton, $, el, formatBytes, seconds, slug, resultFileName, ordinal, about, presetTime, queueText,
    showError, detailMessages, showFormError, focusInvalid, submit,
    setupDropzones, tiffPages, fetchMethods, methodCard, endsSlider, referencePicker, FINISHED, STATUS_LABELS, POLL_MS, setProgress, poller, slider, fitToWindow,
  };
})();
