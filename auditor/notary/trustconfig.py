"""Where the trust policy and trust store come from: flags, config, or notation's own directory.

The I/O edge of verification: it reads files and the environment; the verifier then works on
what it returns.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import ConfigError
from auditor.notary.trustpolicy import TrustPolicy, load_trust_policy


@dataclass(frozen=True)
class NotationTrust:
    """The trust policy as loaded and where it and the trust store are (not the config section)."""

    policy: TrustPolicy
    policy_path: Path
    store_path: Path


def notation_config_dir(platform: str = sys.platform) -> Path:
    """notation's user-level config directory, as notation-go's ``dir`` package finds it (Go's
    ``os.UserConfigDir`` joined with ``notation``): ``~/Library/Application Support/notation``
    on macOS (where Go ignores ``$XDG_CONFIG_HOME``), else ``$XDG_CONFIG_HOME/notation`` or
    ``~/.config/notation``. The trust policy, the trust store, the local keys and the
    ``config.json`` holding ``notation login``'s settings live there."""
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "notation"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "notation"


def notation_policy_path() -> Path | None:
    """notation's own trust policy file, if there is one (``.oci.json`` first)."""
    config_dir = notation_config_dir()
    candidates = [config_dir / "trustpolicy.oci.json", config_dir / "trustpolicy.json"]
    return next((p for p in candidates if p.exists() or p.is_symlink()), None)


def load_trust_config(policy_path: Path | None, store_path: Path | None) -> NotationTrust:
    """The trust policy and trust store to use: explicit paths, else notation's own config.

    Like notation, ``trustpolicy.oci.json`` is preferred over ``trustpolicy.json``.
    """
    config_dir = notation_config_dir()
    if policy_path is None:
        policy_path = notation_policy_path()
        if policy_path is None:
            raise ConfigError(
                f"no trust policy given and none found in notation's config directory "
                f"{config_dir} (trustpolicy.oci.json or trustpolicy.json); pass --trust-policy "
                "or set trust.policy"
            )
    if store_path is None:
        store_path = config_dir / "truststore"
    if not store_path.is_dir():
        raise ConfigError(f"trust store directory {store_path} does not exist")
    return NotationTrust(
        policy=load_trust_policy(policy_path), policy_path=policy_path, store_path=store_path
    )
