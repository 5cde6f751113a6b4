"""Report metadata (version, config, trust files), run notes and error categories in every
format; the SARIF stays valid and GitHub-ready with them."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import jsonschema

from auditor import __version__
from auditor.errors import (
    AuthError,
    ErrorCategory,
    MalformedContent,
    NotFound,
    RateLimited,
    RegistryError,
    TooLarge,
)
from auditor.formats import Format, render
from auditor.model import AuditReport, FileStamp, NoteKind, ReportNote, RunInfo
from auditor.registry.exchange import DeadlineExceeded
from auditor.runinfo import directory_sha256, file_sha256, run_info, stamp
from tests.support import github_sarif
from tests.unit.test_formats import SCHEMA, sample_report

INFO = RunInfo(
    version=__version__,
    config=FileStamp("/work/repo/auditor.yaml", "a" * 64),
    trust_policy=FileStamp("/work/repo/trust/policy.json", "b" * 64),
    trust_store=FileStamp("/work/repo/trust/store", "c" * 64),
    trust_stores=(FileStamp("/work/repo/trust/store/x509/ca/acme", "d" * 64, "ca:acme"),),
)
NOTES = (
    ReportNote(NoteKind.TAGS_LEFT_OUT, "ghcr.io/acme/app",
               "ghcr.io/acme/app: 7 of 57 tags left out by tags.limit 50", 7),
    ReportNote(NoteKind.NO_REPOSITORY_MATCHED, "ghcr.io/acme-*",
               "ghcr.io: repository glob acme-* matched no repository"),
)


def _report() -> AuditReport:
    return replace(sample_report(), info=INFO, notes=NOTES)


def test_directory_hash_does_not_depend_on_where_the_directory_is(tmp_path: Path) -> None:
    store = tmp_path / "a" / "store"
    (store / "x509" / "ca" / "acme").mkdir(parents=True)
    (store / "x509" / "ca" / "acme" / "root.pem").write_bytes(b"cert")
    copy = tmp_path / "b" / "elsewhere"
    shutil.copytree(store, copy)
    assert directory_sha256(store) == directory_sha256(copy)
    (copy / "x509" / "ca" / "acme" / "root.pem").write_bytes(b"other")
    assert directory_sha256(store) != directory_sha256(copy)
    (store / "x509" / "ca" / "acme" / "root.pem").rename(store / "x509" / "ca" / "acme" / "b.pem")
    assert directory_sha256(store) != directory_sha256(tmp_path / "a" / "store-never")


def test_stamps_name_paths_and_hashes(tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text("registries: []\n")
    assert file_sha256(config) == hashlib.sha256(b"registries: []\n").hexdigest()
    assert file_sha256(tmp_path / "missing") is None
    assert stamp(None) is None
    info = run_info(config=config, named_stores=[("ca:x", tmp_path)])
    assert info.version == __version__
    assert info.config == FileStamp(str(config), file_sha256(config))
    assert info.trust_stores == (FileStamp(str(tmp_path), directory_sha256(tmp_path), "ca:x"),)
    assert info.trust_policy is None


def test_json_carries_run_notes_and_categories() -> None:
    data = json.loads(render(_report(), Format.JSON))
    assert data["run"] == {
        "tool": {"name": "registry-auditor", "version": __version__},
        "config": {"path": "/work/repo/auditor.yaml", "sha256": "a" * 64},
        "trust": {
            "policy": {"path": "/work/repo/trust/policy.json", "sha256": "b" * 64},
            "store": {"path": "/work/repo/trust/store", "sha256": "c" * 64},
            "stores": [
                {"name": "ca:acme", "path": "/work/repo/trust/store/x509/ca/acme",
                 "sha256": "d" * 64}
            ],
            "cosign": [],
        },
    }
    assert data["notes"] == [
        {"kind": "tags-left-out", "subject": "ghcr.io/acme/app",
         "message": NOTES[0].message, "left_out": 7},
        {"kind": "no-repository-matched", "subject": "ghcr.io/acme-*",
         "message": NOTES[1].message, "left_out": 0},
    ]
    assert [t["error_category"] for t in data["targets"]] == [None, None, "other"]


def test_table_says_notes_and_the_run_before_the_summary() -> None:
    lines = render(_report(), Format.TABLE).splitlines()
    assert lines[-4:-1] == [
        f"warning: {NOTES[0].message}",
        f"warning: {NOTES[1].message}",
        f"run: auditor {__version__}; config /work/repo/auditor.yaml (sha256:aaaaaaaaaaaa); "
        "trust policy /work/repo/trust/policy.json (sha256:bbbbbbbbbbbb); "
        "trust store /work/repo/trust/store (sha256:cccccccccccc); "
        "stores ca:acme sha256:dddddddddddd",
    ]
    assert lines[-1].startswith("3 targets:")
    quiet = render(_report(), Format.TABLE, quiet=True).splitlines()
    assert quiet[:2] == [f"warning: {NOTES[0].message}", f"warning: {NOTES[1].message}"]


def test_sarif_carries_them_and_stays_valid_for_github() -> None:
    doc = json.loads(render(_report(), Format.SARIF, workspace="/work/repo"))
    jsonschema.validate(doc, SCHEMA)
    assert github_sarif.github_problems(doc) == []
    (run,) = doc["runs"]
    assert run["tool"]["driver"]["version"] == __version__
    invocation = run["invocations"][0]
    assert invocation["properties"]["config"] == {"path": "auditor.yaml", "sha256": "a" * 64}
    assert invocation["properties"]["trust"]["stores"][0]["path"] == "trust/store/x509/ca/acme"
    notes = invocation["toolExecutionNotifications"]
    by_id = {n["descriptor"]["id"]: n for n in notes}
    assert by_id["tags-left-out"]["properties"] == {"subject": "ghcr.io/acme/app", "leftOut": 7}
    assert by_id["no-repository-matched"]["level"] == "warning"
    assert by_id["unchecked"]["properties"]["category"] == "other"
    descriptors = {d["id"] for d in run["tool"]["driver"]["notifications"]}
    assert descriptors == {"unchecked", "tags-left-out", "no-repository-matched"}
    rules = [r["properties"]["rule"] for r in run["results"]]
    assert rules
    assert all(r["scope"] == "ghcr.io/acme/*" and r["require"] == "both" for r in rules)


def test_every_error_class_has_its_category() -> None:
    assert AuthError("x").category is ErrorCategory.AUTH
    assert NotFound("x").category is ErrorCategory.NOT_FOUND
    assert RateLimited("x").category is ErrorCategory.RATE_LIMITED
    assert DeadlineExceeded("x").category is ErrorCategory.TIMEOUT
    assert MalformedContent("x").category is ErrorCategory.INVALID
    assert TooLarge("x").category is ErrorCategory.INVALID
    assert RegistryError("HTTP 503").category is ErrorCategory.OTHER  # the fallback
    assert RegistryError("x", category=ErrorCategory.TLS).category is ErrorCategory.TLS
    assert RegistryError("y").category is ErrorCategory.OTHER  # an override is per error
