"""The import contract: which way the product's imports may point (walked with ``ast``).

- The product (``auditor``) never imports the devkit, the tests or the benchmarks.
- The pure core (model, ``oci/``, coverage, ``formats/``, the signature-format verifiers given
  bytes, the alert diff, the signing plan) imports only the pure core: no httpx, and none of our
  modules that touch the network, files, the clock of a scheduler or the environment (``app``,
  ``cli``, ``config``, ``crawl``, ``registry/``, ``layout/``, trust-store loading, revocation,
  the daemon's I/O...). Checked on the transitive closure, so an indirect import counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "auditor"

# Modules (or packages, with every module below them) that make up the pure core.
PURE = (
    "auditor",  # the package itself: __init__ holds the version only
    "auditor.errors",
    "auditor.gojson",
    "auditor.model",
    "auditor.oci",
    "auditor.coverage",
    "auditor.waivers",
    "auditor.formats",
    "auditor.notary.types",
    "auditor.notary.decoded",
    "auditor.notary.envelope",
    "auditor.notary.jws",
    "auditor.notary.cose",
    "auditor.notary.crypto",
    "auditor.notary.chain",
    "auditor.notary.identity",
    "auditor.notary.timestamp",
    "auditor.cosign.bundle",
    "auditor.cosign.identity",
    "auditor.cosign.jsondoc",
    "auditor.cosign.keys",
    "auditor.cosign.legacy",
    "auditor.cosign.names",
    "auditor.cosign.rekor",
    "auditor.cosign.trust",
    "auditor.daemon.alerts.diff",
    "auditor.state.codec",
    "auditor.state.naming",
    "auditor.signing.plan",
)
NETWORK_LIBRARIES = ("httpx", "socket", "urllib.request", "http.client")
NOT_SHIPPED = ("devkit", "tests", "benchmarks")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_pure(name: str) -> bool:
    return name == "auditor" or _within(name, PURE[1:])


def _imports(name: str) -> Iterator[str]:
    """Every module ``name`` imports, anywhere in it (function-level imports count too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from auditor.oci import mediatypes`` imports the module auditor.oci.mediatypes.
            yield from (f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)


def _closure(name: str) -> dict[str, str]:
    """Every module reachable from ``name``, each with the module that first imported it."""
    seen: dict[str, str] = {}
    stack = [name]
    while stack:
        current = stack.pop()
        for imported in _imports(current):
            if imported in seen:
                continue
            seen[imported] = current
            if imported in MODULES:
                stack.append(imported)
    return seen


def test_the_contract_covers_real_modules() -> None:
    """A pure-core entry that names nothing would make the contract silently weaker."""
    for prefix in PURE:
        assert any(_within(m, (prefix,)) for m in MODULES), f"{prefix} names no module"
    assert len([m for m in MODULES if _is_pure(m)]) >= 30


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_product_never_imports_demo_or_test_material(module: str) -> None:
    bad = sorted(m for m in _imports(module) if _within(m, NOT_SHIPPED))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_pure(m)))
def test_the_pure_core_imports_only_the_pure_core(module: str) -> None:
    reached = _closure(module)
    # A package's __init__ is reached by ``from package import module``; it is neutral itself,
    # and whatever it imports is in the closure and judged like the rest.
    ours = sorted(
        f"{m} (via {by})"
        for m, by in reached.items()
        if m in MODULES and not _is_pure(m) and MODULES[m].name != "__init__.py"
    )
    network = sorted(
        f"{m} (via {by})" for m, by in reached.items() if _within(m, NETWORK_LIBRARIES)
    )
    assert not ours, f"{module} reaches I/O modules: {ours}"
    assert not network, f"{module} reaches network libraries: {network}"
