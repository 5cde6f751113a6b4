"""The trust hash keys the store's verdict cache: every input of a verdict must move it."""

from __future__ import annotations

from pathlib import Path

from auditor.app import AppOptions, trust_hash
from auditor.config import parse_config


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    policy = tmp_path / "trustpolicy.json"
    policy.write_text('{"version": "1.0", "trustPolicies": []}')
    store = tmp_path / "truststore" / "x509" / "ca" / "release"
    store.mkdir(parents=True)
    (store / "root.pem").write_text("root one")
    key = tmp_path / "cosign.pub"
    key.write_text("key one")
    return policy, tmp_path / "truststore", key


def _config(policy: Path, store: Path, key: Path, scope: str = "*") -> object:
    return parse_config(
        {
            "trust": {"policy": str(policy), "store": str(store)},
            "cosign": {"rules": [{"scopes": [scope], "key": str(key)}]},
        },
        "test",
    )


def test_every_trust_input_changes_the_hash(tmp_path: Path) -> None:
    policy, store, key = _files(tmp_path)
    options = AppOptions()
    base = trust_hash(_config(policy, store, key), options)  # type: ignore[arg-type]
    assert trust_hash(_config(policy, store, key), options) == base  # type: ignore[arg-type]

    seen = {base}

    def changed() -> str:
        value = trust_hash(_config(policy, store, key), options)  # type: ignore[arg-type]
        assert value not in seen
        seen.add(value)
        return value

    policy.write_text('{"version": "1.0", "trustPolicies": [ ]}')
    changed()
    (store / "x509" / "ca" / "release" / "root.pem").write_text("root two")
    two_roots_before = changed()
    (store / "x509" / "ca" / "release" / "extra.pem").write_text("another root")
    changed()
    (store / "x509" / "ca" / "release" / "extra.pem").unlink()
    # The same files again: the same hash (verdicts made under them are good again).
    assert trust_hash(_config(policy, store, key), options) == two_roots_before  # type: ignore[arg-type]
    key.write_text("key two")
    changed()
    other_scope = trust_hash(_config(policy, store, key, "r.example/*"), options)  # type: ignore[arg-type]
    assert other_scope not in seen
