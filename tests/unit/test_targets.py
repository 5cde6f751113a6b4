"""Tag and repository selection rules (pure)."""

from __future__ import annotations

from auditor.config import TagFilter
from auditor.oci.attachments import AttachmentTag, attachment_tag
from auditor.targets import select_repositories, select_tags

HEX = "0" * 64


def test_attachment_tag_names_say_what_they_claim() -> None:
    subject = f"sha256:{HEX}"
    assert attachment_tag(f"sha256-{HEX}") == AttachmentTag(f"sha256-{HEX}", subject, "referrers")
    for kind in ("sig", "att", "sbom"):
        assert attachment_tag(f"sha256-{HEX}.{kind}") == AttachmentTag(
            f"sha256-{HEX}.{kind}", subject, kind
        )
    assert attachment_tag(f"sha512-{'1' * 128}") is not None
    for ordinary in ("v1", "sha256-short", f"sha256-{HEX}.tar", f"SHA256-{HEX}"):
        assert attachment_tag(ordinary) is None


def test_select_tags_filters_sorts_and_limits() -> None:
    tags = ["v2", "v1", "dev-1", f"sha256-{HEX}", "v10", "v3"]
    tf = TagFilter(include=["v*"], exclude=["v3"], limit=2)
    assert select_tags(tags, tf) == ["v1", "v10"]
    assert select_tags(tags, TagFilter(), {f"sha256-{HEX}"}) == ["dev-1", "v1", "v10", "v2", "v3"]


def test_a_name_alone_never_hides_a_tag() -> None:
    """Only a tag whose content was checked (passed in as genuine) is left out."""
    tags = ["v1", f"sha256-{HEX}", f"sha256-{HEX}.sig"]
    assert select_tags(tags, TagFilter()) == sorted(tags)
    assert select_tags(tags, TagFilter(limit=1), {f"sha256-{HEX}", f"sha256-{HEX}.sig"}) == ["v1"]


def test_select_repositories_by_glob() -> None:
    catalog = ["team/app", "team/db", "other/app", "team/sub/x"]
    assert select_repositories(catalog, ["team/*"]) == ["team/app", "team/db", "team/sub/x"]
    assert select_repositories(catalog, ["other/app", "none/*"]) == ["other/app"]
