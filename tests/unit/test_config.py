"""Config loading: every problem reported at once with its path; secrets only from *_env."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import load_config, parse_config
from auditor.errors import ConfigError


def test_minimal_config_defaults(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("registries:\n  - url: http://127.0.0.1:5000\n    repositories: [team/app]\n")
    config, source = load_config(None, cwd=tmp_path)
    assert source == path
    reg = config.registries[0]
    assert reg.host == "127.0.0.1:5000"
    assert reg.scheme == "http"
    assert reg.tags.include == ["*"]
    assert reg.tags.limit == 50
    assert config.limits.max_manifest_bytes == 4 * 1024 * 1024


def test_no_config_file_is_an_empty_config(tmp_path: Path) -> None:
    config, source = load_config(None, cwd=tmp_path)
    assert source is None
    assert config.registries == []


def test_every_problem_is_reported_with_its_path() -> None:
    data = {
        "registries": [
            {"url": "ftp://x", "repositories": ["a"], "tags": {"limit": 0}},
            {"url": "http://10.0.0.5:5000", "repositories": []},
        ],
        "coverage": [{"scope": "*", "require": "all", "platforms": ["linux"]}],
        "bogus": 1,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    lines = str(info.value).splitlines()
    text = "\n".join(lines)
    assert any(line.startswith("cfg.yaml: registries[0].url:") for line in lines), text
    assert any(line.startswith("cfg.yaml: registries[0].tags.limit:") for line in lines), text
    assert any(line.startswith("cfg.yaml: registries[1].repositories:") for line in lines), text
    assert any(line.startswith("cfg.yaml: coverage[0].require:") for line in lines), text
    assert any(line.startswith("cfg.yaml: coverage[0].platforms[0]:") for line in lines), text
    assert any(line.startswith("cfg.yaml: bogus:") for line in lines), text


def test_plain_http_beyond_loopback_needs_insecure() -> None:
    with pytest.raises(ConfigError, match=r"registries\[0\]: .*needs insecure: true"):
        parse_config({"registries": [{"url": "http://reg.lan:5000", "repositories": ["a"]}]}, "c")
    ok = parse_config(
        {"registries": [{"url": "http://reg.lan:5000", "repositories": ["a"], "insecure": True}]},
        "c",
    )
    assert ok.registries[0].scheme == "http"


def test_password_env_is_read_at_load_and_never_shown() -> None:
    config = parse_config(
        {"registries": [{"url": "https://r.io", "repositories": ["a"],
                         "auth": {"username": "bot", "password_env": "REG_PW"}}]},
        "c",
    )
    auth = config.registries[0].auth
    assert auth is not None
    resolved = auth.resolve({"REG_PW": "s3cret-value"}, "registries[0].auth")
    assert resolved.password is not None
    assert resolved.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(resolved)
    assert "s3cret-value" not in str(resolved.model_dump())
    with pytest.raises(ConfigError, match=r"registries\[0\]\.auth\.password_env: .*REG_PW"):
        auth.resolve({}, "registries[0].auth")


def test_auth_methods_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        parse_config(
            {"registries": [{"url": "https://r.io", "repositories": ["a"],
                             "auth": {"username": "u", "password_env": "P",
                                      "docker_config": "/x"}}]},
            "c",
        )


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("registries:\n  - url: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "line" in str(info.value)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "auditor.yaml"
    path.parent.mkdir()
    path.write_text("trust: {policy: tp.json, store: store}\nlayouts: [{path: img}]\n")
    config, _ = load_config(path)
    assert config.trust is not None
    assert config.trust.policy == path.parent / "tp.json"
    assert config.trust.store == path.parent / "store"
    assert config.layouts[0].path == path.parent / "img"


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_home_relative_paths_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "auditor.yaml"
    path.write_text(
        "registries:\n  - url: https://r.io\n    repositories: [a]\n"
        "    auth: {docker_config: ~/.docker/config.json}\n"
    )
    config, _ = load_config(path)
    auth = config.registries[0].auth
    assert auth is not None
    assert auth.docker_config == tmp_path / "home" / ".docker" / "config.json"


def test_duplicate_yaml_keys_are_refused_anywhere(tmp_path: Path) -> None:
    from auditor.config import read_yaml

    assert read_yaml("a: 1\nb: {c: 2, d: 3}\n") == {"a": 1, "b": {"c": 2, "d": 3}}
    path = tmp_path / "auditor.yaml"
    path.write_text("registries:\n  - url: http://127.0.0.1:5000\n    repositories: [a]\n"
                    "    url: http://127.0.0.1:5001\n")
    with pytest.raises(ConfigError, match=r"line 4, column 5: duplicate key 'url' \(first at "
                                          r"line 2\)"):
        load_config(path)
