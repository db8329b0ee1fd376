// ColorLab user study: consent → instructions → part 1 (real or colorized) → part 2 (1-4 stars) → thanks.
// A study of one part (real or colorized only, or stars only) has no part-2 intro and no "Part N" label: the
// page (app.html) leaves them out, and this script does without them.
// Every answer is sent the moment it is given; the server keeps the state, so a reload resumes. A lost session
// cookie (another device, cleared cookies) goes through the resume path: the server answers "resume" when the
// link's Prolific PID + SESSION_ID (or this browser) prove who it is, and /start then issues a fresh cookie.
(function () {
  "use strict";

  var app = document.getElementById("study-app");
  if (!app) return;
  var api = app.getAttribute("data-api");
  var ID_KEYS = ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "participant"];
  var params = new URLSearchParams(window.location.search);
  var identity = {};
  var query = new URLSearchParams();
  ID_KEYS.forEach(function (k) {
    var v = params.get(k);
    if (v) { identity[k] = v; query.set(k, v); }
  });

  // With a redirect set, the last page waits this long before leaving, with a visible countdown that the
  // participant can stop ("Stay on this page") or skip ("Continue"): time to read and copy the completion code.
  var REDIRECT_DELAY_MS = 20000;
  // The single-key answers (R / C, 1-4) work only while focus is inside the trial section (each trial focuses
  // its question there), never in a form field: a key pressed elsewhere answers nothing.
  var ANSWER_KEYS_PART1 = { r: "real", c: "fake" };
  var ANSWER_KEYS_PART2 = ["1", "2", "3", "4"];

  var phases = ["loading", "consent", "instructions", "part2-intro", "trial", "done", "closed", "error"];
  var state = null;
  var shownAt = 0;
  var busy = false;
  var lastAction = null;
  var recovering = false;
  var img = document.getElementById("stimulus");
  var loadingNote = document.getElementById("stimulus-loading");
  var errorBox = document.getElementById("trial-error");
  var trialBox = document.getElementById("phase-trial");
  var pointer = { x: -1, y: -1 };  // where the mouse was last seen
  var freshAt = null;  // ...and where it was when the current trial appeared
  var redirectTimer = null;  // the countdown to the redirect, while it runs
  var redirectStopped = false;  // "Stay on this page" was pressed: never again on this page

  function $(id) { return document.getElementById(id); }

  function show(name) {
    phases.forEach(function (p) {
      var section = $("phase-" + p);
      if (section) section.hidden = p !== name;  // a one-part study's page has no part-2 intro
    });
  }

  // A phase without an answer to focus (thanks, closed, error): its heading (tabindex="-1") takes focus, so that a
  // screen reader announces it instead of the silence of focus fallen to <body> from a section now hidden.
  function showAndFocus(name, headingId) {
    show(name);
    var heading = $(headingId);
    if (heading) heading.focus({ preventScroll: true });
  }

  function showError(message) {
    $("error-text").textContent = message;
    showAndFocus("error", "error-h");
  }

  function setProgress(progress) {
    var fill = $("progress-fill");
    if (!fill || !progress) return;
    fill.style.width = Math.round(100 * progress.answered / Math.max(progress.total, 1)) + "%";
  }

  function request(method, path, body) {
    var opts = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(api + path, opts).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          var err = new Error(data.detail || ("The server answered " + res.status));
          err.status = res.status;
          throw err;
        }
        return data;
      });
    });
  }

  // Idempotent calls are retried a few times on network errors (an answer is stored once per trial).
  function withRetry(fn, tries) {
    return fn().catch(function (err) {
      if (err.status || tries <= 1) throw err;
      return new Promise(function (resolve) { setTimeout(resolve, 700); }).then(function () {
        return withRetry(fn, tries - 1);
      });
    });
  }

  function fail(err, action) {
    busy = false;
    lastAction = action;
    if (err.status === 403 && action !== load && !recovering) {
      recovering = true;  // the session cookie is gone or stale: ask the server where we are
      load();
      return;
    }
    // The study still there (not 404 or 409: deleted or closed), its answers so far are kept.
    if (state && (state.phase === "part1" || state.phase === "part2") && err.status !== 409 && err.status !== 404) {
      errorBox.textContent = err.message + " Your earlier answers are saved.";
      errorBox.hidden = false;
      setButtons(true);
      // A clicked answer, disabled while it was sent, lost focus: back to the question, where the keys work
      if (!trialBox.contains(document.activeElement)) $("trial-question").focus({ preventScroll: true });
      return;
    }
    showError(err.message);
  }

  function render(next) {
    state = next;
    busy = false;
    errorBox.hidden = true;
    setProgress(next.progress);
    $("preview-banner").hidden = !next.preview;
    if (next.phase !== "resume") recovering = false;
    switch (next.phase) {
      case "resume":
        busy = true;
        request("POST", "/start", identity).then(render).catch(function (err) { fail(err, load); });
        break;
      case "consent": show("consent"); $("consent-yes").focus(); break;
      case "instructions":
        if (next.preview && location.hash === "#consent") { show("consent"); $("consent-yes").focus(); break; }
        show("instructions"); $("begin").focus(); break;
      case "part1":
      case "part2":
        if (next.phase === "part2" && next.trial.index === 1 && $("phase-part2-intro") && !sessionStorage.getItem(introKey())) {
          show("part2-intro");
          $("begin-part2").focus();
        } else {
          showTrial(next.trial);
        }
        break;
      case "done": showDone(next); break;
      case "closed": showAndFocus("closed", "closed-h"); break;
      default: showAndFocus("error", "error-h");
    }
  }

  function introKey() { return "colorlab-part2-intro:" + api; }

  function setButtons(enabled) {
    var buttons = app.querySelectorAll("button.answer");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = !enabled;
  }

  function showTrial(trial) {
    show("trial");
    var part1 = trial.part === 1;
    if ($("trial-part")) $("trial-part").textContent = "Part " + trial.part;
    $("trial-index").textContent = trial.index;
    $("trial-total").textContent = trial.total;
    $("trial-question").textContent = part1
      ? "Is this a real photo, or was it colorized by a computer?"
      : "How well is this image coloured?";
    $("answers-part1").hidden = !part1;
    $("answers-part2").hidden = part1;
    var instruction = $("trial-instruction");
    instruction.hidden = !trial.instruction;
    instruction.textContent = trial.instruction || "";
    // Read with the focused question (no live region: it would be read twice): "Image N of M" and any
    // attention check's instruction.
    $("trial-question").setAttribute("aria-describedby", trial.instruction ? "trial-meta trial-instruction" : "trial-meta");
    // The answered button is disabled now and focus would fall to the page: start each trial at its question,
    // so Tab reaches the first answer (never a stale focus on the opposite one).
    $("trial-question").focus({ preventScroll: true });
    // The pointer that gave the last answer (or began the part) may rest on an answer of this trial: it must not
    // look chosen, so hover looks are off (study.css) until the pointer moves.
    trialBox.classList.add("is-fresh");
    freshAt = { x: pointer.x, y: pointer.y };
    setButtons(false);
    loadingNote.hidden = false;
    img.classList.add("is-loading");
    img.onload = function () {
      // Shown at the size the stimulus area allows for its proportions, whatever its pixels (study.css)
      if (img.naturalWidth && img.naturalHeight) img.style.setProperty("--ar", String(img.naturalWidth / img.naturalHeight));
      loadingNote.hidden = true;
      img.classList.remove("is-loading");
      shownAt = performance.now();
      setButtons(true);
    };
    img.onerror = function () {
      if (!recovering) { recovering = true; load(); return; }  // a lost cookie: resume, then retry
      loadingNote.textContent = "The image could not be loaded. Reload the page to try again.";
    };
    img.src = trial.image || trial.image_url;  // inline in the state: no second request
  }

  function showDone(next) {
    setProgress({ answered: 1, total: 1 });
    // A researcher's preview recorded nothing and stays here (no redirect away from the study's page).
    $("done-saved").hidden = Boolean(next.preview);
    $("done-preview").hidden = !next.preview;
    $("done-reload").hidden = Boolean(next.preview);  // a preview is deleted once done: nothing to reload
    if (next.completion_code) {
      $("completion-code").textContent = next.completion_code;
      $("done-code").hidden = false;
    }
    if (next.receipt && next.receipt !== next.completion_code) {
      $("receipt").textContent = next.receipt;
      $("done-receipt").hidden = false;
    }
    if (next.return_url && /^https:\/\//i.test(next.return_url)) {
      $("return-link").href = next.return_url;
      $("done-return").hidden = false;
    }
    var url = next.redirect_url;
    if (url && /^https?:\/\//i.test(url)) {
      $("redirect-link").href = url;
      $("redirect-host").textContent = hostOf(url);
      $("done-redirect").hidden = false;
      if (next.preview) {  // a researcher's preview stays here: say what participants get
        $("redirect-preview").textContent = "Participants go back to " + hostOf(url) + " after "
          + Math.round(REDIRECT_DELAY_MS / 1000) + " s (not in a preview).";
        $("redirect-preview").hidden = false;
        $("redirect-countdown").hidden = true;
        $("redirect-stay").hidden = true;
      } else {
        startRedirect(url);
      }
    }
    // Focused, the heading is read with what the participant needs: the code, and where the page goes next.
    var described = [next.preview ? "done-preview" : "done-saved"];
    if (next.completion_code) described.push("done-code-text");
    if (!$("done-redirect").hidden) described.push("redirect-text");
    $("done-h").setAttribute("aria-describedby", described.join(" "));
    showAndFocus("done", "done-h");
  }

  function hostOf(url) {
    try { return new URL(url).host; } catch (e) { return url; }
  }

  function startRedirect(url) {
    if (redirectTimer !== null || redirectStopped) return;  // shown again (a retry): one countdown only
    var deadline = Date.now() + REDIRECT_DELAY_MS;
    function tick() {
      var left = deadline - Date.now();
      if (left <= 0) {
        stopRedirect();
        window.location.assign(url);
        return;
      }
      var seconds = String(Math.ceil(left / 1000));
      if ($("redirect-seconds").textContent !== seconds) $("redirect-seconds").textContent = seconds;
    }
    tick();
    redirectTimer = setInterval(tick, 250);
  }

  function stopRedirect() {
    if (redirectTimer !== null) clearInterval(redirectTimer);
    redirectTimer = null;
  }

  function answer(payload) {
    if (busy || !state || !state.trial) return;
    busy = true;
    setButtons(false);
    payload.trial_id = state.trial.id;
    payload.response_ms = Math.max(0, Math.round(performance.now() - shownAt));
    var action = function () { return request("POST", "/answer", payload); };
    withRetry(action, 3).then(render).catch(function (err) { fail(err, function () { busy = true; return action(); }); });
  }

  function load() {
    show("loading");
    var qs = query.toString();
    withRetry(function () { return request("GET", "/state" + (qs ? "?" + qs : "")); }, 3)
      .then(render).catch(function (err) { fail(err, load); });
  }

  $("consent-yes").addEventListener("click", function () {
    if (busy) return;
    busy = true;
    if (location.hash === "#consent") history.replaceState(null, "", location.pathname + location.search);
    request("POST", "/start", identity).then(render).catch(function (err) { fail(err, load); });
  });
  $("begin").addEventListener("click", function () {
    if (busy) return;
    busy = true;
    request("POST", "/begin", {}).then(render).catch(function (err) { fail(err, load); });
  });
  if ($("begin-part2")) {
    $("begin-part2").addEventListener("click", function () {
      sessionStorage.setItem(introKey(), "1");
      showTrial(state.trial);
    });
  }
  $("redirect-stay").addEventListener("click", function () {
    stopRedirect();
    redirectStopped = true;
    $("redirect-countdown").hidden = true;
    $("redirect-stopped").hidden = false;
    $("redirect-stay").hidden = true;
    $("redirect-link").focus();  // the pressed button is gone: focus the way on, next to the new text
  });
  $("retry").addEventListener("click", function () {
    if (lastAction) {
      var act = lastAction;
      lastAction = null;
      Promise.resolve(act()).then(function (s) { if (s && s.phase) render(s); }).catch(function (err) { fail(err, act); });
    } else {
      load();
    }
  });
  app.addEventListener("click", function (e) {
    var btn = e.target.closest("button.answer");
    if (!btn || btn.disabled) return;
    if (btn.hasAttribute("data-response")) answer({ response: btn.getAttribute("data-response") });
    else answer({ rating: parseInt(btn.getAttribute("data-rating"), 10) });
  });
  // A real move only: Chrome may send a pointer event where the pointer rests when the page changes under it.
  function pointerSeen(e) {
    if (e.pointerType !== "mouse" && e.pointerType !== "pen") return;
    pointer = { x: e.clientX, y: e.clientY };
    if (freshAt && freshAt.x < 0) freshAt = { x: e.clientX, y: e.clientY };  // not seen before: from here on
    else if (freshAt && Math.abs(e.clientX - freshAt.x) + Math.abs(e.clientY - freshAt.y) > 3) {
      trialBox.classList.remove("is-fresh");
      freshAt = null;
    }
  }
  document.addEventListener("pointermove", pointerSeen);
  document.addEventListener("pointerdown", pointerSeen);
  // Listened for on the trial section, not the document: a key pressed with focus elsewhere (the page, a
  // screen reader's own keys, another control) answers nothing (WCAG 2.1.4).
  function inFormField(el) {
    return Boolean(el && el.closest && el.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])"));
  }
  trialBox.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey || e.repeat || trialBox.hidden || busy || !state || !state.trial) return;
    if (!trialBox.contains(e.target) || inFormField(e.target)) return;
    var enabled = !app.querySelector("button.answer").disabled;
    if (!enabled) return;
    var key = (e.key || "").toLowerCase();
    if (state.trial.part === 1) {
      if (Object.prototype.hasOwnProperty.call(ANSWER_KEYS_PART1, key)) {
        e.preventDefault();
        answer({ response: ANSWER_KEYS_PART1[key] });
      }
    } else if (ANSWER_KEYS_PART2.indexOf(key) >= 0) {
      e.preventDefault();
      answer({ rating: parseInt(key, 10) });
    }
  });

  // The page carries this participant's state as the server saw it when serving the page: no request needed.
  var initial = null;
  try { initial = JSON.parse($("initial-state").textContent); } catch (e) { initial = null; }
  if (initial && initial.phase) render(initial); else load();
})();
