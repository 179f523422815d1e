"""What a prompt may see of a clip: its askable labels and its measurements, with a glossary.

Title, artist and album never reach the prompt (the model would recite them instead of
describing the music); numbers are rounded to what a listener could hear.
"""

from __future__ import annotations

import json
from typing import Any

from qagen.records import Clip, ClipFeatures, FeatureStatus
from qagen.records.features import TempoAgreement

#: What each metadata field means, told to the LLM (LLark gives such a glossary too).
GLOSSARY = {
    "tempo_bpm": "measured tempo in beats per minute",
    "tempo_certainty": "how sure the tempo is: 'high' (estimators agree), 'medium' (they agree "
    "up to doubling or halving: the music can be felt at half or double this tempo), 'low'",
    "meter": "time signature: '3/4' = three beats per bar (waltz feel), '4/4' = four beats",
    "key": "measured key (tonic and mode)",
    "key_certainty": "'high' when the key is clear, 'low' when it is ambiguous (e.g. between "
    "a major key and its relative minor)",
    "chords": "distinct chords heard, in order of first appearance",
    "chord_progression": "the chord sequence over time (repeats collapsed)",
    "loudness": "overall loudness: quiet, moderate or loud",
    "duration_s": "length of the clip in seconds",
    "genres": "genres given by the dataset's annotators",
    "instruments": "instruments given by the dataset's annotators",
    "moods": "moods given by the dataset's annotators",
    "tags": "free tags given by listeners",
    "caption": "a human description of the clip",
    "composer": "composer of the piece",
    "ensemble": "the performing ensemble",
}


def _tempo_certainty(f: ClipFeatures) -> str:
    if f.tempo_agreement in (TempoAgreement.agree, TempoAgreement.majority):
        return "high"
    if f.tempo_agreement is TempoAgreement.octave:
        return "medium"
    return "low"


def _loudness_word(lufs: float | None) -> str | None:
    if lufs is None:
        return None
    return "quiet" if lufs < -30 else "loud" if lufs > -14 else "moderate"


def measured_metadata(features: ClipFeatures | None) -> dict[str, Any]:
    """The measurements a prompt may use (empty when the clip was not measured ok)."""
    if features is None or features.status is not FeatureStatus.ok:
        return {}
    out: dict[str, Any] = {}
    if features.tempo_bpm is not None:
        out["tempo_bpm"] = round(features.tempo_bpm)
        out["tempo_certainty"] = _tempo_certainty(features)
    if features.meter is not None:
        out["meter"] = features.time_signature or f"{features.meter}/4"
    if features.key is not None:
        out["key"] = features.key
        out["key_certainty"] = "high" if (features.key_confidence or 0) >= 0.6 else "low"
    chords = [c.spelled for c in features.chords if c.label != "N"]
    if chords:
        out["chords"] = list(dict.fromkeys(chords))
        progression = [c for i, c in enumerate(chords) if i == 0 or c != chords[i - 1]]
        out["chord_progression"] = " - ".join(progression[:16])
    loud = _loudness_word(features.loudness_lufs)
    if loud:
        out["loudness"] = loud
    if features.duration_s is not None:
        out["duration_s"] = round(features.duration_s, 1)
    return out


def label_metadata(clip: Clip) -> dict[str, Any]:
    """The dataset's own labels a prompt may use (never title/artist/album)."""
    askable = Clip.askable_fields()
    out: dict[str, Any] = {}
    for name in ("caption", "genres", "instruments", "moods", "composer", "ensemble"):
        value = getattr(clip, name)
        if name in askable and value:
            out[name] = value
    tags = [*clip.aspects, *clip.tags]
    if tags:
        out["tags"] = list(dict.fromkeys(tags))[:30]
    return out


def build_context(clip: Clip, features: ClipFeatures | None) -> dict[str, Any]:
    """The Jinja context of every template."""
    measured = measured_metadata(features)
    labels = label_metadata(clip)
    metadata = {**measured, **labels}
    return {
        "measured": measured,
        "labels": labels,
        "metadata": metadata,
        "metadata_json": json.dumps(metadata, indent=1, ensure_ascii=False),
        "glossary": {k: v for k, v in GLOSSARY.items() if k in metadata},
        "source": clip.source,
    }
