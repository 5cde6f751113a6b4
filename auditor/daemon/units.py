"""What the daemon schedules: one unit per configured registry and per layout. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.config import AuditorConfig, LayoutConfig, RegistryConfig
from auditor.daemon.metrics import registry_label
from auditor.state.naming import layout_source, registry_source


@dataclass(frozen=True)
class Unit:
    """A registry or a layout: audited as a whole, never twice at once.

    ``key`` files its runs and results in the store; ``label`` is its ``registry`` label in
    metrics and logs.
    """

    key: str
    registry: RegistryConfig | None = None
    layout: LayoutConfig | None = None

    @property
    def label(self) -> str:
        return registry_label(self.key) or self.key


def units(config: AuditorConfig) -> list[Unit]:
    out = [Unit(registry_source(r.host), registry=r) for r in config.registries]
    out += [Unit(layout_source(str(lay.path)), layout=lay) for lay in config.layouts]
    return out
