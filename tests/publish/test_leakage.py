"""Split leakage checks on hand-made clips and pairs."""

from qagen.publish.leakage import find_leakage

CLEAN = [("a", "train", "src/1", "h1"), ("b", "test", "src/2", "h2")]


def test_clean_splits_have_no_violations() -> None:
    assert find_leakage(CLEAN, [("q1", "a", "train"), ("q2", "b", "test")]) == []


def test_each_kind_of_leak_is_caught() -> None:
    clips = [*CLEAN,
             ("a", "test", "src/1", "h1"),          # clip listed under two splits
             ("c", "validation", "src/2", "h3"),    # another window of recording 2
             ("d", "train", "src/9", "h2")]         # same audio bytes as b under another id
    pairs = [("q1", "b", "train"), ("q2", "zz", "test")]
    found = {(v.kind, v.item): v for v in find_leakage(clips, pairs)}
    assert set(found) == {("clip_in_two_splits", "a"), ("recording_in_two_splits", "src/1"),
                          ("recording_in_two_splits", "src/2"), ("audio_in_two_splits", "h2"),
                          ("audio_in_two_splits", "h1"), ("pair_split_mismatch", "q1"),
                          ("pair_without_clip", "q2")}
    assert found[("recording_in_two_splits", "src/2")].splits == ["test", "validation"]
    assert "clip b is in test" in found[("pair_split_mismatch", "q1")].detail
