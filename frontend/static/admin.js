// ColorLab researcher area: refresh the live results of a study every few seconds, and its stimuli panel
// while colorizations are still running (no inline script: CSP).
(function () {
  "use strict";
  var stimuli = document.getElementById("stimuli");
  var STIMULI_INTERVAL = 2000;
  // A refused action or text edit is answered with the study page at the form's address (.../close,
  // .../texts): show the study's own address, so that a reload does not send the form again and the
  // refresh below asks for the page, not the action.
  var head = document.querySelector("[data-study-page]");
  var pagePath = head ? head.getAttribute("data-study-page") : location.pathname;
  if (location.pathname !== pagePath) history.replaceState(null, "", pagePath + location.hash);

  // ---- Panels that follow the server without taking the keyboard's place --------------------------------
  // A refresh replaces only the top-level parts of a panel that the server now renders differently (nothing
  // when nothing changed), so a control in an unchanged part keeps its focus. A part that is replaced gives
  // its focus, its <details>' open or closed state, its tables' sideways scroll and its status messages (the
  // nodes themselves, so that a screen reader does not hear them again) to the matching new elements.
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";

  function serialize(node) { return node.nodeType === 1 ? node.outerHTML : "#text " + node.data; }

  // The children of `parent` that mean something: blank text and comments between the parts are dropped.
  function parts(parent) {
    var kept = [];
    Array.prototype.slice.call(parent.childNodes).forEach(function (node) {
      if (node.nodeType === 8 || (node.nodeType === 3 && !/\S/.test(node.data))) parent.removeChild(node);
      else kept.push(node);
    });
    return kept;
  }

  // What an element is, as far as it can be told apart from its neighbours across two renderings.
  function keyOf(el) {
    var form = el.closest("form");
    var details = el.closest("details");
    var names = [el.id, el.getAttribute("name"), el.getAttribute("data-copy"), el.getAttribute("data-copy-status"),
      el.getAttribute("data-action"), el.getAttribute("href"), el.getAttribute("aria-label"),
      el.getAttribute("aria-labelledby"), form ? form.getAttribute("action") : "", details ? details.className : ""];
    var named = names.some(Boolean);
    return [el.tagName].concat(names, named ? [] : [el.textContent.trim()]).join("|");
  }

  // Where `el` is: its key, and its rank among the elements of `root` that match `selector` with that key.
  function placeOf(el, root, selector) {
    var key = keyOf(el);
    var same = Array.prototype.filter.call(root.querySelectorAll(selector), function (e) { return keyOf(e) === key; });
    return { key: key, index: same.indexOf(el), selector: selector };
  }

  function find(root, place) {
    var same = Array.prototype.filter.call(root.querySelectorAll(place.selector), function (e) { return keyOf(e) === place.key; });
    return same.length ? same[Math.min(Math.max(place.index, 0), same.length - 1)] : null;
  }

  // The elements matching `selector` in these top-level nodes, the nodes themselves included.
  function within(nodes, selector) {
    var found = [];
    nodes.forEach(function (node) {
      if (node.nodeType !== 1) return;
      if (node.matches(selector)) found.push(node);
      found.push.apply(found, node.querySelectorAll(selector));
    });
    return found;
  }

  // Makes `container` follow new renderings: the function it returns takes an element whose children are the
  // server's current content and says whether anything had to change.
  function livePanel(container) {
    parts(container).forEach(function (node) { node.shown = serialize(node); });
    return function update(source) {
      var next = parts(source);
      var shown = next.map(serialize);
      var old = Array.prototype.slice.call(container.childNodes);
      var start = 0, endOld = old.length, endNew = next.length;
      while (start < endOld && start < endNew && old[start].shown === shown[start]) start++;
      while (endOld > start && endNew > start && old[endOld - 1].shown === shown[endNew - 1]) { endOld--; endNew--; }
      if (start === endOld && start === endNew) return false;
      var gone = old.slice(start, endOld), coming = next.slice(start, endNew);

      var focused = document.activeElement;
      var focusPlace = focused && within(gone, FOCUSABLE).indexOf(focused) !== -1 ? placeOf(focused, container, FOCUSABLE) : null;
      var opened = within(gone, "details").map(function (d) { return { place: placeOf(d, container, "details"), open: d.open }; });
      var scrolled = within(gone, ".table-scroll, .chart-scroll").filter(function (e) { return e.scrollLeft > 0; })
        .map(function (e) { return { place: placeOf(e, container, ".table-scroll, .chart-scroll"), left: e.scrollLeft }; });
      // A status message keeps its node (and what it says) where the new rendering has its twin.
      within(gone, "[role=status]").forEach(function (status) {
        var place = placeOf(status, container, "[role=status]");
        var holder = document.createElement("div");
        coming.forEach(function (node) { holder.appendChild(node); });
        var twin = find(holder, place);
        if (twin) twin.parentNode.replaceChild(status, twin);
        coming = Array.prototype.slice.call(holder.childNodes);
      });

      var before = old[endOld] || null;
      gone.forEach(function (node) { container.removeChild(node); });
      coming.forEach(function (node, i) { node.shown = shown[start + i]; container.insertBefore(node, before); });

      opened.forEach(function (state) { var d = find(container, state.place); if (d) d.open = state.open; });
      scrolled.forEach(function (state) { var e = find(container, state.place); if (e) e.scrollLeft = state.left; });
      if (focusPlace) {
        var target = find(container, focusPlace);
        if (target) target.focus({ preventScroll: true });
        if (document.activeElement !== target) {  // gone (or disabled now): the panel itself, not the page's top
          container.setAttribute("tabindex", "-1");
          container.focus({ preventScroll: true });
        }
      }
      return true;
    };
  }

  // A status message changes only when what it says changes (a screen reader reads each change once).
  function say(status, text) { if (status && text && status.textContent !== text) status.textContent = text; }

  function refreshed(container, changed) {
    container.dispatchEvent(new CustomEvent("colorlab:refreshed", { detail: { changed: changed } }));
  }

  // Follow the stimuli panel (its buttons appear once every stimulus is ready); stop once the server no longer
  // marks it live (all ready, or some failed and need a retry).
  var updateStimuli = stimuli && livePanel(stimuli);
  var stimuliStatus = document.getElementById("stimuli-status");

  function refreshStimuli() {
    if (!stimuli || stimuli.getAttribute("data-live") !== "true") return;
    if (document.hidden) { setTimeout(refreshStimuli, STIMULI_INTERVAL); return; }
    fetch(pagePath, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { if (!res.ok) throw new Error(res.status); return res.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("stimuli");
        // No panel in the answer (e.g. the login page after the session ended): stop; a reload says why.
        if (!fresh) {
          stimuli.setAttribute("data-live", "false");
          say(stimuliStatus, "Stopped following the colorizations: reload the page.");
          return;
        }
        var changed = updateStimuli(fresh);
        var summary = fresh.getAttribute("data-status");
        if (summary !== stimuli.getAttribute("data-status")) {
          stimuli.setAttribute("data-status", summary || "");
          say(stimuliStatus, summary);
        }
        stimuli.setAttribute("data-live", fresh.getAttribute("data-live") || "false");
        refreshed(stimuli, changed);
      })
      .catch(function () { /* keep what is shown; try again */ })
      .then(function () { setTimeout(refreshStimuli, STIMULI_INTERVAL); });
  }
  setTimeout(refreshStimuli, STIMULI_INTERVAL);

  // Forms that close a study or delete a participant ask first (data-confirm holds the question).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // The new-study form is sent by fetch, so that an error (a taken address, too few photos) is shown above
  // the form while the chosen photos stay chosen: a page reload would make the researcher pick them again.
  var newStudy = document.getElementById("new-study-form");
  if (newStudy && window.FormData && window.fetch) {
    var formError = document.getElementById("form-error");
    var progress = document.getElementById("form-progress");
    var submit = newStudy.querySelector('button[type="submit"]');
    newStudy.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      event.preventDefault();
      submit.disabled = true;
      progress.textContent = "Uploading the photos and queueing the colorizations…";
      fetch(newStudy.action, {
        method: "POST", body: new FormData(newStudy), credentials: "same-origin", headers: { "Accept": "text/html" },
      })
        .then(function (res) {
          // Created (303 to the study), or sent to the login page: go where the server says.
          if (res.redirected) { location.assign(res.url); return null; }
          if ((res.headers.get("Content-Type") || "").indexOf("json") !== -1) {
            return res.json().then(function (body) { showError(String(body.detail)); });
          }
          return res.text().then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var notice = doc.getElementById("form-error") || doc.querySelector(".error-page .muted");
            var message = notice && notice.textContent.trim();
            var token = doc.querySelector('#new-study-form input[name="csrf_token"]');
            if (token) newStudy.querySelector('input[name="csrf_token"]').value = token.value;
            showError(message || "The study was not created (HTTP " + res.status + ").");
          });
        })
        .catch(function () {
          showError("The study was not created: the server could not be reached. Your entries are kept; try again.");
        });
    });
  }

  // The instructions follow the study's parts while they are a standard text: 0 trials in a part makes the
  // standard text of the other part alone, so participants never read of a part the study has not.
  var instructions = document.getElementById("instructions");
  var trials1 = document.getElementById("t1");
  var trials2 = document.getElementById("t2");
  if (instructions && trials1 && trials2 && instructions.hasAttribute("data-standard-both")) {
    var standard = function (key) { return instructions.getAttribute("data-standard-" + key); };
    var fitInstructions = function () {
      var current = instructions.value.trim();
      var isStandard = !current || ["both", "part1", "part2"].some(function (key) { return standard(key) === current; });
      if (!isStandard) return;  // the researcher's own text is theirs
      var has = function (field) { return field.value === "" || Number(field.value) !== 0; };  // "": still typing
      var has1 = has(trials1), has2 = has(trials2);
      instructions.value = standard(has1 && !has2 ? "part1" : has2 && !has1 ? "part2" : "both");
    };
    trials1.addEventListener("input", fitInstructions);
    trials2.addEventListener("input", fitInstructions);
  }

  function showError(message) {
    submit.disabled = false;
    progress.textContent = "";
    formError.textContent = message;
    formError.hidden = false;
    formError.setAttribute("tabindex", "-1");
    formError.focus();
    formError.scrollIntoView({ block: "center" });
  }

  var box = document.getElementById("results");
  var toggle = document.getElementById("live-toggle");
  if (!box || !toggle) return;
  var src = box.getAttribute("data-src");
  var resultsStatus = document.getElementById("results-status");
  var updateResults = livePanel(box);
  var INTERVAL = 10000;

  function refresh() {
    if (!toggle.checked || document.hidden) return;
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        // Sent elsewhere (the login page, once the session has ended): keep the last results and say so.
        if (res.redirected) { say(resultsStatus, "Not updated: reload the page (you may need to log in again)."); return null; }
        if (!res.ok) throw new Error(res.status);
        return res.text();
      })
      .then(function (html) {
        if (html === null) return;
        var changed = updateResults(new DOMParser().parseFromString(html, "text/html").body);
        if (changed) {
          var now = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
          say(resultsStatus, "Results updated at " + now + ".");
        }
        refreshed(box, changed);
      })
      .catch(function () { /* keep the last results; try again next time */ });
  }
  setInterval(refresh, INTERVAL);
  toggle.addEventListener("change", function () { if (toggle.checked) refresh(); });
})();
