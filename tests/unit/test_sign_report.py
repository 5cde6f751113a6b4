"""``auditor sign`` output (auditor/signing/report.py), and secrets staying out of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from auditor.model import GraphNode, NodeKind, Platform
from auditor.oci import mediatypes as mt
from auditor.signing.command import NodeResult, Outcome, SignReport
from auditor.signing.report import render_json, render_table
from devkit.samples import write_sample_layout
from devkit.testpki import make_pki
from tests.support.scenarios import isolate_environment, run_cli

ROOT = "sha256:" + "1" * 64
CHILD = "sha256:" + "2" * 64
SIG = "sha256:" + "3" * 64


def _report() -> SignReport:
    index = GraphNode(ROOT, mt.OCI_INDEX, 10, NodeKind.INDEX)
    child = GraphNode(CHILD, mt.OCI_MANIFEST, 5, NodeKind.PLATFORM, Platform("linux", "amd64"),
                      ROOT, 1)
    return SignReport(
        reference="r.example/app:v1",
        digest=ROOT,
        signer="CN=me",
        thumbprint="ab" * 32,
        dry_run=False,
        nodes=(
            NodeResult(index, Outcome.SIGNED, "the reference's index", SIG, "fallback tag"),
            NodeResult(child, Outcome.FAILED, "could not be read: evil\x1b[2J\nline"),
        ),
    )


def test_json_report_has_one_entry_per_node() -> None:
    doc = json.loads(render_json(_report()))
    assert doc["schema_version"] == 1
    assert doc["failed"] is True
    assert [(n["digest"], n["outcome"], n["signature"], n["via"]) for n in doc["nodes"]] == [
        (ROOT, "signed", SIG, "fallback tag"),
        (CHILD, "failed", None, None),
    ]
    assert doc["nodes"][1]["platform"] == "linux/amd64"


def test_table_escapes_registry_text_and_counts_outcomes() -> None:
    text = render_table(_report())
    assert "\x1b" not in text
    assert "evil\\x1b[2J\\x0aline" in text
    assert "sha256:333333333333" in text
    assert text.rstrip().endswith("1 signed, 1 failed")


def test_passphrase_and_key_never_reach_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_environment(monkeypatch, tmp_path)
    pki = make_pki(key_type="ec256")
    secret = "tr0ub4dor-and-3"
    key_pem = pki.leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret.encode()),
    )
    (tmp_path / "k.pem").write_bytes(key_pem)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pki.chain)
    (tmp_path / "c.pem").write_bytes(chain)
    layout = tmp_path / "layout"
    shutil.copytree(write_sample_layout(tmp_path / "src").path, layout)
    monkeypatch.setenv("SIGN_PASSPHRASE", secret)
    for fmt in ("table", "json"):
        run = run_cli([
            "sign", f"oci-layout:{layout}:v1", "-r", "--key", str(tmp_path / "k.pem"),
            "--cert", str(tmp_path / "c.pem"), "--key-passphrase-env", "SIGN_PASSPHRASE",
            "--format", fmt, "--force",
        ])
        assert run.code == 0, run.stderr
        for text in (run.stdout, run.stderr):
            assert secret not in text
            assert "PRIVATE KEY" not in text
    # Nothing key-like was written into the layout either.
    assert not [p for p in layout.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
