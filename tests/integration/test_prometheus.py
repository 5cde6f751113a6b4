"""A real Prometheus (Debian's ``prometheus``) scrapes a running ``auditor serve``; every PromQL
expression of the Grafana dashboard and of the alerting rules goes through its HTTP API and
must return data with the labels the panel or the alert uses. ``promtool check rules`` and
``promtool test rules`` pass on the rules file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devkit.devregistry import free_port
from tests.support.daemon import Daemon, SignedIndexImage, poll, start_daemon, write_config
from tests.support.registry_server import RunningRegistry

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "auditor-rules.yml"
RULES_TEST = ROOT / "config" / "prometheus" / "auditor-rules.test.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "registry-auditor.json"
REPOSITORY = "prom/app"
# Grafana's variables, as the dashboard would expand them for "All" over a short range.
VARIABLES = {"$registry": ".*", "$__rate_interval": "30s", "${datasource}": "prometheus"}
# Prometheus drops empty labels: an index node's platform="" is absent on its series, and so is
# the tag of a repository whose tags could not even be listed (the dead registry's target).
MAY_BE_EMPTY = {"platform", "tag"}
# Alerts this scenario must raise (a dead registry, unsigned platforms, a 7-day signature);
# AuditorAuditsStale needs three hours without a success, so only its measure is checked.
EXPECTED_ALERTS = {
    "AuditorUnsignedPlatformImage",
    "AuditorTargetNoncompliant",
    "AuditorRegistryDown",
    "AuditorSignatureExpiringSoon",
}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package prometheus; ./dev installs it)")
    return path


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = _binary("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 5 rules found" in check.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", RULES_TEST.name],
        capture_output=True, text=True, timeout=60, cwd=RULES_TEST.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = answer.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        body = httpx.get(f"{self.url}{path}", timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]


@pytest.fixture
def daemon(registry: RunningRegistry, tmp_path: Path) -> Iterator[Daemon]:
    image = SignedIndexImage.create(tmp_path, registry.host, REPOSITORY, validity_days=7)
    image.sign_platforms(("linux/amd64",))  # one signed platform, two unsigned
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: a registry that is down
    # linux/ppc64le's gap is an accepted exception (auditor_findings_waived has data);
    # linux/arm64 stays unsigned and open, so the unsigned-platform alert still fires.
    waiver = (
        "waivers:\n"
        f'  - image: "{registry.host}/{REPOSITORY}:*"\n'
        "    platforms: [linux/ppc64le]\n"
        "    reason: signed by another team\n"
        "    owner: platform@example.com\n"
        "    expires: 2099-12-31\n"
    )
    config = write_config(
        tmp_path / "auditor.yaml", registries=[registry.host, dead], repository=REPOSITORY,
        image=image, port=port, state=tmp_path / "auditor.db", interval="1s",
        timeout_seconds=2, extra=waiver,
    )
    running = start_daemon(config, port, tmp_path / "serve.log")
    try:
        yield running
    finally:
        running.stop(timeout=30)


@pytest.fixture
def prometheus(daemon: Daemon, tmp_path: Path) -> Iterator[Prometheus]:
    binary = _binary("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "auditor", "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}]}
        ],
    }))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        poll("Prometheus ready", lambda: _ready(url, process), deadline=60)
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(url: str, process: subprocess.Popen[bytes]) -> bool | None:
    if process.poll() is not None:
        raise AssertionError(f"prometheus exited with {process.returncode}")
    return True if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200 else None


def _expand(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _labels_in(template: str) -> set[str]:
    return set(re.findall(r"\{\{\s*\$?(?:labels\.)?([a-z_]+)\s*\}\}", template))


def _assert_labels(what: str, result: list[dict[str, Any]], labels: set[str]) -> None:
    assert result, f"{what}: no data"
    for series in result:
        missing = labels - set(series["metric"]) - MAY_BE_EMPTY
        assert not missing, f"{what}: series {series['metric']} lacks {missing}"
    for label in labels:
        assert any(label in s["metric"] for s in result), f"{what}: no series has {label}"


def _dashboard_targets() -> list[tuple[str, str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            out.append((panel["title"], target["expr"], target.get("legendFormat", "")))
    return out


def test_dashboard_and_rules_return_data_from_a_real_prometheus(
    prometheus: Prometheus, daemon: Daemon
) -> None:
    # Rates need two scrapes of a run's counters: wait until the slowest expression has data.
    poll(
        "rates over the daemon's own counters",
        lambda: prometheus.query("rate(auditor_audit_duration_seconds_count[30s]) > 0") or None,
        deadline=60,
    )
    targets = _dashboard_targets()
    assert len(targets) >= 10
    # Waived findings are counted apart from open ones, by rule, in the real scrape.
    waived = poll("waived findings", lambda: prometheus.query(
        f'auditor_findings_waived{{repository="{REPOSITORY}"}}') or None, deadline=30)
    assert {(s["metric"]["rule"], s["value"][1]) for s in waived} == {("unsigned-platform", "1")}
    open_ = prometheus.query(
        f'auditor_findings{{repository="{REPOSITORY}",rule="unsigned-platform"}}'
    )
    assert [s["value"][1] for s in open_] == ["1"]  # arm64 only; ppc64le is the waived one
    for title, expr, legend in targets:
        result = poll(f"data for panel {title!r}",
                      lambda e=expr: prometheus.query(_expand(e)) or None, deadline=30)  # type: ignore[misc]
        _assert_labels(f"panel {title!r}: {expr}", result, _labels_in(legend))

    variable = json.loads(DASHBOARD.read_text())["templating"]["list"][1]
    values = prometheus.get("/api/v1/label/registry/values")
    assert variable["definition"] == "label_values(auditor_target_compliant, registry)"
    assert values

    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert len(rules) == 5
    for rule in rules:
        expr = rule["expr"]
        if rule["alert"] not in EXPECTED_ALERTS:
            expr = expr.split(">")[0]  # the measure the alert compares with its threshold
        result = prometheus.query(expr)
        used = _labels_in(rule["annotations"]["summary"] + rule["annotations"]["description"])
        _assert_labels(f"rule {rule['alert']}: {expr}", result, used)

    loaded = prometheus.get("/api/v1/rules")["groups"]
    assert {r["name"] for g in loaded for r in g["rules"]} == {r["alert"] for r in rules}
    assert all(r["health"] == "ok" for g in loaded for r in g["rules"]), loaded

    def alerts() -> set[str] | None:
        active = {a["labels"]["alertname"] for a in prometheus.get("/api/v1/alerts")["alerts"]}
        return active if active >= EXPECTED_ALERTS else None

    assert poll("the expected alerts pending or firing", alerts, deadline=30) >= EXPECTED_ALERTS
    # The unsigned-platform alert names arm64, never the waived ppc64le (auditor_node_waived).
    platforms = {
        a["labels"].get("platform")
        for a in prometheus.get("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == "AuditorUnsignedPlatformImage"
    }
    assert "linux/ppc64le" not in platforms
    assert any(p and p.startswith("linux/arm64") for p in platforms), platforms
    marked = prometheus.query(f'auditor_node_waived{{repository="{REPOSITORY}"}}')
    assert [s["metric"]["platform"] for s in marked] == ["linux/ppc64le"]
    # The dashboard's "unsigned platforms" table leaves the waived platform out, as the alert.
    table = next(expr for title, expr, _ in targets if title.startswith("Unsigned or invalid"))
    shown = {s["metric"]["platform"] for s in prometheus.query(_expand(table))
             if s["metric"]["repository"] == REPOSITORY}
    assert "linux/ppc64le" not in shown, shown
    assert any(p.startswith("linux/arm64") for p in shown), shown
