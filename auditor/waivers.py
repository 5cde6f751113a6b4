"""Waivers: known, owned, dated exceptions to the coverage policy (pure: no I/O, no clock).

A fleet has exceptions ("the ppc64le build is signed by another team from January"). A waiver
accepts matching findings until it expires: they stay in every report, marked waived, but no
longer make the target noncompliant. Decisions:

* A waiver matches a finding when its ``image`` matches the target (an fnmatch glob over the
  reference ``host/repo:tag``, or a digest equal to the target's or the finding's node), its
  ``platforms`` (if given) select the finding's platform (a platform without variant selects
  every variant), and its ``findings`` (if given) name the finding's kind. The first current
  waiver that matches wins.
* ``unchecked`` is never waived: a waiver accepts a known gap, it cannot turn "could not be
  checked" into "fine".
* An expired waiver changes nothing except the message, which says it expired: the finding is
  back, as if the waiver were not there. A date expires at the end of that day (UTC).
* The target's status is recomputed from what is left: noncompliant while an unwaived policy
  finding remains, else error if something was unchecked, else compliant.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from auditor.coverage import FindingKind, platform_matches
from auditor.model import Finding, Platform, TargetResult, TargetStatus, WaiverNote


@dataclass(frozen=True)
class Waiver:
    image: str
    reason: str
    owner: str
    expires: datetime  # aware, UTC: the first instant the waiver no longer applies
    platforms: tuple[Platform, ...] | None = None
    findings: frozenset[str] | None = None

    def note(self) -> WaiverNote:
        return WaiverNote(self.image, self.reason, self.owner, self.expires)

    def _matches_image(self, target: TargetResult, finding: Finding) -> bool:
        if self.image.startswith("sha256:") or self.image.startswith("sha512:"):
            return self.image in (target.digest, finding.node)
        reference = target.reference
        bare = reference.split("@", 1)[0]
        return fnmatch.fnmatchcase(reference, self.image) or fnmatch.fnmatchcase(
            bare, self.image
        )

    def _matches_platform(self, finding: Finding) -> bool:
        if self.platforms is None:
            return True
        if finding.platform is None:
            return False
        try:
            platform = Platform.parse(finding.platform)
        except ValueError:
            return False
        return any(platform_matches(selector, platform) for selector in self.platforms)

    def matches(self, target: TargetResult, finding: Finding) -> bool:
        if finding.kind == FindingKind.UNCHECKED:
            return False
        if self.findings is not None and finding.kind not in self.findings:
            return False
        return self._matches_platform(finding) and self._matches_image(target, finding)


def _status(target: TargetResult, findings: Sequence[Finding]) -> TargetStatus:
    if target.status is not TargetStatus.NONCOMPLIANT:
        return target.status
    open_ = [f for f in findings if f.waiver is None]
    if any(f.kind != FindingKind.UNCHECKED for f in open_):
        return TargetStatus.NONCOMPLIANT
    if any(f.kind == FindingKind.UNCHECKED for f in open_):
        return TargetStatus.ERROR
    return TargetStatus.COMPLIANT


def apply_waivers(target: TargetResult, waivers: Sequence[Waiver], now: datetime) -> TargetResult:
    """The target with matching findings waived (or marked as past their waiver)."""
    if not waivers or not target.findings:
        return target
    findings = []
    for finding in target.findings:
        matching = [w for w in waivers if w.matches(target, finding)]
        current = next((w for w in matching if now < w.expires), None)
        if current is not None:
            findings.append(replace(finding, waiver=current.note()))
        elif matching:
            lapsed = matching[0]
            text = (
                f"{finding.message}; waiver by {lapsed.owner} expired "
                f"{lapsed.expires.isoformat()}"
            )
            findings.append(replace(finding, message=text))
        else:
            findings.append(finding)
    return replace(target, findings=tuple(findings), status=_status(target, findings))
