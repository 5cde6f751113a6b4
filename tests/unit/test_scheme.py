"""Which scheme a registry is spoken to with: the config URL's, else loopback/insecure rules."""

from __future__ import annotations

import httpx

from auditor.config import parse_config
from auditor.registry.client import RegistryClient


async def test_scheme_rules() -> None:
    async with httpx.AsyncClient() as http:
        assert RegistryClient("127.0.0.1:5000", http).base_url.startswith("http://")
        assert RegistryClient("[::1]:5000", http).base_url.startswith("http://")
        assert RegistryClient("ghcr.io", http).base_url.startswith("https://")
        assert RegistryClient("reg.lan", http, insecure=True).base_url.startswith("http://")
        # An https URL in the config is honoured even on loopback (a local TLS registry).
        pinned = RegistryClient("127.0.0.1:5443", http, scheme="https")
        assert pinned.base_url.startswith("https://")


def test_config_url_without_scheme_means_https() -> None:
    config = parse_config({"registries": [{"url": "ghcr.io", "repositories": ["a/b"]}]}, "c")
    assert config.registries[0].scheme == "https"
    assert config.registries[0].host == "ghcr.io"
