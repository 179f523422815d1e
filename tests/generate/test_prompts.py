"""Every template renders, names an output model, and yields a tight JSON Schema."""

from pathlib import Path

import pytest

from qagen.errors import ConfigError
from qagen.generate.context import build_context
from qagen.generate.prompts import load_template, load_templates, render_messages
from qagen.records import Clip, ClipFeatures, FeatureStatus
from qagen.records.features import ChordSegment, TempoAgreement

ALL = load_templates()
#: Families that prompt with a clip (paraphrase rewrites a pair; judge scores one).
TEMPLATES = [t for t in ALL if t.meta.mode == "clip"]


#: How each measured field a family may require appears in its prompt for ``features()``.
SHOWN = {"tempo_bpm": '"tempo_bpm": 96', "key": '"key": "F minor"', "meter": '"meter": "3/4"'}


def clip() -> Clip:
    return Clip(clip_id=Clip.make_id("fma", "2", 0.0, None), source="fma", source_id="2",
                audio_path="fma_small/000/000002.mp3", start_s=0.0, caption="A calm piano tune.",
                genres=["Folk"], instruments=["piano"], tags=["calm"], title="Secret Title",
                artist="Secret Artist")


def features() -> ClipFeatures:
    return ClipFeatures(
        clip_id=clip().clip_id, source="fma", status=FeatureStatus.ok, tempo_bpm=96.4,
        tempo_agreement=TempoAgreement.octave, meter=3, key="F minor", key_confidence=0.9,
        chords=[ChordSegment(start_s=0, end_s=2, label="F:min", spelled="F minor"),
                ChordSegment(start_s=2, end_s=4, label="A#:min", spelled="Bb minor"),
                ChordSegment(start_s=4, end_s=6, label="F:min", spelled="F minor")],
        loudness_lufs=-20.0, duration_s=30.0)


def test_the_families_exist() -> None:
    assert [t.meta.id for t in TEMPLATES] == ["llark_caption", "llark_mir", "llark_reasoning",
                                              "musicqa_describe", "musicqa_open"]
    assert {t.meta.id: t.meta.mode for t in ALL if t.meta.mode != "clip"} == {
        "judge": "judge", "paraphrase": "paraphrase"}


@pytest.mark.parametrize("template_id", ["paraphrase", "judge"])
def test_pair_templates_render_the_pair(template_id: str) -> None:
    template = next(t for t in ALL if t.meta.id == template_id)
    context = {**build_context(clip(), features()), "question": "What key is this in?",
               "answer": "It is in F minor.", "kind": "key", "rewrite_question": False}
    text = " ".join(m["content"] for m in render_messages(template, context))
    assert "What key is this in?" in text and "It is in F minor." in text
    assert "Secret" not in text
    # The judge sees what is known of the clip; the paraphraser only the pair.
    assert ("Bb minor" in text) == (template_id == "judge")
    with pytest.raises(Exception, match="question"):
        render_messages(template, build_context(clip(), features()))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.meta.id)
def test_template_renders_without_leaking_title_or_artist(template: object) -> None:
    messages = render_messages(template, build_context(clip(), features()))  # type: ignore[arg-type]
    assert [m["role"] for m in messages] == ["system", "user"]
    text = " ".join(m["content"] for m in messages)
    assert "Secret" not in text
    # What the family needs is in its prompt: each measurement it requires, as the context
    # renders it (tempo rounded: never the raw 96.4), and the human labels when it needs them.
    meta = template.meta  # type: ignore[attr-defined]
    assert meta.requires or meta.requires_labels  # else the checks below check nothing
    for name in meta.requires:
        assert SHOWN[name] in text, f"{meta.id} requires {name} but does not show it"
    if meta.requires_labels:
        assert "A calm piano tune." in text and '"Folk"' in text and '"calm"' in text
    assert "96.4" not in text
    assert "Bb minor" in text and "3/4" in text
    schema = template.json_schema()  # type: ignore[attr-defined]
    assert schema["type"] == "object" and schema["additionalProperties"] is False


def test_schemas_are_tightened_to_the_template() -> None:
    mir = next(t for t in TEMPLATES if t.meta.id == "llark_mir")
    s = mir.json_schema()
    assert s["properties"]["pairs"]["minItems"] == s["properties"]["pairs"]["maxItems"] == 4
    assert s["$defs"]["QAItem"]["properties"]["kind"]["enum"] == [k.value for k in mir.meta.kinds]
    desc = next(t for t in TEMPLATES if t.meta.id == "musicqa_describe")
    assert desc.json_schema()["properties"]["answers"]["maxItems"] == 4


def test_context_hedges_and_rounds() -> None:
    ctx = build_context(clip(), features())
    assert ctx["measured"]["tempo_bpm"] == 96 and ctx["measured"]["tempo_certainty"] == "medium"
    assert ctx["measured"]["chord_progression"] == "F minor - Bb minor - F minor"
    assert ctx["measured"]["chords"] == ["F minor", "Bb minor"]
    assert "tempo_certainty" in ctx["glossary"]
    assert build_context(clip(), None)["measured"] == {}


def test_a_user_template_is_one_file(tmp_path: Path) -> None:
    (tmp_path / "mine.j2").write_text(
        "---\nid: mine\nversion: '1'\nkinds: [mood]\noutput: QAPairs\nn_pairs: 2\n"
        "system: Be brief.\n---\nFacts: {{ metadata_json }}\n")
    (t,) = load_templates(tmp_path)
    assert t.meta.n_pairs == 2 and len(t.content_hash) == 16
    (tmp_path / "bad.j2").write_text("---\nid: bad\nversion: '1'\nkinds: [mood]\noutput: Nope\n"
                                     "system: x\n---\nbody\n")
    with pytest.raises(ConfigError, match="unknown output model"):
        load_template(tmp_path / "bad.j2")
    (tmp_path / "bad.j2").unlink()
    with pytest.raises(ConfigError, match="unknown template ids"):
        load_templates(tmp_path, ids=["nope"])
