"""Tag and repository selection rules (pure)."""

from __future__ import annotations

from auditor.config import TagFilter
from auditor.model import NoteKind
from auditor.oci.attachments import AttachmentTag, attachment_tag
from auditor.targets import (
    choose_tags,
    newest_first,
    select_repositories,
    select_tags,
    tags_left_out_note,
    version_key,
)

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


def test_select_tags_filters_sorts_and_limits_to_the_newest() -> None:
    tags = ["v2", "v1", "dev-1", f"sha256-{HEX}", "v10", "v3"]
    tf = TagFilter(include=["v*"], exclude=["v3"], limit=2)
    assert select_tags(tags, tf) == ["v10", "v2"]  # v10 is newer than v2, not "before" it
    selection = choose_tags(tags, tf)
    assert (selection.candidates, selection.left_out) == (3, ["v1"])
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


def test_versions_order_as_semver_then_names() -> None:
    tags = ["1.2.0", "v1.10.0", "1.10.0-rc.1", "1.10.0-rc.2", "1.9", "latest", "main",
            "nightly-2024-05-01", "nightly-2024-04-30", "1.10.0-beta", "1.10.0-rc.10",
            "2.0.0+build.5"]
    assert newest_first(tags) == [
        "2.0.0+build.5",
        "v1.10.0",
        "1.10.0-rc.10",
        "1.10.0-rc.2",
        "1.10.0-rc.1",
        "1.10.0-beta",
        "1.9",
        "1.2.0",
        "nightly-2024-05-01",  # the rest by name, descending: date stamps newest first
        "nightly-2024-04-30",
        "main",
        "latest",
    ]


def test_version_key_parses_versions_only() -> None:
    assert version_key("v1") == (1, 0, 0, 1, ())
    assert version_key("1.2.3-alpha.1") == (1, 2, 3, 0, ((1, "alpha"), (0, 1)))
    for text in ("latest", "1.2.3.4", "01.2", "v", "1.2-", "sha256-" + HEX, "9" * 19):
        assert version_key(text) is None, text
    assert version_key("1.0.0-rc.1") < version_key("1.0.0")  # type: ignore[operator]


def test_limit_never_drops_silently() -> None:
    tags = [f"1.{i}.0" for i in range(12)] + ["latest"]
    selection = choose_tags(tags, TagFilter(limit=5))
    assert selection.tags == ["1.10.0", "1.11.0", "1.7.0", "1.8.0", "1.9.0"]
    assert selection.candidates == 13
    assert selection.left_out[:2] == ["1.6.0", "1.5.0"]
    assert selection.left_out[-1] == "latest"
    note = tags_left_out_note("r.example/team/app", selection, 5)
    assert note.kind is NoteKind.TAGS_LEFT_OUT
    assert note.left_out == 8
    assert note.message.startswith("r.example/team/app: 8 of 13 tags not audited: tags.limit is 5")
    assert "left out: 1.6.0, 1.5.0, 1.4.0, 1.3.0, 1.2.0 and 3 more" in note.message
    assert choose_tags(tags, TagFilter(limit=13)).left_out == []


def test_version_key_survives_hostile_tag_names() -> None:
    """Tags come from the registry unchecked: a pre-release number past Python's int-string
    limit (4300 digits) must not crash the ordering, and a name longer than distribution's
    128-character tag grammar is no version (so no number in it can be huge)."""
    huge = "1.0.0-" + "1" * 5000
    assert version_key(huge) is None
    assert version_key("1." + "1" * 4400) is None
    assert version_key("1.0.0-" + "a" * 122) is not None  # 128 characters: still a version
    assert version_key("1.0.0-" + "a" * 123) is None
    selection = choose_tags([huge, "v2", "v1", "latest"], TagFilter(limit=2))
    assert selection.tags == ["v1", "v2"]
    assert selection.left_out == ["latest", huge]  # not versions: by name, descending
