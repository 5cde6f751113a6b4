"""Run the installed ``auditor`` console script as a user does: a real process, real argv,
real stdout/stderr (not terminals), an environment of the test's choosing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.scenarios import CliRun

AUDITOR = Path(sys.executable).with_name("auditor")


def user_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: its own HOME, no notation or docker config from the machine."""
    for sub in ("xdg", "docker"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "xdg"),
        "DOCKER_CONFIG": str(home / "docker"),
        "LANG": "C.UTF-8",
    }
    env.update(extra or {})
    return env


def run_auditor(
    args: Sequence[str | Path],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120.0,
) -> CliRun:
    """``auditor ARGS`` as a subprocess in ``cwd``; a hang fails the test within ``timeout``."""
    done = subprocess.run(
        [str(AUDITOR), *map(str, args)],
        cwd=cwd,
        env=dict(env) if env is not None else user_environment(cwd / ".home"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliRun(done.returncode, done.stdout, done.stderr)
