"""License parsing and aggregation: a derived dataset carries the strictest terms of its inputs.

Why: a dataset mixing MusicCaps captions (CC BY-SA 4.0), MagnaTagATune (CC BY-NC-SA 3.0),
FMA tracks (per-track CC licenses, many NC) and features from madmom's models (CC BY-NC-SA 4.0)
may only be shared under terms satisfying all of them. Creative Commons texts are parsed into
their elements (BY, SA, NC, ND) and a version; the strictest combination wins and NC inputs
are flagged. Text that names no CC license is ``unknown``, which makes the aggregate ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

#: madmom's model and data files (README of CPJKU/madmom, "Model and data files").
MADMOM_MODELS_LICENSE = "CC-BY-NC-SA-4.0"

_VERSION = re.compile(r"(\d\.\d)")
_ELEMENTS = {
    "nc": re.compile(r"(?i)\bnc\b|non-?commercial"),
    "nd": re.compile(r"(?i)\bnd\b|no-?deriv"),
    "sa": re.compile(r"(?i)\bsa\b|share-?alike"),
    "by": re.compile(r"(?i)\bby\b|attribution"),
}
_PUBLIC = re.compile(r"(?i)\bcc0\b|public domain|\bpdm\b")


class LicenseTerms(BaseModel):
    """A parsed license: Creative Commons elements and version, or ``unknown``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str
    family: str  # "cc0", "by", "by-sa", "by-nc", "by-nc-sa", "by-nd", "by-nc-nd", "unknown"
    version: str | None = None

    @property
    def non_commercial(self) -> bool:
        return "nc" in self.family.split("-")

    @property
    def no_derivatives(self) -> bool:
        return "nd" in self.family.split("-")

    @property
    def hub_id(self) -> str:
        """The Hub's license id (``cc-by-nc-sa-4.0``), ``other`` when unknown."""
        if self.family == "unknown":
            return "other"
        if self.family == "cc0":
            return "cc0-1.0"
        return f"cc-{self.family}-{self.version or '4.0'}"


#: Strictness order of families: later entries impose more obligations.
_STRICTNESS = ("cc0", "by", "by-sa", "by-nc", "by-nc-sa", "by-nd", "by-nc-nd", "unknown")


def parse_license(text: str | None) -> LicenseTerms:
    """Parse ``"CC-BY-NC-SA-3.0"``, ``"Attribution-NonCommercial 4.0 International"``, …

    Only the part before a ``;`` is read (``"CC-BY-SA-4.0 (caption); audio: YouTube…"`` is the
    caption's license; the audio is not redistributed by this dataset).
    """
    raw = (text or "").strip()
    head = raw.split(";")[0]
    if not head:
        return LicenseTerms(text=raw, family="unknown")
    if _PUBLIC.search(head):
        return LicenseTerms(text=raw, family="cc0", version="1.0")
    if not (re.search(r"(?i)\bcc\b|creative commons", head) or _ELEMENTS["by"].search(head)):
        return LicenseTerms(text=raw, family="unknown")
    elements = [name for name in ("by", "nc", "nd", "sa") if _ELEMENTS[name].search(head)]
    if "by" not in elements:
        return LicenseTerms(text=raw, family="unknown")
    if "nd" in elements and "sa" in elements:  # no such license
        return LicenseTerms(text=raw, family="unknown")
    version = _VERSION.search(head)
    return LicenseTerms(text=raw, family="-".join(elements), version=version and version.group(1))


class AggregateLicense(BaseModel):
    """The terms a derived dataset must carry, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hub_id: str
    strictest: str
    non_commercial: bool
    no_derivatives: bool
    unknown: list[str]
    inputs: dict[str, str]  # license text → its Hub id


def aggregate_licenses(texts: Iterable[str | None]) -> AggregateLicense:
    """The strictest of ``texts``: highest family in strictness order, then highest version.

    Unknown licenses make the result ``other`` (a human must check them); ND inputs are
    flagged because a derived dataset cannot be shared under NoDerivatives.
    """
    parsed = {t or "": parse_license(t) for t in texts}
    if not parsed:
        return AggregateLicense(hub_id="other", strictest="unknown", non_commercial=False,
                                no_derivatives=False, unknown=[], inputs={})
    known = [p for p in parsed.values() if p.family != "unknown"]
    unknown = sorted(t or "(none)" for t, p in parsed.items() if p.family == "unknown")
    if known:
        top = max(known, key=lambda p: (_STRICTNESS.index(p.family), p.version or ""))
        strictest = top.hub_id
    else:
        strictest = "unknown"
    return AggregateLicense(
        hub_id="other" if unknown or not known else strictest,
        strictest=strictest,
        non_commercial=any(p.non_commercial for p in known),
        no_derivatives=any(p.no_derivatives for p in known),
        unknown=unknown,
        inputs={t: p.hub_id for t, p in sorted(parsed.items())},
    )
