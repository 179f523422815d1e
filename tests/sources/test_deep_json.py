"""One row of deeply nested JSON is a malformed_row rejection; the other rows are ingested.

Before the nesting bound, ``json.loads`` raised RecursionError and stopped the whole ingest.
"""

from __future__ import annotations

import json
from pathlib import Path

from qagen.records import Clip, Rejection
from qagen.sources import audiofolder, mtt

DEEP = "[" * 5000 + "]" * 5000


def _split(items: list[Clip | Rejection]) -> tuple[list[Clip], list[Rejection]]:
    return ([i for i in items if isinstance(i, Clip)],
            [i for i in items if isinstance(i, Rejection)])


def test_audiofolder_jsonl_line_and_tags_cell(tmp_path: Path) -> None:
    lines = [json.dumps({"file_name": "a.wav", "caption": "fine"}), DEEP,
             json.dumps({"file_name": "b.wav", "tags": DEEP}),
             json.dumps({"file_name": "c.wav", "tags": "piano,soft"})]
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    clips, rejections = _split(list(audiofolder.iter_clips(tmp_path,
                                                           options=audiofolder.Options())))
    by_path = {c.audio_path: c for c in clips}
    assert sorted(by_path) == ["a.wav", "b.wav", "c.wav"]  # b.wav is kept without tags
    assert by_path["b.wav"].tags == [] and by_path["c.wav"].tags == ["piano", "soft"]
    assert sorted((r.line, r.reason, r.kept) for r in rejections) == [
        (2, "malformed_row", False), (3, "invalid_value", True)]
    assert all("levels deep" in (r.detail or "") for r in rejections)


def test_audiofolder_csv_tags_cell(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text(
        f'file_name,tags\na.wav,"{DEEP}"\nb.wav,"[""piano""]"\n', encoding="utf-8")
    clips, rejections = _split(list(audiofolder.iter_clips(tmp_path,
                                                           options=audiofolder.Options())))
    assert [(c.audio_path, c.tags) for c in clips] == [("a.wav", []), ("b.wav", ["piano"])]
    assert [(r.line, r.reason, r.kept) for r in rejections] == [(2, "invalid_value", True)]


def test_mtt_ground_truth_row(tmp_path: Path) -> None:
    (tmp_path / "index_mtt.tsv").write_text("2\tf/a-b-01-x-0-29.mp3\n6\tc/a-b-02-y-0-29.mp3\n")
    vector = json.dumps([1.0] + [0.0] * (len(mtt.TOP50_TAGS) - 1))
    (tmp_path / "train_gt_mtt.tsv").write_text(f"2\t{DEEP}\n6\t{vector}\n")
    clips, rejections = _split(list(mtt.iter_clips(tmp_path, options=mtt.Options())))
    by_id = {c.source_id: c for c in clips}
    assert set(by_id) == {"2", "6"} and by_id["6"].tags == [mtt.TOP50_TAGS[0]]
    assert by_id["2"].tags == []  # its labels were refused, the clip is still there
    assert [(r.file, r.line, r.reason) for r in rejections] == [
        ("train_gt_mtt.tsv", 1, "malformed_row")]
