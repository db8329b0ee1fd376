// ColorLab researcher area: refresh the live results of a study every few seconds (no inline script: CSP).
(function () {
  "use strict";
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
