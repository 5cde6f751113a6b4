"""Registry notifications: each format, only pushes and deletes, hostile bodies, auth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.daemon.events import (
    MAX_EVENTS_PER_REQUEST,
    Action,
    EventError,
    authorized,
    parse_events,
)

DATA = Path(__file__).parent.parent / "data" / "events"


def _load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_distribution_counts_manifest_pushes_and_deletes_only() -> None:
    parsed = parse_events(_load("distribution-push.json"))
    assert [(e.scope, e.action, e.tag, e.source) for e in parsed.events] == [
        ("127.0.0.1:5000/team/app", Action.PUSH, "v1", "distribution"),
        ("127.0.0.1:5000/team/other", Action.DELETE, None, "distribution"),
    ]
    assert parsed.ignored == 2  # the blob push and the pull


def test_harbor_default_push() -> None:
    parsed = parse_events(_load("harbor-default-push.json"))
    assert [(e.scope, e.action, e.tag, e.source) for e in parsed.events] == [
        ("harbor.example.com/library/app", Action.PUSH, "v1", "harbor")
    ]


def test_harbor_cloudevents_push_by_digest_has_no_tag() -> None:
    parsed = parse_events(_load("harbor-cloudevents-push.json"))
    assert [(e.scope, e.action, e.tag) for e in parsed.events] == [
        ("harbor.example.com/library/app", Action.PUSH, None)
    ]


def test_harbor_pull_is_ignored() -> None:
    parsed = parse_events(_load("harbor-cloudevents-pull.json"))
    assert parsed.events == ()
    assert parsed.ignored == 1


def test_plain_reference() -> None:
    parsed = parse_events(b'{"reference": "127.0.0.1:5000/team/app:v2"}')
    assert [(e.scope, e.tag, e.source) for e in parsed.events] == [
        ("127.0.0.1:5000/team/app", "v2", "reference")
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"something": 1}',
        b'{"events": "nope"}',
        b'{"reference": 5}',
        b'{"reference": "oci-layout:/etc:v1"}',
        b'{"reference": "UPPER/Case:v1"}',
        b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": []}}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_unreadable_bodies_are_a_named_error(body: bytes) -> None:
    with pytest.raises(EventError):
        parse_events(body)


def test_too_many_events_refused() -> None:
    event = {
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "repository": "a",
            "tag": "t",
        },
        "request": {"host": "127.0.0.1:5000"},
    }
    body = json.dumps({"events": [event] * (MAX_EVENTS_PER_REQUEST + 1)}).encode()
    with pytest.raises(EventError, match="more than"):
        parse_events(body)


def test_hostile_fields_are_ignored_not_crashes() -> None:
    events = [
        {
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "repository": "../../etc",
                "tag": "v1",
            },
            "request": {"host": "127.0.0.1:5000"},
        },
        {
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "repository": "ok/repo",
                "tag": "bad tag!",
            },
            "request": {"host": "127.0.0.1:5000"},
        },
        {"action": "push", "target": ["not", "a", "dict"]},
        "string event",
        {
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "repository": "ok/repo",
            },
            "request": {"host": "bad host/"},
        },
    ]
    parsed = parse_events(json.dumps({"events": events}).encode())
    # The bad tag is dropped, the repository still re-audited; everything else is ignored.
    assert [(e.scope, e.tag) for e in parsed.events] == [("127.0.0.1:5000/ok/repo", None)]
    assert parsed.ignored == 4


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=40),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "events",
                        "action",
                        "target",
                        "mediaType",
                        "repository",
                        "tag",
                        "request",
                        "host",
                        "type",
                        "event_data",
                        "data",
                        "resources",
                        "resource_url",
                        "specversion",
                        "reference",
                        "repo_full_name",
                        "repository",
                    ]
                )
                | st.text(max_size=8),
                children,
                max_size=5,
            )
        ),
        max_leaves=30,
    )
)
def test_any_json_is_a_value_or_an_event_error(value: object) -> None:
    try:
        parsed = parse_events(json.dumps(value).encode())
    except EventError:
        return
    assert parsed.ignored >= 0


def test_authorization_bearer_or_harbor_header_in_constant_time() -> None:
    assert authorized("Bearer tok-1", ["tok-1"])
    assert authorized("bearer tok-1", ["tok-1"])
    assert authorized("harbor-secret", ["tok-1", "harbor-secret"])
    assert not authorized("Bearer tok-2", ["tok-1"])
    assert not authorized(None, ["tok-1"])
    assert not authorized("", ["tok-1"])
    assert not authorized("Bearer ", [""])
    assert not authorized("Bearer tok-1", [])
    assert not authorized("Bearer tök", ["tok"])
