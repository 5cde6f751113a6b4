"""What starting ``auditor audit now`` imports: nothing only some runs need.

Each costs start-up time on every run, more than a small audit's own work on a loaded machine
(benchmarks/RESULTS.md): Alembic is needed only to migrate a state database (a database at the
newest revision opens without it), SQLAlchemy only with ``--state`` or the daemon, Jinja2 only
for HTML, sigstore-python only for a ``cosign:`` section or a bundle. A fresh interpreter, so
what the test process already imported does not count.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

DEFERRED = ("alembic", "sqlalchemy", "jinja2", "sigstore", "sigstore_models")


def _imported_after(code: str) -> set[str]:
    probe = (
        f"{code}\nimport sys\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


def test_the_cli_and_the_app_import_none_of_the_deferred_libraries() -> None:
    loaded = _imported_after("import auditor.cli, auditor.app, auditor.formats")
    assert "auditor" in loaded  # the probe itself works
    assert loaded.isdisjoint(DEFERRED), sorted(loaded & set(DEFERRED))


@pytest.mark.parametrize(
    ("code", "library"),
    [
        ("from auditor.formats import html; html._environment()", "jinja2"),
        ("from auditor.cosign.bundle import verify_bundle", "sigstore"),
        ("import auditor.state.store", "sqlalchemy"),
    ],
)
def test_each_is_imported_where_it_is_used(code: str, library: str) -> None:
    """The other side: the code that needs the library does import it (so the first test
    is not passing because the probe sees nothing)."""
    assert library in _imported_after(code)
