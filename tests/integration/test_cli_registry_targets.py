"""``auditor audit now HOST[:PORT]`` / ``HOST/*`` / ``HOST/team/*`` through the real binary
against a registry of its own (Debian's docker-registry on 127.0.0.1, so the catalog holds
exactly what this module pushed): the catalog is listed, the glob applied, nothing read as a
Docker Hub image; bounded by ``limits.max_repositories``; a glob matching nothing fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.binary import run_auditor
from tests.support.hostile import (
    Request,
    Response,
    ScriptedRegistry,
    hostile_server,
    manifest_bytes,
)
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


# --- a hostile catalog (scripted: a real registry lists only valid names, and ends) ---------


def test_catalog_names_that_are_no_repository_are_refused(tmp_path: Path) -> None:
    hostile = ["../../x", "app?n=1#", "UPPER/app", "a" * 300, "app/../../v2/app"]

    def catalog(request: Request) -> Response | None:
        if request.path.startswith("/v2/_catalog"):
            return Response.json(200, {"repositories": ["app", *hostile]})
        return None

    scripted = ScriptedRegistry(tags={"v1": manifest_bytes("v1")}, override=catalog)
    with hostile_server(scripted) as server:
        run = run_auditor(["audit", "now", server.host, "--format", "json"], cwd=tmp_path,
                          timeout=60)
        paths = [r.path for r in server.requests]
        host = server.host
    assert run.code in (1, 3), run.stderr
    targets = run.report["targets"]
    refused = [t for t in targets if t["error_category"] == "invalid"]
    assert len(refused) == len(hostile)
    assert all("is not a valid repository name" in t["error"] for t in refused)
    assert [t["reference"] for t in targets if t not in refused] == [f"{host}/app:v1"]
    # nothing but the catalog and the one valid repository was asked for
    others = [p for p in paths if not p.startswith("/v2/_catalog")]
    assert others
    assert all(p == "/v2/" or p.startswith("/v2/app/") for p in others), others
    assert not any(".." in p for p in others)


def test_an_endless_catalog_is_cut_at_the_configured_bound(tmp_path: Path) -> None:
    served = {"pages": 0}

    def endless(request: Request) -> Response | None:
        if request.path.startswith("/v2/_catalog"):
            page = served["pages"]
            served["pages"] += 1
            names = [f"r{page}x{i}" for i in range(100)]
            link = f'</v2/_catalog?n=100&last=r{page}x99>; rel="next"'
            return Response.json(200, {"repositories": names}, [("Link", link)])
        return None

    with hostile_server(ScriptedRegistry(override=endless)) as server:
        (tmp_path / "auditor.yaml").write_text("limits: {max_repositories: 250}\n")
        started = time.monotonic()
        run = run_auditor(["audit", "now", f"{server.host}/*", "--format", "json"],
                          cwd=tmp_path, timeout=60)
        elapsed = time.monotonic() - started
    assert run.code == 3
    [target] = run.report["targets"]
    assert "more than 250 repositories" in target["error"]
    assert served["pages"] == 3
    assert elapsed < 30


def test_tag_names_that_are_no_tag_are_refused(tmp_path: Path) -> None:
    """Tags from a registry go into request paths as catalog names do: ``..`` (httpx drops the
    dot segment: ``/v2/app/``), an empty tag (``/v2/app/manifests/``), a 300-character or
    non-ASCII name are not tags by distribution's grammar. Each is an error target (invalid)
    naming it, never a request. Scripted: a real registry only lists valid tags."""
    hostile = ["..", "", "x" * 300, "caf\u00e9", "\x1b[31mred", "v1\n", "-v"]
    tags = {"v1": manifest_bytes("v1"), **{t: manifest_bytes(f"h{i}") for i, t in
                                          enumerate(hostile)}}
    with hostile_server(ScriptedRegistry(tags=tags)) as server:
        run = run_auditor(["audit", "now", f"{server.host}/app", "--format", "json"],
                          cwd=tmp_path, timeout=60)
        paths = [r.path for r in server.requests]
        host = server.host
    assert run.code in (1, 3), run.stderr
    assert "Traceback" not in run.stderr
    targets = run.report["targets"]
    refused = [t for t in targets if t["error_category"] == "invalid"]
    assert len(refused) == len(hostile)
    assert all("is not a valid tag" in t["error"] for t in refused)
    assert [t["reference"] for t in targets if t not in refused] == [f"{host}/app:v1"]
    manifests = {p for p in paths if "/manifests/" in p or p.rstrip("/") == "/v2/app"}
    assert manifests <= {"/v2/app/manifests/v1"} | {
        p for p in manifests if p.startswith("/v2/app/manifests/sha256")
    }, manifests
