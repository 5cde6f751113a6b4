"""The daemon's pages in a real headless Chromium, against a running ``auditor serve``.

The real registry holds the sample image with only its index signed; the daemon audits it every
second. Chromium reads the overview and the target's page while the image changes under it: the
platforms get valid signatures, then linux/amd64's signature is deleted, and the page's history
says so ("linux/amd64 unsigned since ... (signature deleted)"). Filters are checked on the
server (JavaScript off, query string) and in the page (script on); no request leaves the
daemon's origin.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from auditor.formats.html import target_id
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from devkit.devregistry import free_port
from devkit.samples import PLATFORMS
from tests.support.browser import chromium, chromium_binary
from tests.support.daemon import SignedIndexImage, poll, start_daemon, write_config
from tests.support.page_dom import READ_ROWS, READ_TARGETS, assert_stayed_home, set_filter, word
from tests.support.registry_server import RunningRegistry

pytestmark = [
    pytest.mark.registry,
    pytest.mark.browser,
    pytest.mark.skipif(chromium_binary() is None, reason="chromium is not on PATH"),
]

REPOSITORY = "pages/daemon"


def _node_status(daemon_get: httpx.Response, digest: str) -> str | None:
    text = daemon_get.text
    marker = f'data-node="{digest}" data-status="'
    if daemon_get.status_code != 200 or marker not in text:
        return None
    start = text.index(marker) + len(marker)
    return text[start:text.index('"', start)]


def _delete_signatures_of(registry: RunningRegistry, digest: str) -> None:
    """Delete a node's referrers fallback index, as someone cleaning up signatures would."""
    tag = fallback_tag(digest)
    url = f"{registry.url}/v2/{REPOSITORY}/manifests"
    head = httpx.head(f"{url}/{tag}", headers={"Accept": mt.OCI_INDEX}, timeout=10)
    assert head.status_code == 200, head.text
    gone = httpx.delete(f"{url}/{head.headers['Docker-Content-Digest']}", timeout=10)
    assert gone.status_code == 202, gone.text


def test_daemon_pages_follow_the_image_as_it_changes(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    image = SignedIndexImage.create(tmp_path, registry.host, REPOSITORY)
    port = free_port()
    state = tmp_path / "state" / "auditor.db"
    state.parent.mkdir()
    config = write_config(tmp_path / "auditor.yaml", registries=[registry.host],
                          repository=REPOSITORY, image=image, port=port, state=state,
                          interval="1s")
    reference = f"{registry.host}/{REPOSITORY}:v1"
    tid = target_id(reference)
    amd64 = image.sample.platforms["linux/amd64"].digest
    daemon = start_daemon(config, port, tmp_path / "serve.log")
    try:
        poll("the target's page", lambda: _node_status(daemon.get(f"/targets/{tid}"), amd64))
        with chromium(tmp_path / "chromium") as browser:
            # the overview: one repository, one target, a link to its page, the next audit
            page = browser.page()
            page.goto(f"{daemon.url}/")
            assert page.evaluate(READ_ROWS) == ["v1"]
            assert word(page.evaluate("document.querySelector('tr[data-target] .status')"
                                      ".innerText")) == "noncompliant"
            times = page.evaluate("document.querySelector('header .times').innerText")
            assert "next audit 20" in times
            href = page.evaluate("document.querySelector('tr[data-target] a').href")
            assert href == f"{daemon.url}/targets/{tid}"
            assert_stayed_home(page, daemon.url)

            # the target: every node with its status word and platform
            page.goto(href)
            (shown,) = page.evaluate(READ_TARGETS)
            assert shown["reference"] == reference
            assert [(n["label"], word(n["status"])) for n in shown["nodes"]] == [
                ("index", "signed"),
                *((p, "unsigned") for p in PLATFORMS),
                ("attestation for linux/amd64", "unsigned"),
            ]
            assert_stayed_home(page, daemon.url)

            # the platforms get signed, then amd64's signature is deleted
            image.sign_platforms()
            poll("amd64 signed", lambda: _node_status(daemon.get(f"/targets/{tid}"), amd64)
                 == "signed" or None)
            _delete_signatures_of(registry, amd64)
            poll("amd64 unsigned again",
                 lambda: _node_status(daemon.get(f"/targets/{tid}"), amd64) == "unsigned" or None)

            page.goto(href)
            history = page.evaluate(
                "Array.from(document.querySelectorAll('ol.history li')).map(li => li.innerText)"
            )
            amd64_history = [" ".join(h.split()) for h in history if h.startswith("linux/amd64")]
            assert len(amd64_history) == 3, history
            assert amd64_history[0].startswith("linux/amd64 \u2717 unsigned since ")
            assert amd64_history[0].endswith("(signature deleted)")
            assert amd64_history[1].endswith("(signed)")
            assert amd64_history[2].endswith("(first audit)")
            head = page.evaluate(
                f"document.querySelector('li.node[data-node=\"{amd64}\"] .node-head').innerText"
            )
            assert "(signature deleted)" in head
            fix = page.evaluate(
                f"document.querySelector('li.node[data-node=\"{amd64}\"] code.fix').innerText"
            )
            assert fix == f"auditor sign {registry.host}/{REPOSITORY}@{amd64} " \
                          "--key KEY.pem --cert CHAIN.pem"
            assert_stayed_home(page, daemon.url)
            folder = os.environ.get("AUDITOR_SCREENSHOTS")
            if folder:
                page.screenshot_element(f"#t-{tid}", Path(folder) / "page-daemon-target.png")

            # filters on the server, without JavaScript: the GET form's query string
            plain = browser.page(javascript=False)
            plain.goto(f"{daemon.url}/?status=compliant")
            assert plain.evaluate(READ_ROWS) == []
            assert plain.evaluate("document.getElementById('shown').innerText") == (
                "0 of 1 targets shown"
            )
            assert plain.evaluate("document.getElementById('filters').offsetParent") is not None
            plain.goto(f"{daemon.url}/?status=noncompliant&q={amd64[7:19]}")
            assert plain.evaluate(READ_ROWS) == ["v1"]
            assert_stayed_home(plain, daemon.url)

            # and in the page, with the script
            page.goto(f"{daemon.url}/")
            set_filter(page, "finding", "unsigned-platform")
            assert page.evaluate(READ_ROWS) == ["v1"]
            set_filter(page, "status", "error")
            assert page.evaluate(READ_ROWS) == []
    finally:
        code, _ = daemon.stop(timeout=30)
    assert code == 0
