"""The built wheel ships the product only: ``auditor/`` and its metadata, never the devkit,
the tests or the benchmarks, and every module of ``auditor/`` is in it."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_product_code_only(tmp_path: Path) -> None:
    built = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    wheel = Path(next(iter(built)))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert tops - dist_info == {"auditor"}, sorted(tops)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "auditor").rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
