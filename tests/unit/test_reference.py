"""Reference parsing: docker.io defaults, ports, IPv6 loopback, digests, layouts, bad input."""

from __future__ import annotations

import pytest

from auditor.errors import InvalidReference
from auditor.oci.reference import ImageReference, LayoutReference, is_loopback, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpine", ImageReference("docker.io", "library/alpine")),
        ("alpine:3.20", ImageReference("docker.io", "library/alpine", "3.20")),
        ("index.docker.io/acme/app:v1", ImageReference("docker.io", "acme/app", "v1")),
        ("acme/app", ImageReference("docker.io", "acme/app")),
        ("ghcr.io/acme/app", ImageReference("ghcr.io", "acme/app")),
        ("localhost/app:v1", ImageReference("localhost", "app", "v1")),
        ("localhost:5000/team/app:v1", ImageReference("localhost:5000", "team/app", "v1")),
        ("127.0.0.1:5000/a/b/c@" + DIGEST, ImageReference("127.0.0.1:5000", "a/b/c", None, DIGEST)),
        ("[::1]:5000/x/y:t", ImageReference("[::1]:5000", "x/y", "t")),
        ("r.io/app:v1@" + DIGEST, ImageReference("r.io", "app", "v1", DIGEST)),
        ("http://127.0.0.1:5000/app:v1", ImageReference("127.0.0.1:5000", "app", "v1")),
    ],
)
def test_parses_image_references(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci-layout:/tmp/img", LayoutReference("/tmp/img")),
        ("oci-layout:/tmp/img:v1", LayoutReference("/tmp/img", "v1")),
        ("oci-layout:./rel/dir", LayoutReference("./rel/dir")),
        ("oci-layout:/tmp/img@" + DIGEST, LayoutReference("/tmp/img", None, DIGEST)),
        ("oci-layout:/tmp/x.tar:latest", LayoutReference("/tmp/x.tar", "latest")),
    ],
)
def test_parses_layout_references(text: str, expected: LayoutReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("ghcr.io/Acme/App", "'Acme/App' is not a valid repository name"),
        ("ghcr.io/acme/app:bad tag", "not a valid tag"),
        ("ghcr.io/acme/app@sha256:1234", "not a valid digest"),
        ("oci-layout:", "no layout path"),
        ("ghcr.io/acme//app", "not a valid repository name"),
    ],
)
def test_rejects_bad_references_naming_them(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_reference_properties() -> None:
    ref = parse_reference("[::1]:5000/team/app:v1")
    assert isinstance(ref, ImageReference)
    assert ref.host == "[::1]"
    assert is_loopback(ref.registry)
    assert ref.scope == "[::1]:5000/team/app"
    assert str(ref.with_digest(DIGEST)) == f"[::1]:5000/team/app:v1@{DIGEST}"
    assert ref.with_digest(DIGEST).ref == DIGEST
    remote = parse_reference("ghcr.io/acme/app")
    assert isinstance(remote, ImageReference)
    assert not is_loopback(remote.registry)
    assert remote.ref is None


@pytest.mark.parametrize(
    "text",
    ["host\n/app:v1", "host/app\n:v1", "localhost:5000\n/app", "ghcr.io/team\n/app"],
)
def test_a_trailing_newline_is_no_part_of_a_valid_name(text: str) -> None:
    """``$`` matches before a final newline: the grammar checks must match whole strings, or a
    catalog name ``app\\n`` passes as a repository and fails later as a URL that does not
    parse (a misleading error), and ``v1\\n`` passes as a tag."""
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_grammar_checks_refuse_a_trailing_newline() -> None:
    from auditor.oci.reference import is_valid_host, is_valid_repository, is_valid_tag

    assert is_valid_repository("team/app")
    assert not is_valid_repository("team/app\n")
    assert not is_valid_repository("app\n/x")
    assert is_valid_host("localhost:5000")
    assert not is_valid_host("localhost:5000\n")
    assert is_valid_tag("v1")
    assert not is_valid_tag("v1\n")
