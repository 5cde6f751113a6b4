"""Issue 4's coverage scenarios, through the CLI, on the real registry and on ``oci-layout:``.

Every ``require`` mode (index, platforms, both, either) meets each signing pattern of
tests/support/coverage_layouts.py: index signed only (the ratify case), platforms signed only,
both, one platform signature invalid (untrusted key), a required platform missing
(linux/s390x), an attestation manifest ignored / required (unsigned and signed), nested indexes
(outer signed, and inner signed only) and single-manifest tags (signed, unsigned). Each run
asserts the target status, every node's status, ``required`` and ``covered_by``, the findings
(kind, node, platform) and the exit code; the registry and the layout must give the same
verdicts. The rule comes from a config file whose first rule is a decoy that must not match;
``--require`` overrides it once. Expectations are written from the issue's rules, not from
earlier output of the auditor.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.cli import main as cli_main
from tests.support.coverage_layouts import (
    AMD64,
    ARM64,
    ATTESTATION,
    INDEX,
    NESTED,
    PATTERNS,
    PLATFORMS,
    SINGLE,
    TAGS,
    CoverageLayout,
    CoverageLayouts,
    build_coverage_layouts,
    push_coverage_layouts,
)
from tests.support.github_sarif import github_problems
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import assert_finished_lines

pytestmark = pytest.mark.registry

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "data" / "sarif-2.1.0-schema.json").read_text("utf-8")
)
MODES = ("index", "platforms", "both", "either")
EXIT = {"compliant": 0, "noncompliant": 1, "error": 3}
S390X = "linux/s390x"
P3 = frozenset(PLATFORMS)

# (kind, node label or None, platform) -- a finding as a person reads it.
FindingKey = tuple[str, str | None, str | None]


def unsigned(label: str) -> FindingKey:
    if label in PLATFORMS:
        return ("unsigned-platform", label, label)
    kinds = {INDEX: "unsigned-index", NESTED: "unsigned-index", SINGLE: "unsigned-manifest",
             ATTESTATION: "unsigned-attestation"}
    return (kinds[label], label, None)


def invalid(label: str) -> FindingKey:
    return ("invalid-signature", label, label if label in PLATFORMS else None)


def missing(platform: str) -> FindingKey:
    return ("missing-platform", None, platform)


@dataclass(frozen=True)
class Expect:
    status: str
    required: frozenset[str]
    findings: tuple[FindingKey, ...] = ()


def ok(*required: str | frozenset[str]) -> Expect:
    return Expect("compliant", _labels(required))


def bad(*required: str | frozenset[str], findings: tuple[FindingKey, ...]) -> Expect:
    return Expect("noncompliant", _labels(required), findings)


def _labels(items: tuple[str | frozenset[str], ...]) -> frozenset[str]:
    out: set[str] = set()
    for item in items:
        out |= {item} if isinstance(item, str) else item
    return frozenset(out)


@dataclass(frozen=True)
class Scenario:
    name: str
    pattern: str
    root: str  # INDEX, NESTED or SINGLE: which tag of the layout is audited
    expect: Mapping[str, Expect]
    rule: Mapping[str, Any] = field(default_factory=dict)  # platforms / attestations

    @property
    def tag(self) -> str:
        return TAGS[self.root]


def _every_mode(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(MODES, expect)


SCENARIOS = (
    Scenario("index-signed-only", "index-only", INDEX, {
        "index": ok(INDEX),
        "platforms": bad(P3, findings=tuple(unsigned(p) for p in PLATFORMS)),
        "both": bad(INDEX, P3, findings=tuple(unsigned(p) for p in PLATFORMS)),
        "either": ok(INDEX),
    }),
    Scenario("platforms-signed-only", "platforms-only", INDEX, {
        "index": bad(INDEX, findings=(unsigned(INDEX),)),
        "platforms": ok(P3),
        "both": bad(INDEX, P3, findings=(unsigned(INDEX),)),
        "either": ok(P3),
    }),
    Scenario("both-signed", "both", INDEX, {
        "index": ok(INDEX), "platforms": ok(P3), "both": ok(INDEX, P3), "either": ok(INDEX),
    }),
    Scenario("one-platform-signature-invalid", "platform-invalid", INDEX, {
        "index": bad(INDEX, findings=(unsigned(INDEX),)),
        "platforms": bad(P3, findings=(invalid(ARM64),)),
        "both": bad(INDEX, P3, findings=(unsigned(INDEX), invalid(ARM64))),
        # Neither the index nor every platform: the index and each failing platform are named.
        "either": bad(INDEX, P3, findings=(unsigned(INDEX), invalid(ARM64))),
    }),
    Scenario("required-platform-missing", "both", INDEX, {
        "index": bad(INDEX, findings=(missing(S390X),)),
        "platforms": bad(AMD64, findings=(missing(S390X),)),
        "both": bad(INDEX, AMD64, findings=(missing(S390X),)),
        "either": bad(INDEX, findings=(missing(S390X),)),
    }, rule={"platforms": [AMD64, S390X]}),
    Scenario("attestation-ignored", "both", INDEX, {
        "index": ok(INDEX), "platforms": ok(P3), "both": ok(INDEX, P3), "either": ok(INDEX),
    }, rule={"attestations": "ignore"}),
    Scenario("attestation-required-unsigned", "both", INDEX, {
        "index": bad(INDEX, ATTESTATION, findings=(unsigned(ATTESTATION),)),
        "platforms": bad(P3, ATTESTATION, findings=(unsigned(ATTESTATION),)),
        "both": bad(INDEX, P3, ATTESTATION, findings=(unsigned(ATTESTATION),)),
        "either": ok(INDEX),  # the signed index covers its whole level
    }, rule={"attestations": "require"}),
    Scenario("attestation-required-signed", "attested", INDEX, {
        "index": ok(INDEX, ATTESTATION),
        "platforms": ok(P3, ATTESTATION),
        "both": ok(INDEX, P3, ATTESTATION),
        "either": ok(INDEX),
    }, rule={"attestations": "require"}),
    Scenario("nested-outer-signed", "nested", NESTED, {
        "index": bad(NESTED, INDEX, findings=(unsigned(INDEX),)),
        "platforms": ok(P3),
        "both": bad(NESTED, INDEX, P3, findings=(unsigned(INDEX),)),
        "either": ok(NESTED),
    }),
    Scenario("nested-inner-signed", "index-only", NESTED, {
        "index": bad(NESTED, INDEX, findings=(unsigned(NESTED),)),
        "platforms": bad(P3, findings=tuple(unsigned(p) for p in PLATFORMS)),
        "both": bad(NESTED, INDEX, P3,
                    findings=(unsigned(NESTED), *(unsigned(p) for p in PLATFORMS))),
        "either": ok(INDEX),  # the inner index covers its level, so the outer one is covered
    }),
    Scenario("single-manifest-signed", "both", SINGLE, _every_mode(ok(SINGLE))),
    Scenario("single-manifest-unsigned", "index-only", SINGLE,
             _every_mode(bad(SINGLE, findings=(unsigned(SINGLE),)))),
)

NODES_UNDER = {
    INDEX: {INDEX, *PLATFORMS, ATTESTATION},
    NESTED: {NESTED, INDEX, *PLATFORMS, ATTESTATION},
    SINGLE: {SINGLE},
}
PARENT = {INDEX: NESTED, ATTESTATION: INDEX, **dict.fromkeys(PLATFORMS, INDEX)}


# --- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    layouts: CoverageLayouts
    host: str
    workdir: Path

    def registry_ref(self, scenario: Scenario) -> str:
        return f"{self.host}/{self.layouts[scenario.pattern].repository}:{scenario.tag}"

    def layout_ref(self, scenario: Scenario) -> str:
        return f"oci-layout:{self.layouts[scenario.pattern].path}:{scenario.tag}"

    @property
    def registry_scope(self) -> str:
        return f"{self.host}/coverage/*"

    @property
    def layout_scope(self) -> str:
        return f"oci-layout:{self.layouts.root}/layouts/*"


@pytest.fixture(scope="module")
def setup(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("coverage")
    layouts = build_coverage_layouts(root)
    asyncio.run(push_coverage_layouts(layouts, registry.host))
    return Setup(layouts, registry.host, root)


@pytest.fixture(autouse=True)
def _no_stray_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder (no ./auditor.yaml) with notation's config dir out of reach."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write_config(setup: Setup, path: Path, scenario: Scenario, mode: str) -> Path:
    """A config whose first rule is a decoy; the registry and layout rules say ``mode``."""
    extra = "".join(
        f"    {key}: {json.dumps(value)}\n" for key, value in scenario.rule.items()
    )
    text = "coverage:\n"
    text += '  - scope: "ghcr.io/acme/*"\n    require: index\n    attestations: require\n'
    for scope in (setup.registry_scope, setup.layout_scope):
        text += f'  - scope: "{scope}"\n    require: {mode}\n{extra}'
    text += (
        f"trust:\n  policy: {setup.layouts.trust_policy}\n  store: {setup.layouts.trust_store}\n"
    )
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def target(self) -> dict[str, Any]:
        (target,) = json.loads(self.stdout)["targets"]
        result: dict[str, Any] = target
        return result


def audit(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(["audit", "now", *argv], stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


# --- checks -----------------------------------------------------------------------------------


def _expected_status(layout: CoverageLayout, label: str) -> str:
    spec = PATTERNS[layout.pattern]
    if label in spec.trusted:
        return "signed"
    return "invalid" if label in spec.untrusted else "unsigned"


def check(run: Run, layout: CoverageLayout, scenario: Scenario, mode: str, scope: str) -> None:
    """Everything the issue asks of one audit: status, nodes, findings, exit code."""
    expect = scenario.expect[mode]
    target = run.target
    # Not a terminal: the one target's finished line on stderr, nothing else.
    assert_finished_lines(run.stderr, [(target["status"], target["reference"])])
    assert (target["status"], run.code) == (expect.status, EXIT[expect.status])
    assert target["digest"] == layout.digest(scenario.root)
    assert target["rule"].startswith(f"policy {mode} for {scope}")
    nodes = {layout.label(n["digest"]): n for n in target["nodes"]}
    assert set(nodes) == NODES_UNDER[scenario.root]
    for label, node in nodes.items():
        assert node["status"] == _expected_status(layout, label), label
        parent = PARENT.get(label) if label != scenario.root else None
        signed_parent = parent is not None and _expected_status(layout, parent) == "signed"
        assert node["covered_by"] == (layout.digest(parent) if signed_parent and parent else None)
        if label in layout.signatures:
            assert [s["digest"] for s in node["signatures"]] == [layout.signatures[label]]
    required = {label for label, node in nodes.items() if node["required"]}
    assert required == expect.required
    findings = [
        (f["kind"], layout.label(f["node"]) if f["node"] else None, f["platform"])
        for f in target["findings"]
    ]
    assert Counter(findings) == Counter(expect.findings)
    for finding in target["findings"]:
        assert finding["rule"] == target["rule"]
        assert finding["node"] is None or finding["node"] in finding["message"]
        assert finding["platform"] is None or finding["platform"] in finding["message"]


def _verdicts(run: Run) -> tuple[Any, ...]:
    """What must not depend on the source: statuses, required flags and findings by digest."""
    target = run.target
    nodes = sorted((n["digest"], n["status"], n["required"], n["covered_by"])
                   for n in target["nodes"])
    findings = sorted((f["kind"], f["node"] or "", f["platform"] or "")
                      for f in target["findings"])
    return run.code, target["status"], tuple(nodes), tuple(findings)


# --- tests ------------------------------------------------------------------------------------


def test_the_layouts_were_signed_as_the_patterns_say(setup: Setup) -> None:
    for pattern, spec in PATTERNS.items():
        layout = setup.layouts[pattern]
        assert set(layout.signatures) == spec.trusted | spec.untrusted
        assert len(set(layout.signatures.values())) == len(layout.signatures)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario(setup: Setup, scenario: Scenario, mode: str, tmp_path: Path) -> None:
    layout = setup.layouts[scenario.pattern]
    config = write_config(setup, tmp_path / "auditor.yaml", scenario, mode)
    on_registry = audit(setup.registry_ref(scenario), "--config", str(config), "--format", "json")
    check(on_registry, layout, scenario, mode, setup.registry_scope)
    on_disk = audit(setup.layout_ref(scenario), "--config", str(config), "--format", "json")
    check(on_disk, layout, scenario, mode, setup.layout_scope)
    assert _verdicts(on_disk) == _verdicts(on_registry)


def test_require_flag_overrides_the_config_rule(setup: Setup, tmp_path: Path) -> None:
    """The ratify case: under the config's ``both`` it fails; ``--require index`` passes it."""
    scenario = SCENARIOS[0]
    layout = setup.layouts[scenario.pattern]
    config = write_config(setup, tmp_path / "auditor.yaml", scenario, "both")
    ref = setup.registry_ref(scenario)
    plain = audit(ref, "--config", str(config), "--format", "json")
    check(plain, layout, scenario, "both", setup.registry_scope)
    assert plain.code == 1
    override = audit(ref, "--config", str(config), "--format", "json", "--require", "index")
    check(override, layout, scenario, "index", setup.registry_scope)
    assert override.code == 0


