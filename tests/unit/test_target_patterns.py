"""How a TARGET argument is read: a Docker Hub image, an image on a named registry, or a whole
registry / repository glob. The host rule is Docker's (a first component with ``.`` or ``:``,
or ``localhost``), plus one for a lone component; the edge cases are the ambiguous ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import InvalidReference
from auditor.notary.trustconfig import notation_config_dir
from auditor.oci.reference import ImageReference, LayoutReference, RegistryPattern, parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a whole registry
        ("127.0.0.1:5000", RegistryPattern("127.0.0.1:5000")),
        ("localhost", RegistryPattern("localhost")),
        ("localhost:5000", RegistryPattern("localhost:5000")),
        ("registry.example.com", RegistryPattern("registry.example.com")),
        ("registry.example.com/", RegistryPattern("registry.example.com")),
        ("https://registry.example.com", RegistryPattern("registry.example.com")),
        ("[::1]:5000", RegistryPattern("[::1]:5000")),
        ("reg.example/*", RegistryPattern("reg.example", "*")),
        ("myreg:5000/*", RegistryPattern("myreg:5000", "*")),
        # a glob
        ("reg.example/team/*", RegistryPattern("reg.example", "team/*")),
        ("reg.example/team/app-?", RegistryPattern("reg.example", "team/app-?")),
        ("reg.example/[ab]*/app", RegistryPattern("reg.example", "[ab]*/app")),
        # Docker Hub images, however much they look like hosts
        ("alpine", ImageReference("docker.io", "library/alpine")),
        ("node:20", ImageReference("docker.io", "library/node", "20")),  # a tag, not a port
        ("ubuntu:22.04", ImageReference("docker.io", "library/ubuntu", "22.04")),
        ("myreg:5000", ImageReference("docker.io", "library/myreg", "5000")),
        ("team/app", ImageReference("docker.io", "team/app")),
        ("team/app:v1", ImageReference("docker.io", "team/app", "v1")),
        # images on a named registry
        ("reg.example/team/app", ImageReference("reg.example", "team/app")),
        ("localhost/app:v1", ImageReference("localhost", "app", "v1")),
        ("myreg:5000/app", ImageReference("myreg:5000", "app")),
        ("oci-layout:./dir:v1", LayoutReference("./dir", "v1")),
    ],
)
def test_targets(text: str, expected: object) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("team/*", "a repository glob needs a registry host (HOST/team/*)"),
        ("*", "is not a valid"),
        ("docker.io", "Docker Hub has no catalog"),
        ("index.docker.io/*", "Docker Hub has no catalog"),
        ("reg.example/team/*:v1", "a repository glob takes no tag or digest"),
        ("reg.example/*@sha256:" + "a" * 64, "a repository glob takes no tag or digest"),
        ("reg.example/Team/*", "'Team/*' is not a repository glob"),
        ("reg.example/te am/*", "is not a repository glob"),
        ("bob:pw@reg.example/*", "must not carry credentials"),
    ],
)
def test_bad_targets_are_named(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_target(text)
    assert fragment in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_a_pattern_prints_as_written() -> None:
    assert str(RegistryPattern("reg.example:5000")) == "reg.example:5000/*"
    assert str(RegistryPattern("reg.example", "team/*")) == "reg.example/team/*"


def test_notation_config_directory_per_platform(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As notation-go's dir package (Go's os.UserConfigDir): macOS ignores XDG_CONFIG_HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert notation_config_dir("darwin") == tmp_path / "Library/Application Support/notation"
    assert notation_config_dir("linux") == tmp_path / "xdg/notation"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert notation_config_dir("linux") == tmp_path / ".config/notation"
