import pytest
from pydantic import ValidationError

from qagen.errors import UnsafePathError
from qagen.records import AudioStatus, Clip, Split


def make(**kw: object) -> Clip:
    base = dict(clip_id=Clip.make_id("mtt", "2", 0.0, None), source="mtt", source_id="2",
                audio_path="f/a.mp3", start_s=0.0)
    base.update(kw)
    return Clip(**base)  # type: ignore[arg-type]


def test_make_id_is_stable_and_window_sensitive() -> None:
    a = Clip.make_id("musicnet", "1727", 0.0, 30.0)
    assert a == Clip.make_id("musicnet", "1727", 0.0, 30.0)
    assert a == Clip.make_id("musicnet", "1727", 0.0004, 30.0)  # rounded to ms
    assert a != Clip.make_id("musicnet", "1727", 30.0, 60.0)
    assert a != Clip.make_id("musicnet", "1727", 0.0, None)
    assert a != Clip.make_id("mtt", "1727", 0.0, 30.0)
    assert a.startswith("musicnet-") and len(a) == len("musicnet-") + 16
    # Known value: changing the id scheme silently would orphan every cached artefact.
    assert Clip.make_id("musiccaps", "-0Gj8-vB1q4", 30.0, 40.0) == "musiccaps-6e704fe056da52a2"


def test_labels_are_deduplicated_and_whitespace_normalised() -> None:
    clip = make(tags=["rock", " rock ", "hard  rock", ""], genres=["Rock", "Rock"])
    assert clip.tags == ["rock", "hard rock"]
    assert clip.genres == ["Rock"]


def test_rejects_bad_windows_and_paths() -> None:
    with pytest.raises(ValidationError, match="end_s"):
        make(start_s=10.0, end_s=5.0)
    # Not a ValidationError on purpose: sources catch UnsafePathError to record unsafe_path.
    with pytest.raises(UnsafePathError, match="escapes"):
        make(audio_path="../x.wav")
    with pytest.raises(ValidationError):
        make(source="Bad Name")
    with pytest.raises(ValidationError):
        make(unknown_field=1)


def test_title_artist_album_are_not_askable() -> None:
    askable = Clip.askable_fields()
    assert {"title", "artist", "album"}.isdisjoint(askable)
    assert {"caption", "tags", "genres", "instruments", "composer"} <= askable


def test_enums_and_duration() -> None:
    clip = make(split="valid", audio_status="missing", end_s=29.1)
    assert clip.split is Split.valid and clip.audio_status is AudioStatus.missing
    assert clip.duration_s == pytest.approx(29.1)
    assert make().duration_s is None
