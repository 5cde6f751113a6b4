"""The daemon's config keys and command-line overrides (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import StateConfig, parse_config, parse_duration
from auditor.daemon.command import apply_overrides
from auditor.daemon.scheduler import build_trigger
from auditor.daemon.units import units
from auditor.errors import ConfigError, UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("15m", 900), ("1h", 3600), ("1d", 86400), ("90", 90), (30, 30), ("1.5m", 90)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "-1m", "0s", "nan", "1e999h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(text)


def test_schedule_defaults_and_every_problem_located() -> None:
    config = parse_config({}, "auditor.yaml")
    assert config.schedule.interval_seconds == 900
    assert config.schedule.jitter_seconds == 60
    assert config.server.listen == "127.0.0.1:9464"
    assert config.state is None
    assert config.metrics.per_node is True
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "schedule": {"interval": "5m", "cron": "* * * * *"},
                "server": {"listen": "nowhere"},
                "metrics": {"max_series": -1},
                "state": {"keep_runs": 0},
            },
            "auditor.yaml",
        )
    lines = str(caught.value).splitlines()
    assert any(line.startswith("auditor.yaml: schedule: ") and "not both" in line
               for line in lines)
    assert any(line.startswith("auditor.yaml: server.listen: ") for line in lines)
    assert any(line.startswith("auditor.yaml: metrics.max_series: ") for line in lines)
    assert any(line.startswith("auditor.yaml: state.keep_runs: ") for line in lines)


def test_cron_is_checked_by_the_scheduler_library() -> None:
    with pytest.raises(ConfigError, match=r"schedule.cron: '\* \* 32 \* \*' is not a valid cron"):
        parse_config({"schedule": {"cron": "* * 32 * *"}}, "c")
    config = parse_config({"schedule": {"cron": "*/15 * * * *"}}, "c")
    assert config.schedule.jitter_seconds == 0
    assert "cron" in str(build_trigger(config.schedule))


def test_interval_trigger_carries_interval_and_jitter() -> None:
    trigger = build_trigger(parse_config({"schedule": {"interval": "5s", "jitter": "0s"}},
                                         "c").schedule)
    assert trigger.interval.total_seconds() == 5
    assert trigger.jitter is None
    trigger = build_trigger(parse_config({"schedule": {"interval": "1h"}}, "c").schedule)
    assert trigger.jitter == 60


def test_state_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    from auditor.config import load_config

    (tmp_path / "auditor.yaml").write_text("state: {path: data/auditor.db}\n")
    config, _ = load_config(tmp_path / "auditor.yaml")
    assert config.state == StateConfig(path=tmp_path / "data" / "auditor.db")


def test_listen_precedence_flag_then_config_then_environment() -> None:
    bare = parse_config({}, "c")
    env = {"AUDITOR_LISTEN": "0.0.0.0:9999"}
    assert apply_overrides(bare, state=None, listen=None, env=env).server.listen == "0.0.0.0:9999"
    assert apply_overrides(bare, state=None, listen=None, env={}).server.listen == (
        "127.0.0.1:9464"
    )
    named = parse_config({"server": {"listen": "127.0.0.1:1234", "grace_seconds": 3}}, "c")
    kept = apply_overrides(named, state=None, listen=None, env=env)
    assert kept.server.listen == "127.0.0.1:1234"
    flagged = apply_overrides(named, state=Path("x.db"), listen="127.0.0.1:4321", env=env)
    assert flagged.server.listen == "127.0.0.1:4321"
    assert flagged.server.grace_seconds == 3
    assert flagged.state is not None
    assert flagged.state.path == Path("x.db")
    with pytest.raises(UsageError, match="--listen 'bad' is not HOST:PORT"):
        apply_overrides(bare, state=None, listen="bad", env={})


def test_units_one_per_registry_and_layout() -> None:
    config = parse_config(
        {
            "registries": [{"url": "http://127.0.0.1:5000", "repositories": ["a"]}],
            "layouts": [{"path": "/srv/layout"}],
        },
        "c",
    )
    assert [(u.key, u.label) for u in units(config)] == [
        ("registry:127.0.0.1:5000", "127.0.0.1:5000"),
        ("layout:/srv/layout", "oci-layout:/srv/layout"),
    ]
