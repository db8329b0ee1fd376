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

  // Replace the stimuli panel with the server's current one (its buttons appear once every stimulus is ready);
  // stop once the server no longer marks it live (all ready, or some failed and need a retry).
  function refreshStimuli() {
    if (!stimuli || stimuli.getAttribute("data-live") !== "true") return;
    if (document.hidden) { setTimeout(refreshStimuli, STIMULI_INTERVAL); return; }
    fetch(pagePath, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { if (!res.ok) throw new Error(res.status); return res.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("stimuli");
        // No panel in the answer (e.g. the login page after the session ended): stop; a reload says why.
        if (fresh) stimuli.innerHTML = fresh.innerHTML;
        stimuli.setAttribute("data-live", (fresh && fresh.getAttribute("data-live")) || "false");
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
  var INTERVAL = 10000;

  function refresh() {
    if (!toggle.checked || document.hidden) return;
    var details = box.querySelector("details.per-photo");
    var open = details && details.open;
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { if (!res.ok) throw new Error(res.status); return res.text(); })
      .then(function (html) {
        box.innerHTML = html;
        var again = box.querySelector("details.per-photo");
        if (again && open) again.open = true;
      })
      .catch(function () { /* keep the last results; try again next time */ });
  }
  setInterval(refresh, INTERVAL);
})();
