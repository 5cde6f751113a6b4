"""``auditor serve`` refusing to start: one line naming the problem, exit 2, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.daemon import REPO_ROOT


def _serve(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITOR_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "auditor", "serve", "--config", str(config), *extra],
        capture_output=True, text=True, timeout=60, env=env, cwd=config.parent,
    )


def test_a_listener_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "auditor.yaml"
        config.write_text(
            f"layouts: [{{path: {tmp_path / 'layout'}}}]\n"
            f'server: {{listen: "127.0.0.1:{port}"}}\n'
        )
        done = _serve(config)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: server.listen 127.0.0.1:{port}: cannot listen: address already in use\n"
    )


def test_nothing_to_audit_and_a_missing_token_are_usage_errors(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "auditor.yaml"
    empty.write_text("schedule: {interval: 5s}\n")
    done = _serve(empty)
    assert done.returncode == 2
    assert "nothing to audit" in done.stderr
    assert "Traceback" not in done.stderr

    guarded = tmp_path / "guarded.yaml"
    guarded.write_text(
        f"layouts: [{{path: {tmp_path / 'layout'}}}]\n"
        "server: {token_env: AUDITOR_TEST_TOKEN_UNSET}\n"
    )
    done = _serve(guarded)
    assert done.returncode == 2
    assert done.stderr == (
        "error: server.token_env: environment variable AUDITOR_TEST_TOKEN_UNSET is not set\n"
    )
    bad = _serve(guarded, "--listen", "nowhere")
    assert bad.returncode == 2
    assert bad.stderr == "error: --listen 'nowhere' is not HOST:PORT\n"
