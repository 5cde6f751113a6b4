"""``audit now --format html`` looked at in a real headless Chromium.

The signed sample image (tests/support/scenarios.py) and one of notation's own signed e2e
images are pushed to the real registry and audited through the CLI into one HTML file; Chromium
opens the file and the tests read what it shows: every node of the sample with its status word
and platform, the filter form at work, the page without JavaScript, both colour schemes, a
phone-sized viewport, and the requests the page made (none but the file itself). A layout with
a hostile tag, signer and artifact type shows that registry text stays text.

Screenshots for the README are taken here: into ``$AUDITOR_SCREENSHOTS`` when set (``./dev
screenshots`` sets it to ``docs/``), else into a temporary folder, checked either way.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.formats.html import target_id
from auditor.layout.writer import tag_manifest
from devkit.samples import attach_referrer, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import make_pki
from tests.support.browser import Browser, Page, chromium, chromium_binary
from tests.support.local_http import RecordingServer, recording_server
from tests.support.page_dom import (
    READ_ROWS,
    READ_TARGETS,
    assert_stayed_home,
    displayed_sections,
    set_filter,
    word,
)
from tests.support.paths import FIXTURES
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import (
    NOTATION_LAYOUTS,
    TRUST_STORE_NAME,
    SignedSample,
    build_signed_sample,
    isolate_environment,
    push,
    run_cli,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.browser,
    pytest.mark.skipif(not NOTATION_LAYOUTS.is_dir(), reason="../shared/fixtures not present"),
    pytest.mark.skipif(chromium_binary() is None, reason="chromium is not on PATH"),
]

E2E_CERT = FIXTURES / "notation-e2e" / "config" / "localkeys" / "e2e.crt"
SAMPLE_STATUSES = {
    "index": "signed",
    "linux/amd64": "signed",
    "linux/arm64/v8": "invalid",
    "linux/ppc64le": "unsigned",
    "attestation": "unsigned",
}
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

@dataclass(frozen=True)
class Audited:
    """The report file, what was pushed, and the references as the report names them."""

    report: Path
    signed: SignedSample
    app: str
    e2e: str
    gone: str
    code: int
    stderr: str

    @property
    def url(self) -> str:
        return self.report.as_uri()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with chromium(tmp_path_factory.mktemp("chromium")) as running:
        yield running


@pytest.fixture(scope="module")
def audited(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Audited:
    workdir = tmp_path_factory.mktemp("page-report")
    signed = build_signed_sample(workdir / "sample")
    # notation's own e2e certificate joins the trust store: its real signature is then valid.
    shutil.copy(E2E_CERT, signed.trust_store / "x509" / "ca" / TRUST_STORE_NAME / "e2e.crt")
    namespace = f"acme-{uuid.uuid4().hex[:6]}"
    push(registry.host, signed.path, f"{namespace}/app", update_fallback_tags=True)
    push(registry.host, NOTATION_LAYOUTS / "e2e-valid-signature", f"{namespace}/notation-e2e")
    app, e2e, gone = (f"{registry.host}/{namespace}/{name}" for name in ("app", "notation-e2e",
                                                                          "gone"))
    report = workdir / "report.html"
    # v1's unsigned ppc64le manifest is a known, owned exception
    config = workdir / "auditor.yaml"
    config.write_text(
        "waivers:\n"
        f"  - image: \"{app}:v1\"\n"
        "    platforms: [linux/ppc64le]\n"
        "    reason: ppc64le images are signed by the ppc team's pipeline\n"
        "    owner: ppc-team@example.com\n"
        "    expires: \"2099-12-31\"\n"
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_environment(monkeypatch, workdir / "env")
        run = run_cli(
            ["audit", "now", app, e2e, gone, "--config", str(config),
             "--trust-policy", str(signed.trust_policy), "--trust-store", str(signed.trust_store),
             "--format", "html", "-o", str(report)]
        )
    return Audited(report, signed, app, e2e, gone, run.code, run.stderr)


def open_page(browser: Browser, url: str, **options: Any) -> Page:
    page = browser.page(**options)
    page.goto(url)
    return page


def expected_tree(audited: Audited) -> dict[str, list[dict[str, Any]]]:
    """Per reference, the nodes as the page must show them, built from what was made."""
    sample = audited.signed.sample
    platforms = [
        {"digest": d.digest, "label": name, "kind": "platform", "status": SAMPLE_STATUSES[name]}
        for name, d in sample.platforms.items()
    ]
    attestation = {
        "digest": sample.attestation.digest,
        "label": "attestation for linux/amd64",
        "kind": "attestation",
        "status": "unsigned",
    }
    index = {"digest": sample.index.digest, "kind": "index", "status": "signed"}

    def below(depth: int) -> list[dict[str, Any]]:
        return [{**n, "depth": depth} for n in [*platforms, attestation]]

    return {
        f"{audited.app}:v1": [{**index, "label": "index", "depth": 0}, *below(1)],
        f"{audited.app}:v1-nested": [
            {"digest": sample.nested_index.digest, "label": "index", "kind": "index",
             "status": "unsigned", "depth": 0},
            {**index, "label": "nested index", "depth": 1},
            *below(2),
        ],
        f"{audited.app}:v1-single": [
            {"digest": sample.single.digest, "label": "manifest", "kind": "manifest",
             "status": "signed", "depth": 0}
        ],
    }


# --- the DOM ------------------------------------------------------------------------------------


def test_report_shows_every_node_with_its_status_word_and_platform(
    browser: Browser, audited: Audited
) -> None:
    assert audited.code == 1, audited.stderr  # noncompliant sample tags
    page = open_page(browser, audited.url)
    shown = {t["reference"]: t for t in page.evaluate(READ_TARGETS)}
    assert set(shown) == {*expected_tree(audited), f"{audited.e2e}:v1", audited.gone}
    for reference, nodes in expected_tree(audited).items():
        seen = [
            {k: (word(n[k]) if k == "status" else n[k]) for k in ("digest", "label", "kind",
                                                                  "status", "depth")}
            for n in shown[reference]["nodes"]
        ]
        assert seen == nodes, reference
        assert all(n["displayed"] for n in shown[reference]["nodes"])
    assert word(shown[f"{audited.app}:v1"]["status"]) == "noncompliant"
    assert word(shown[f"{audited.app}:v1-single"]["status"]) == "compliant"
    assert word(shown[f"{audited.e2e}:v1"]["status"]) == "compliant"  # notation's real signature
    assert word(shown[audited.gone]["status"]) == "error"
    assert_stayed_home(page, audited.url)


def test_target_view_names_signatures_findings_and_the_fix(
    browser: Browser, audited: Audited
) -> None:
    page = open_page(browser, audited.url)
    section = f"document.getElementById('t-{target_id(audited.app + ':v1')}')"
    text = page.evaluate(f"{section}.innerText")
    arm64 = audited.signed.sample.platforms["linux/arm64/v8"].digest
    ppc64le = audited.signed.sample.platforms["linux/ppc64le"].digest
    # the failed validation and its reason, the signer, the rule, and the fix per gap
    assert "failed validation\nauthenticity" in text.replace("\t", "\n")
    assert "CN=integration-stranger" in text
    assert "raised by: policy both for * (default)" in text
    fixes = page.evaluate(
        f"Array.from({section}.querySelectorAll('.findings code.fix')).map(c => c.innerText)"
    )
    repository = audited.app
    assert fixes == [
        f"auditor sign {repository}@{arm64} --key KEY.pem --cert CHAIN.pem",
        f"auditor sign {repository}@{ppc64le} --key KEY.pem --cert CHAIN.pem",
    ]
    assert f"auditor sign --missing {repository}:v1 --key KEY.pem --cert CHAIN.pem" in text
    # the waived gap says who accepted it, why, and until when
    waived = page.evaluate(f"{section}.querySelector('.findings li.waived').innerText")
    assert "unsigned-platform" in waived
    assert ("accepted by the waiver for " + repository + ":v1: ppc64le images are signed by "
            "the ppc team's pipeline (owner ppc-team@example.com, until 2100-01-01T00:00:00Z)"
            ) in waived
    # a platform under the signed index says so, without being called signed by it
    amd64 = audited.signed.sample.platforms["linux/amd64"].digest
    covered = page.evaluate(
        f"{section}.querySelector('li.node[data-node=\"{amd64}\"] .meta').innerText"
    )
    assert covered.startswith("covered by signed index sha256:")
    # ... but a failing platform under it is not said to be covered ("this is fine")
    failing = page.evaluate(f"{section}.querySelector('li.node[data-node=\"{arm64}\"]').innerText")
    assert "invalid" in failing
    assert "covered by" not in failing
    # full digests are there for hover and copying
    titles = page.evaluate(
        f"Array.from({section}.querySelectorAll('code.digest')).map(c => c.title)"
    )
    assert arm64 in titles


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "rows"),
    [
        ({}, ["(every tag)", "v1", "v1", "v1-nested", "v1-single"]),
        ({"status": "compliant"}, ["v1", "v1-single"]),
        ({"status": "error"}, ["(every tag)"]),
        ({"finding": "invalid-signature"}, ["v1", "v1-nested"]),
        ({"finding": "unsigned-index"}, ["v1-nested"]),
        ({"status": "waived"}, ["v1"]),
        ({"status": "noncompliant", "q": "NESTED"}, ["v1-nested"]),
        ({"q": "v1-single"}, ["v1-single"]),
    ],
)
def test_filters_narrow_the_overview_and_the_targets(
    browser: Browser, audited: Audited, filters: dict[str, str], rows: list[str]
) -> None:
    page = open_page(browser, audited.url)
    assert page.evaluate("document.getElementById('filters').hidden") is False
    for name, value in filters.items():
        set_filter(page, name, value)
    assert sorted(page.evaluate(READ_ROWS)) == rows
    assert len(displayed_sections(page)) == len(rows)
    shown = page.evaluate("document.getElementById('shown').innerText")
    assert shown == f"{len(rows)} of 5 targets shown"


def test_filters_by_registry_repository_and_node_digest(
    browser: Browser, audited: Audited
) -> None:
    page = open_page(browser, audited.url)
    set_filter(page, "repository", audited.e2e)
    assert displayed_sections(page) == {f"{audited.e2e}:v1"}
    set_filter(page, "repository", "")
    registry = audited.app.split("/")[0]
    set_filter(page, "registry", registry)
    assert len(displayed_sections(page)) == 5
    set_filter(page, "registry", "")
    # a platform manifest's digest finds the tags whose tree holds it
    arm64 = audited.signed.sample.platforms["linux/arm64/v8"].digest
    set_filter(page, "q", arm64[:19])
    assert displayed_sections(page) == {f"{audited.app}:v1", f"{audited.app}:v1-nested"}
    # repository groups with nothing left are hidden as a whole
    hidden_groups = page.evaluate(
        "Array.from(document.querySelectorAll('section.repo')).filter(s => s.hidden)"
        ".map(s => s.dataset.scope)"
    )
    assert sorted(hidden_groups) == sorted(r.split("/", 1)[0] + "/" + r.split("/", 1)[1]
                                           for r in (audited.e2e, audited.gone))


def test_without_javascript_everything_is_shown_in_words(
    browser: Browser, audited: Audited
) -> None:
    page = open_page(browser, audited.url, javascript=False)
    assert page.evaluate("document.getElementById('filters').offsetParent") is None
    assert page.evaluate(
        "Array.from(document.querySelectorAll('button.copy')).every(b => b.offsetParent === null)"
    )
    shown = {t["reference"]: t for t in page.evaluate(READ_TARGETS)}
    for reference, nodes in expected_tree(audited).items():
        assert [word(n["status"]) for n in shown[reference]["nodes"]] == [
            n["status"] for n in nodes
        ]
        assert all(n["displayed"] for n in shown[reference]["nodes"])
    assert len(page.evaluate(READ_ROWS)) == 5
    assert_stayed_home(page, audited.url)


@pytest.mark.parametrize(("width", "mobile"), [(1280, False), (390, True)])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_readable_at_desktop_and_phone_width_in_both_schemes(
    browser: Browser, audited: Audited, width: int, mobile: bool, scheme: str
) -> None:
    page = open_page(browser, audited.url, width=width, mobile=mobile, color_scheme=scheme)
    # nothing wider than the screen: no sideways scrolling to read a digest or a command
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.body).color")
    assert (background, text) == {
        "light": ("rgb(255, 255, 255)", "rgb(31, 35, 40)"),
        "dark": ("rgb(13, 17, 23)", "rgb(230, 237, 243)"),
    }[scheme]
    body_size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert body_size >= 14


# --- hostile registry text ------------------------------------------------------------------


@pytest.fixture(scope="module")
def leak_listener() -> Iterator[RecordingServer]:
    with recording_server() as server:
        yield server


def test_hostile_tag_signer_and_artifact_type_render_as_text(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    leak_listener: RecordingServer,
) -> None:
    isolate_environment(monkeypatch, tmp_path / "env")
    beacon = f'<img src="{leak_listener.url}/leak" onerror="window.__pwned = 3">'
    sample = write_sample_layout(tmp_path / "layout", name="hostile")
    tag_manifest(sample.path, sample.index, HOSTILE)
    # a certificate's common name holds at most 64 characters (and " root CA" is appended)
    signer = f"</dd><img src={leak_listener.url}/cn>"
    pki = make_pki(name=signer, validity=timedelta(days=2), slot=3)
    sign_in_layout(sample.path, sample.index, pki.leaf.key, pki.chain,
                   signing_time=datetime.now(UTC))
    attach_referrer(
        sample.path,
        sample.platforms["linux/amd64"],
        artifact_type=f'application/x"><script>window.__pwned = 4</script>{beacon}',
        layer_media_type="application/octet-stream",
        layer=b"{}",
    )
    # the hostile signer is trusted, so the page names it (as RFC 4514 text)
    pki.write_trust_store(tmp_path / "store", "hostile")
    policy = tmp_path / "trustpolicy.json"
    policy.write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "hostile", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:hostile"], "trustedIdentities": ["*"]}]}))
    report = tmp_path / "hostile.html"
    run = run_cli(["audit", "now", f"oci-layout:{sample.path}", "--trust-policy", str(policy),
                   "--trust-store", str(tmp_path / "store"), "--format", "html", "-o", str(report)])
    assert run.code == 1, run.stderr  # the index is signed, its platforms are not
    page = open_page(browser, report.as_uri())
    text = page.evaluate("document.body.innerText")
    assert HOSTILE in text
    references = [t["reference"] for t in page.evaluate(READ_TARGETS)]
    assert f"oci-layout:{sample.path}:{HOSTILE}" in references
    assert f"<img src={leak_listener.url}/cn" in text  # in the signer's name
    assert "application/x\"><script>window.__pwned = 4</script>" in text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.images.length") == 0
    assert page.evaluate("document.scripts.length") == 1  # the page's own
    assert leak_listener.paths == []
    assert_stayed_home(page, report.as_uri())


# --- the fix command ----------------------------------------------------------------------------


def test_the_fix_command_the_page_prints_closes_the_gaps(
    browser: Browser, registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy the page's "sign every gap" command, fill in a key and certificate, run it: the
    target that was noncompliant is compliant on the next page."""
    isolate_environment(monkeypatch, tmp_path / "env")
    signed = build_signed_sample(tmp_path / "sample")
    app = f"{registry.host}/fix-{uuid.uuid4().hex[:6]}/app"
    push(registry.host, signed.path, app.split("/", 1)[1], update_fallback_tags=True)
    fixer = make_pki(name="page fixer", validity=timedelta(days=2), slot=4)
    store_dir = signed.trust_store / "x509" / "ca" / TRUST_STORE_NAME
    (store_dir / "fixer.pem").write_bytes(fixer.root.cert_pem())
    key, chain = tmp_path / "key.pem", tmp_path / "chain.pem"
    key.write_bytes(fixer.leaf.key_pem())
    chain.write_bytes(fixer.leaf.cert_pem() + fixer.root.cert_pem())
    trust = ["--trust-policy", str(signed.trust_policy), "--trust-store", str(signed.trust_store)]

    def page_of(reference: str) -> Page:
        report = tmp_path / "report.html"
        run = run_cli(["audit", "now", reference, *trust, "--format", "html", "-o", str(report)])
        assert run.code in (0, 1), run.stderr
        return open_page(browser, report.as_uri())

    section = f"document.getElementById('t-{target_id(app + ':v1')}')"
    before = page_of(f"{app}:v1")
    assert word(before.evaluate(f"{section}.querySelector('h2 .status').innerText")) == (
        "noncompliant"
    )
    command = before.evaluate(f"{section}.querySelector('.findings ~ .cmd code.fix').innerText")
    words = shlex.split(command)
    assert words[:3] == ["auditor", "sign", "--missing"]
    words = [{"KEY.pem": str(key), "CHAIN.pem": str(chain)}.get(w, w) for w in words]
    signing = run_cli([*words[1:], *trust])
    assert signing.code == 0, signing.stderr
    after = page_of(f"{app}:v1")
    assert word(after.evaluate(f"{section}.querySelector('h2 .status').innerText")) == "compliant"
    statuses = after.evaluate(
        f"Array.from({section}.querySelectorAll('li.node')).map(li => li.dataset.status)"
    )
    assert statuses == ["signed", "signed", "signed", "signed", "unsigned"]  # attestation: ignored


# --- screenshots for the README ---------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshots_of_the_overview_and_a_target_with_a_failing_platform(
    browser: Browser, audited: Audited, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("AUDITOR_SCREENSHOTS") or tmp_path)
    page = open_page(browser, audited.url, width=1280, height=900)
    overview = page.screenshot_element("#overview", folder / "page-overview.png")
    section = f"#t-{target_id(audited.app + ':v1')}"
    # the failing platform is inside what the target screenshot shows
    assert page.evaluate(
        f"document.querySelector('{section} li.node[data-status=invalid] .label').innerText"
    ) == "linux/arm64/v8"
    target = page.screenshot_element(section, folder / "page-target.png")
    phone = open_page(browser, audited.url, width=390, height=844, mobile=True,
                      color_scheme="dark")
    small = phone.screenshot(folder / "page-phone-dark.png", max_height=1400)
    for path, size in ((folder / "page-overview.png", overview),
                       (folder / "page-target.png", target),
                       (folder / "page-phone-dark.png", small)):
        assert png_size(path) == size
        assert path.stat().st_size > 20_000  # a real picture, not a blank page
    assert 1000 <= overview[0] <= 1280
