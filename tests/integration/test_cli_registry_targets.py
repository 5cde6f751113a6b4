"""``auditor audit now HOST[:PORT]`` / ``HOST/*`` / ``HOST/team/*`` through the real binary
against a registry of its own (Debian's docker-registry on 127.0.0.1, so the catalog holds
exactly what this module pushed): the catalog is listed, the glob applied, nothing read as a
Docker Hub image; bounded by ``limits.max_repositories``; a glob matching nothing fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.binary import run_auditor
from tests.support.registry_server import RunningRegistry, registry_binary, registry_server
from tests.support.scenarios import SignedSample, build_signed_sample, push

REPOSITORIES = ("other/app", "team/app", "team/web")
TAGS = ("v1", "v1-nested", "v1-single")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("catalog"), name="catalog")


@pytest.fixture(scope="module")
def own_registry(
    tmp_path_factory: pytest.TempPathFactory, signed: SignedSample
) -> Iterator[RunningRegistry]:
    if registry_binary() is None:
        pytest.skip("docker-registry is not on PATH")
    with registry_server(tmp_path_factory.mktemp("catalog-registry")) as running:
        for repository in REPOSITORIES:
            push(running.host, signed.path, repository)
        yield running


def references(report: dict[str, object]) -> list[str]:
    targets = report["targets"]
    assert isinstance(targets, list)
    return [t["reference"] for t in targets]


def test_a_bare_host_audits_the_whole_registry(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    host = own_registry.host
    trust: list[str | Path] = [
        "--trust-policy", signed.trust_policy, "--trust-store", signed.trust_store
    ]
    for target in (host, f"{host}/", f"{host}/*"):
        run = run_auditor(["audit", "now", target, *trust, "--format", "json"], cwd=tmp_path)
        assert run.code == 1, run.stderr  # the sample has unsigned platforms
        assert references(run.report) == [
            f"{host}/{repo}:{tag}" for repo in REPOSITORIES for tag in TAGS
        ]


def test_a_glob_audits_the_matching_repositories(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    host = own_registry.host
    trust: list[str | Path] = [
        "--trust-policy", signed.trust_policy, "--trust-store", signed.trust_store
    ]
    run = run_auditor(["audit", "now", f"{host}/team/*", *trust, "--format", "json"],
                      cwd=tmp_path)
    assert run.code == 1
    assert references(run.report) == [
        f"{host}/{repo}:{tag}" for repo in ("team/app", "team/web") for tag in TAGS
    ]
    single = run_auditor(
        ["audit", "now", f"{host}/*/app", *trust, "--format", "json", "--platform", "linux/amd64"],
        cwd=tmp_path,
    )
    assert [r.rsplit(":", 1)[0] for r in references(single.report)][::3] == [
        f"{host}/other/app", f"{host}/team/app"
    ]


def test_a_glob_that_matches_nothing_is_not_a_pass(
    own_registry: RunningRegistry, tmp_path: Path
) -> None:
    run = run_auditor(["audit", "now", f"{own_registry.host}/nothing/*", "--format", "json"],
                      cwd=tmp_path)
    assert run.code == 3
    [target] = run.report["targets"]
    assert target["status"] == "error"
    assert target["error"] == (
        f"no repository in {own_registry.host}'s catalog matches 'nothing/*' (3 listed)"
    )
    assert target["error_category"] == "not-found"


def test_the_catalog_is_bounded_by_the_config(
    own_registry: RunningRegistry, tmp_path: Path
) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text("limits: {max_repositories: 2}\n")
    run = run_auditor(["audit", "now", own_registry.host, "--format", "json"], cwd=tmp_path)
    assert run.code == 3
    [target] = run.report["targets"]
    assert "more than 2 repositories" in target["error"]


def test_docker_hub_names_are_not_registries(tmp_path: Path) -> None:
    refused = run_auditor(["audit", "now", "team/*"], cwd=tmp_path)
    assert refused.code == 2
    assert "a repository glob needs a registry host (HOST/team/*)" in refused.stderr
    hub = run_auditor(["audit", "now", "docker.io"], cwd=tmp_path)
    assert hub.code == 2
    assert "Docker Hub has no catalog" in hub.stderr
