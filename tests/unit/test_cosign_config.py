"""The ``cosign:`` config section: validation with paths, files read relative to the config,
keys and trusted roots loaded (or refused with the rule and file named), no network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from auditor.config import load_config, parse_config
from auditor.cosign.material import load_cosign_trust
from auditor.errors import ConfigError
from tests.support.cosign_fixtures import CONTAINERS_IMAGE, TRUSTED_ROOT

PUBLIC_GOOD_REKOR = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"


def test_every_cosign_problem_is_reported_with_its_path() -> None:
    data = {
        "cosign": {
            "rules": [
                {"scopes": ["*"]},
                {"scopes": [], "key": "k.pub"},
                {"scopes": ["*"], "key": "k.pub", "keyless": {"identity": "a", "issuer": "b"}},
                {"scopes": ["*"], "keyless": {"identity": "a"}},
                {"scopes": ["*"], "keyless": {"identity_regexp": "(", "issuer": "b"}},
                {"scopes": ["*"], "keyless": {"identity": "a", "issuer": "b", "colour": 1}},
            ]
        }
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    text = str(info.value)
    assert "cfg.yaml: cosign.rules[0]: give keyless or key, exactly one" in text
    assert "cfg.yaml: cosign.rules[1].scopes:" in text
    assert "cfg.yaml: cosign.rules[2]: give keyless or key, exactly one" in text
    assert "cfg.yaml: cosign.rules[3].keyless: give exactly one of issuer or issuer_regexp" in text
    assert "cfg.yaml: cosign.rules[4].keyless: identity_regexp '(' does not compile" in text
    assert "cfg.yaml: cosign.rules[5].keyless.colour:" in text


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.pub").write_bytes((CONTAINERS_IMAGE / "cosign.pub").read_bytes())
    (tmp_path / "root.json").write_bytes(TRUSTED_ROOT.read_bytes())
    path = tmp_path / "auditor.yaml"
    path.write_text(
        "cosign:\n"
        "  trusted_root: root.json\n"
        "  rules:\n"
        "    - {name: team, scopes: ['127.0.0.1:5000/team/*'], key: keys/cosign.pub}\n"
        "    - name: release\n"
        "      scopes: ['*']\n"
        "      keyless: {identity_regexp: '^https://github.com/acme/', issuer: 'https://x'}\n"
    )
    config, _ = load_config(path)
    assert config.cosign is not None
    assert config.cosign.trusted_root == tmp_path / "root.json"
    trust = load_cosign_trust(config.cosign)
    team = trust.rule_for("127.0.0.1:5000/team/app")
    assert team is not None
    assert team.name == "team"
    assert not team.ignore_tlog
    assert team.keys[0].label == "cosign.pub"
    release = trust.rule_for("ghcr.io/acme/app")
    assert release is not None
    assert release.keyless is not None
    assert PUBLIC_GOOD_REKOR in trust.root.log_keys


def test_default_trusted_root_is_the_wheels_and_is_never_fetched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    config = parse_config(
        {"cosign": {"rules": [{"scopes": ["*"], "keyless": {"identity": "a", "issuer": "b"}}]}},
        "c",
    )
    assert config.cosign is not None
    trust = load_cosign_trust(config.cosign)
    assert "sigstore package" in trust.root.source
    assert PUBLIC_GOOD_REKOR in trust.root.log_keys
    trust.root.verifier()


def _short_rsa() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (refused: that is the point)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _dsa() -> bytes:
    key = dsa.generate_private_key(key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not a key", "not a PEM public key"),
        (_short_rsa(), "RSA key of 1024 bits is too short"),
        (_dsa(), "is not a supported key type"),
    ],
    ids=["garbage", "short-rsa", "dsa"],
)
def test_bad_key_files_name_the_rule(tmp_path: Path, content: bytes, why: str) -> None:
    (tmp_path / "k.pub").write_bytes(content)
    config = parse_config(
        {"cosign": {"rules": [{"scopes": ["*"], "key": str(tmp_path / "k.pub")}]}}, "c"
    )
    assert config.cosign is not None
    with pytest.raises(ConfigError, match=r"cosign\.rules\[0\]\.key: ") as info:
        load_cosign_trust(config.cosign)
    assert why in str(info.value)


def test_missing_key_file_and_bad_trusted_root(tmp_path: Path) -> None:
    config = parse_config(
        {"cosign": {"rules": [{"scopes": ["*"], "key": str(tmp_path / "absent.pub")}]}}, "c"
    )
    assert config.cosign is not None
    with pytest.raises(ConfigError, match=r"absent\.pub: cannot read"):
        load_cosign_trust(config.cosign)
    (tmp_path / "root.json").write_text('{"mediaType": "nope"}')
    config = parse_config(
        {
            "cosign": {
                "trusted_root": str(tmp_path / "root.json"),
                "rules": [{"scopes": ["*"], "keyless": {"identity": "a", "issuer": "b"}}],
            }
        },
        "c",
    )
    assert config.cosign is not None
    with pytest.raises(ConfigError, match=r"root\.json: not a Sigstore trusted root"):
        load_cosign_trust(config.cosign)
