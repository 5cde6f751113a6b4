"""Reading the page the way a person sees it, in Chromium (tests/support/browser.py).

Shared by the report-file tests and the daemon-page tests: the targets and nodes as displayed,
the overview rows left by the filters, setting a filter like a person does, and the check that
a page never asked anything of another origin.
"""

from __future__ import annotations

import json

from tests.support.browser import Page, origin

# What a person sees of each node, read back from Chromium's DOM: the status badge's visible
# text, the node's label and kind, how deep it sits in the tree, and whether it is displayed.
READ_TARGETS = """
Array.from(document.querySelectorAll('section.target')).map(function (section) {
  return {
    reference: section.querySelector('h2 .ref').innerText,
    status: section.querySelector('h2 .status').innerText.trim(),
    displayed: section.offsetParent !== null,
    nodes: Array.from(section.querySelectorAll('li.node')).map(function (li) {
      var depth = 0;
      for (var p = li.parentElement; p && p !== section; p = p.parentElement) {
        if (p.matches('li.node')) { depth++; }
      }
      var head = li.querySelector(':scope > .card > .node-head');
      return {
        digest: li.dataset.node,
        status: head.querySelector('.status').innerText.trim(),
        label: head.querySelector('.label').innerText,
        kind: head.querySelector('.kind').innerText,
        required: head.querySelector('.req').innerText,
        depth: depth,
        displayed: li.offsetParent !== null
      };
    })
  };
})
"""
READ_ROWS = """
Array.from(document.querySelectorAll('tr[data-target]'))
  .filter(function (row) { return row.offsetParent !== null; })
  .map(function (row) { return row.querySelector('td.name').innerText; })
"""


def assert_stayed_home(page: Page, url: str) -> None:
    """Every request went to the page's own origin, and nothing was even attempted elsewhere."""
    requests = page.requests
    assert requests, "the page load itself must have been recorded"
    assert {origin(r) for r in requests} <= {origin(url), "data:"}, requests
    assert page.evaluate("window.__violations") == []


def word(badge_text: str) -> str:
    """The status word of a badge's visible text (a symbol comes first, the word last)."""
    return badge_text.split()[-1]


def set_filter(page: Page, name: str, value: str) -> None:
    """Choose or type like a person: set the control, then fire the event a person would."""
    event = "input" if name == "q" else "change"
    page.evaluate(
        f"(function () {{ var el = document.querySelector('#filters [name={name}]');"
        f" el.value = {json.dumps(value)};"
        f" el.dispatchEvent(new Event('{event}', {{bubbles: true}})); }})()"
    )


def displayed_sections(page: Page) -> set[str]:
    return {t["reference"] for t in page.evaluate(READ_TARGETS) if t["displayed"]}


