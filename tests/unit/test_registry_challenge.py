"""WWW-Authenticate parsing: quoted commas, several challenges, odd spacing, junk."""

from __future__ import annotations

from auditor.registry.challenge import Challenge, parse_all, parse_challenges


def test_bearer_with_quoted_commas_in_scope() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/app:pull,push"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example/token",
                "service": "registry.example",
                "scope": "repository:team/app:pull,push",
            },
        )
    ]


def test_basic() -> None:
    assert parse_challenges('Basic realm="Registry Realm"') == [
        Challenge("basic", {"realm": "Registry Realm"})
    ]


def test_several_challenges_in_one_header_and_case() -> None:
    header = 'BASIC Realm="a, b" , bearer REALM = "https://t/x", error="insufficient_scope"'
    challenges = parse_challenges(header)
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].get("realm") == "a, b"
    assert challenges[1].get("realm") == "https://t/x"
    assert challenges[1].get("error") == "insufficient_scope"


def test_escaped_quotes_and_unquoted_values() -> None:
    challenge = parse_challenges(r'Bearer realm="say \"hi\"",service=plain.host')[0]
    assert challenge.get("realm") == 'say "hi"'
    assert challenge.get("service") == "plain.host"


def test_token68_and_scheme_only() -> None:
    challenges = parse_challenges("Negotiate abc123==, Bearer")
    assert [c.scheme for c in challenges] == ["negotiate", "bearer"]
    assert challenges[1].params == {}


def test_garbage_does_not_raise() -> None:
    assert parse_challenges("") == []
    assert parse_challenges(",,, ") == []
    unterminated = parse_challenges('Bearer realm="https://t/token')
    assert unterminated[0].get("realm") == "https://t/token"


def test_parse_all_joins_headers() -> None:
    challenges = parse_all(['Basic realm="r"', 'Bearer realm="https://t",service="s"'])
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
