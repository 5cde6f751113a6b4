"""Tag and repository selection rules (pure)."""

from __future__ import annotations

from auditor.config import TagFilter
from auditor.targets import is_auditable_tag, select_repositories, select_tags

HEX = "0" * 64


def test_attachment_tags_are_not_images() -> None:
    assert not is_auditable_tag(f"sha256-{HEX}")
    assert not is_auditable_tag(f"sha256-{HEX}.sig")
    assert not is_auditable_tag(f"sha256-{HEX}.att")
    assert not is_auditable_tag(f"sha256-{HEX}.sbom")
    assert is_auditable_tag("v1")
    assert is_auditable_tag("sha256-short")


def test_select_tags_filters_sorts_and_limits() -> None:
    tags = ["v2", "v1", "dev-1", f"sha256-{HEX}", "v10", "v3"]
    tf = TagFilter(include=["v*"], exclude=["v3"], limit=2)
    assert select_tags(tags, tf) == ["v1", "v10"]
    assert select_tags(tags, TagFilter()) == ["dev-1", "v1", "v10", "v2", "v3"]


def test_select_repositories_by_glob() -> None:
    catalog = ["team/app", "team/db", "other/app", "team/sub/x"]
    assert select_repositories(catalog, ["team/*"]) == ["team/app", "team/db", "team/sub/x"]
    assert select_repositories(catalog, ["other/app", "none/*"]) == ["other/app"]
