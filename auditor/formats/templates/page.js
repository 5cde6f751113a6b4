// Enhancements only: the page is complete without this script.
// Live filtering (the same rule as OverviewQuery.matches in auditor/formats/html.py) and
// copy buttons. Reads data-* attributes and form values; never builds HTML from them.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var shown = document.getElementById("shown");
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-target]"));
  var rows = items.filter(function (el) { return el.tagName === "TR"; });

  function matches(el, f) {
    var d = el.dataset;
    var kinds = (d.findings || "").split(" ");
    return (!f.registry || f.registry === d.registry) &&
      (!f.repository || f.repository === d.scope) &&
      (!f.status || f.status === d.status || (f.status === "waived" && Number(d.waived) > 0)) &&
      (!f.finding || kinds.indexOf(f.finding) >= 0) &&
      (!f.q || (d.search || "").indexOf(f.q) >= 0);
  }

  function apply() {
    var e = form.elements;
    var f = {
      registry: e.registry.value, repository: e.repository.value, status: e.status.value,
      finding: e.finding.value, q: e.q.value.trim().toLowerCase()
    };
    items.forEach(function (el) { el.hidden = !matches(el, f); });
    document.querySelectorAll("section.repo").forEach(function (group) {
      group.hidden = !group.querySelector("tr[data-target]:not([hidden])");
    });
    var count = rows.filter(function (el) { return !el.hidden; }).length;
    if (shown) { shown.textContent = count + " of " + rows.length + " targets shown"; }
  }

  if (form) {
    form.hidden = false;
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  }

  function copied(button) {
    button.textContent = "copied";
    window.setTimeout(function () { button.textContent = "copy"; }, 1500);
  }

  function fallbackCopy(button, text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { if (document.execCommand("copy")) { copied(button); } } catch (err) { /* no clipboard */ }
    document.body.removeChild(area);
  }

  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy");
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { copied(button); },
          function () { fallbackCopy(button, text); });
      } else {
        fallbackCopy(button, text);
      }
    });
  });
}());
