"""Issue 12's memory case: ``auditor audit now`` over 10^5 nodes, peak RSS per report format.

Pushing 10^5 manifests to the local docker-registry takes far too long on this machine, so the
nodes live in an OCI image layout generated on disk (deterministic: the same ``tags`` and
``platforms`` give the same bytes). Each tag is a multi-platform index of ``platforms`` image
manifests and one buildx attestation manifest, so ``tags * (platforms + 2)`` nodes; one in
``signed_every`` platform manifests carries a (never verified: no trust policy) Notary
signature referrer, so reports carry signature entries too. Nothing is verified: the point is
what the run holds, not the crypto.

Every run is the real binary as a child process; its peak RSS comes from ``os.wait4``
(``ru_maxrss``). The baseline, measured in the same run, is the same binary auditing one tag of
the same layout: the process's fixed cost (interpreter, imports), so ``ours - baseline`` is what
the 10^5 nodes cost. ``table`` holds the whole report (it sorts and aligns every row); ``json``
and ``sarif`` stream target by target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from auditor.layout.writer import encode_json, init_layout, write_blob
from auditor.oci import mediatypes as mt

# BENCH_AUDITOR: another build's binary (e.g. a wrapper over an older tree, for a "before").
AUDITOR = Path(os.environ.get("BENCH_AUDITOR") or Path(sys.executable).with_name("auditor"))
GOAL_MIB = 300.0
_ATTESTATION = "application/vnd.in-toto+json"
_NOTATION = "application/vnd.cncf.notary.signature"


@dataclass(frozen=True)
class MemoryShape:
    tags: int = 10_000
    platforms: int = 8
    signed_every: int = 10

    @property
    def nodes(self) -> int:
        return self.tags * (self.platforms + 2)


def _blob(root: Path, data: bytes) -> dict[str, object]:
    return {"digest": write_blob(root, data), "size": len(data)}


def generate_layout(root: Path, shape: MemoryShape) -> Path:
    """Write the layout (once: an existing complete one is reused) and return its path."""
    done = root / ".complete"
    if done.exists() and done.read_text() == repr(shape):
        return root
    init_layout(root)
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(root, b"{}")}
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(root, b"layer")}
    empty = {"mediaType": mt.OCI_EMPTY, **_blob(root, b"{}")}
    envelope = {"mediaType": "application/jose+json", **_blob(root, b"{}")}
    entries: list[dict[str, object]] = []
    count = 0
    for t in range(shape.tags):
        children: list[dict[str, object]] = []
        for p in range(shape.platforms):
            doc = {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": config,
                "layers": [layer],
                "annotations": {"bench": f"{t}/{p}"},
            }
            raw = encode_json(doc)
            descriptor = {"mediaType": mt.OCI_MANIFEST, **_blob(root, raw)}
            children.append({**descriptor, "platform": {"os": "linux", "architecture": f"a{p}"}})
            count += 1
            if count % shape.signed_every == 0:
                signature = {
                    "schemaVersion": 2,
                    "mediaType": mt.OCI_MANIFEST,
                    "artifactType": _NOTATION,
                    "config": empty,
                    "layers": [envelope],
                    "subject": descriptor,
                }
                raw = encode_json(signature)
                entries.append(
                    {"mediaType": mt.OCI_MANIFEST, "artifactType": _NOTATION, **_blob(root, raw)}
                )
        subject = children[0]
        attestation = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config,
            "layers": [{**layer, "mediaType": _ATTESTATION}],
            "annotations": {"bench": f"{t}/attestation"},
        }
        raw = encode_json(attestation)
        children.append(
            {
                "mediaType": mt.OCI_MANIFEST,
                **_blob(root, raw),
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": str(subject["digest"]),
                },
            }
        )
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": children}
        raw = encode_json(index)
        entries.append(
            {
                "mediaType": mt.OCI_INDEX,
                **_blob(root, raw),
                "annotations": {mt.ANNOTATION_REF_NAME: f"1.{t // 100}.{t % 100}"},
            }
        )
    (root / "index.json").write_bytes(
        encode_json({"schemaVersion": 2, "manifests": entries})
    )
    done.write_text(repr(shape))
    return root


@dataclass(frozen=True)
class Measured:
    label: str
    seconds: float
    peak_mib: float
    code: int
    output_mib: float


def _run(label: str, args: list[str], cwd: Path, out: Path) -> Measured:
    """The binary as a child; its peak RSS from wait4 (KiB on Linux)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "XDG_CONFIG_HOME": str(cwd / "xdg"),
        "DOCKER_CONFIG": str(cwd / "docker"),
        "LANG": "C.UTF-8",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(AUDITOR), *args, "-o", str(out)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    code = process.returncode
    if code not in (0, 1, 3):
        raise SystemExit(f"{label}: exit {code}: {stderr.decode(errors='replace')[-400:]}")
    size = out.stat().st_size / 2**20 if out.exists() else 0.0
    return Measured(label, seconds, usage.ru_maxrss / 1024, code, size)


def bench_memory(tmp: Path, shape: MemoryShape, formats: list[str]) -> list[Measured]:
    layout_dir = tmp / "memory-layout"
    started = time.perf_counter()
    generate_layout(layout_dir, shape)
    print(f"memory: layout of {shape.tags} tags x ({shape.platforms} platforms + attestation "
          f"+ index) = {shape.nodes} nodes written in {time.perf_counter() - started:.1f}s")
    work = tmp / "memory-work"
    for sub in ("xdg", "docker"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    every = work / "every.yaml"  # tags.limit's maximum, 10^4: every tag of the layout
    every.write_text(json.dumps({"layouts": [{"path": str(layout_dir),
                                              "tags": {"limit": shape.tags}}]}))
    one = work / "one.yaml"
    one.write_text(json.dumps({"layouts": [{"path": str(layout_dir),
                                            "tags": {"include": ["1.0.0"]}}]}))
    results = [
        _run("baseline", ["audit", "now", "-c", str(one), "--format", "json"], work,
             work / "one.json")
    ]
    for case in formats:
        # "json+state": the same run recorded in a new state database (audit now --state).
        fmt, _, state = case.partition("+")
        args = ["audit", "now", "-c", str(every), "--format", fmt]
        if state == "state":
            database = work / f"{fmt}-state.db"
            database.unlink(missing_ok=True)
            args += ["--state", str(database)]
        elif state:
            raise SystemExit(f"memory: unknown case {case!r} (FORMAT or FORMAT+state)")
        results.append(_run(case, args, work, work / f"all.{fmt}"))
    base = results[0]
    for m in results:
        print(f"  {m.label:9} {m.seconds:8.1f}s wall  peak RSS {m.peak_mib:7.1f}MiB  "
              f"(+{m.peak_mib - base.peak_mib:6.1f}MiB over the baseline)  "
              f"output {m.output_mib:7.1f}MiB  exit {m.code}")
    for m in results[1:]:
        verdict = "met    " if m.peak_mib <= GOAL_MIB else "NOT met"
        print(f"  {verdict} {shape.nodes} nodes within {GOAL_MIB:.0f} MB peak RSS ({m.label})"
              f"{'':14}{m.peak_mib:.1f}MiB, {m.peak_mib / base.peak_mib:.2f}x the baseline")
    return results