def test_no_matching_rule_means_both_with_every_platform(setup: Setup, tmp_path: Path) -> None:
    """The safe default: signing the index alone is not enough."""
    scenario = SCENARIOS[0]
    config = tmp_path / "auditor.yaml"
    config.write_text(
        'coverage:\n  - scope: "ghcr.io/acme/*"\n    require: index\n'
        f"trust:\n  policy: {setup.layouts.trust_policy}\n"
        f"  store: {setup.layouts.trust_store}\n"
    )
    run = audit(setup.registry_ref(scenario), "--config", str(config), "--format", "json")
    assert run.code == 1
    assert run.target["rule"].startswith("policy both for *")
    kinds = Counter(f["kind"] for f in run.target["findings"])
    assert kinds == Counter({"unsigned-platform": 3})


def test_unverifiable_signatures_exit_3_unless_something_is_noncompliant(
    setup: Setup, tmp_path: Path
) -> None:
    """No trust policy anywhere: signatures are ``unverified``, never ``signed``; a target with
    nothing clearly wrong is ``error`` (exit 3), one with an unsigned required node stays
    ``noncompliant`` (exit 1)."""
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f'coverage:\n  - scope: "{setup.registry_scope}"\n    require: both\n'
        f'  - scope: "{setup.layout_scope}"\n    require: both\n'
    )
    both, index_only = SCENARIOS[2], SCENARIOS[0]
    for ref in (setup.registry_ref(both), setup.layout_ref(both)):
        run = audit(ref, "--config", str(config), "--format", "json")
        assert (run.code, run.target["status"]) == (3, "error")
        layout = setup.layouts[both.pattern]
        assert {layout.label(n["digest"]): n["status"] for n in run.target["nodes"]} == {
            INDEX: "unverified", **dict.fromkeys(PLATFORMS, "unverified"),
            ATTESTATION: "unsigned",
        }
        assert Counter(
            (f["kind"], layout.label(f["node"])) for f in run.target["findings"]
        ) == Counter(("unchecked", label) for label in (INDEX, *PLATFORMS))
    for ref in (setup.registry_ref(index_only), setup.layout_ref(index_only)):
        run = audit(ref, "--config", str(config), "--format", "json")
        assert (run.code, run.target["status"]) == (1, "noncompliant")
        kinds = Counter(f["kind"] for f in run.target["findings"])
        assert kinds == Counter({"unsigned-platform": 3, "unchecked": 1})


