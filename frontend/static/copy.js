// Copy buttons, on the researcher's and the participant's pages: a button with data-copy="ID" copies the text
// of the element #ID; the element with data-copy-status="ID" says so. Without clipboard access the text is
// selected instead, so that Ctrl+C (or a long press) copies it.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var id = button.getAttribute("data-copy");
    var source = document.getElementById(id);
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (!source) return;
    function say(text) { if (status) status.textContent = text; }
    function selectText() {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      say("Selected: press Ctrl+C (or Cmd+C) to copy.");
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () { say("Copied."); }, selectText);
    } else selectText();
  });
})();