@pytest.mark.parametrize(
    ("scenario_name", "mode"),
    [("one-platform-signature-invalid", "both"), ("required-platform-missing", "platforms")],
)
def test_sarif_of_a_noncompliant_run(
    setup: Setup, scenario_name: str, mode: str, tmp_path: Path
) -> None:
    """SARIF 2.1.0 that validates, one result per finding, rule ids per finding kind."""
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    config = write_config(setup, tmp_path / "auditor.yaml", scenario, mode)
    for ref in (setup.registry_ref(scenario), setup.layout_ref(scenario)):
        as_json = audit(ref, "--config", str(config), "--format", "json")
        as_sarif = audit(ref, "--config", str(config), "--format", "sarif")
        assert as_sarif.code == as_json.code == 1
        sarif = json.loads(as_sarif.stdout)
        jsonschema.Draft4Validator(SCHEMA).validate(sarif)
        (sarif_run,) = sarif["runs"]
        findings = as_json.target["findings"]
        results = sarif_run["results"]
        assert len(results) == len(findings) == len(scenario.expect[mode].findings)
        # messages: "<reference as SARIF shows it>: <the finding's message>"
        assert sorted((r["ruleId"], r["message"]["text"].split(": ", 1)[1]) for r in results) == (
            sorted((f["kind"], f["message"]) for f in findings)
        )
        assert github_problems(sarif) == []
        rule_ids = [r["id"] for r in sarif_run["tool"]["driver"]["rules"]]
        for result in results:
            assert rule_ids[result["ruleIndex"]] == result["ruleId"]
            (location,) = result["locations"]
            uri = location["physicalLocation"]["artifactLocation"]["uri"]
            assert uri.startswith("images/" if ref == setup.registry_ref(scenario)
                                  else "layouts/")
