"""``qagen/madmom-features``: the embedded encoder that carries music.

The pure part (tempograms and bar profiles from activations) is tested on synthetic
activations with known periods; the encoder through the embed stage on rendered demo clips
whose tempo, meter and key are known.
"""

from pathlib import Path

import numpy as np
import pytest

from qagen.audio import write_audio
from qagen.demo.plan import demo_clip
from qagen.demo.synth import ClipSpec
from qagen.embed.config import EmbedConfig
from qagen.embed.madmom_features import (
    BAR_MULTIPLES,
    DIM,
    GROUPS,
    MADMOM_ENCODER,
    TEMPO_GRID_BPM,
    local_autocorrelation,
    rhythm_and_pitch_frames,
)
from qagen.embed.stage import embed
from qagen.embedding_store import EmbeddingStore
from qagen.errors import ConfigError
from qagen.ingest import ingest
from qagen.workdir import WorkDir

pytest.importorskip("madmom")


def group(frames: np.ndarray, name: str) -> np.ndarray:
    """One feature group's columns of [frames, DIM] (or [rows, DIM])."""
    start = 0
    for g, n in GROUPS:
        if g == name:
            return frames[..., start: start + n]
        start += n
    raise KeyError(name)


def pulses(*, seconds: float, bpm: float, beats_per_bar: int) -> np.ndarray:
    """[frames at 100 fps, 2] beat / downbeat activations: a spike on every beat / bar."""
    n = int(seconds * 100)
    act = np.zeros((n, 2))
    period = 6000.0 / bpm
    for i, t in enumerate(np.arange(0, n, period)):
        act[round(t), 0] = 1.0
        if i % beats_per_bar == 0:
            act[round(t), 1] = 1.0
    return act


def test_autocorrelation_peaks_at_the_period_and_is_one_at_lag_zero() -> None:
    x = np.zeros(1000)
    x[::50] = 1.0
    ac = local_autocorrelation(x, max_lag=120, window=400, hop=10)
    assert ac.shape == (100, 121)
    assert np.allclose(ac[:, 0], 1.0)
    assert int(np.argmax(ac[50, 20:])) + 20 == 50


@pytest.mark.parametrize(("bpm", "bpb"), [(120.0, 4), (96.0, 3), (150.0, 3), (72.0, 4)])
def test_tempogram_and_bar_profile_show_tempo_and_meter(bpm: float, bpb: int) -> None:
    n = 150
    frames = rhythm_and_pitch_frames(chroma=np.zeros((n, 12)), chord=np.zeros((n, 128)),
                                     act=pulses(seconds=15, bpm=bpm, beats_per_bar=bpb), n=n)
    assert frames.shape == (n, DIM) and frames.dtype == np.float32
    tempogram = group(frames, "tempogram").mean(axis=0)
    # A spike train correlates equally at every multiple of its period, so the strongest
    # level within 60–200 BPM is the beat or its half; the beat itself is a peak.
    allowed = (TEMPO_GRID_BPM >= 60) & (TEMPO_GRID_BPM <= 200)
    peak = TEMPO_GRID_BPM[allowed][int(np.argmax(tempogram[allowed]))]
    assert min(abs(peak / (bpm * k) - 1) for k in (1, 0.5)) < 0.05, (peak, bpm)
    at_beat = tempogram[int(np.argmin(abs(np.log(TEMPO_GRID_BPM / bpm))))]
    assert at_beat > 0.8 * tempogram[allowed].max()
    profile = group(frames, "bar_in_beats").mean(axis=0)
    strongest = int(BAR_MULTIPLES[int(np.argmax(profile[:5]))])  # 1..5 beats
    assert strongest == bpb


def test_chroma_and_chord_columns_are_the_networks_own() -> None:
    n = 40
    chroma = np.random.default_rng(0).random((n, 12))
    chord = np.random.default_rng(1).random((n - 2, 128))  # networks may give fewer frames
    frames = rhythm_and_pitch_frames(chroma=chroma, chord=chord,
                                     act=pulses(seconds=4, bpm=120, beats_per_bar=4), n=n)
    ratio = group(frames, "chroma") / chroma
    assert np.allclose(ratio, ratio[0, 0], rtol=1e-5)  # one scale for the group
    assert np.allclose(group(frames, "chord")[-1], group(frames, "chord")[-3])  # edge-padded


def _render(folder: Path, spec: ClipSpec) -> None:
    clip = demo_clip(spec, source="audiofolder", split="train")
    write_audio(folder / f"{spec.name}.wav", clip.audio, sr=clip.sr)


@pytest.fixture(scope="module")
def demo_work(tmp_path_factory: pytest.TempPathFactory) -> WorkDir:
    """Two rendered 8 s clips: C major 4/4 at 120 BPM, and A minor 3/4 at 90 BPM."""
    root = tmp_path_factory.mktemp("madmom-features")
    data = root / "data"
    _render(data, ClipSpec(name="c-major", tempo_bpm=120, beats_per_bar=4, tonic="C",
                           mode="major", progression=["I", "IV", "V", "I"],
                           timbres=["piano", "bass"], has_drums=True, duration_s=8, seed=1))
    _render(data, ClipSpec(name="a-minor", tempo_bpm=90, beats_per_bar=3, tonic="A",
                           mode="minor", progression=["i", "iv", "V", "i"],
                           timbres=["organ", "bass"], has_drums=True, duration_s=8, seed=2))
    work = WorkDir(root / "work")
    ingest("audiofolder", data, work=work)
    report = embed(work, config=EmbedConfig(encoder=MADMOM_ENCODER), strict=True)
    assert report.items_out == 2
    return work


def test_the_stage_stores_layers_and_frames_with_the_encoder_named(demo_work: WorkDir) -> None:
    store = EmbeddingStore(demo_work)
    assert store.encoder_id == MADMOM_ENCODER and not store.encoder_random_init
    for clip_id in store.clip_ids("layers"):
        layers = store.load(clip_id, "layers")
        frames = store.load(clip_id, "frames")
        assert layers is not None and frames is not None
        assert layers.shape == (3, DIM)  # mean, std, max over frames
        assert frames.shape == (80, DIM)  # 8 s at 10 Hz
        assert store.row(clip_id, "layers").sr == 44100


def test_the_features_hear_key_and_tempo(demo_work: WorkDir) -> None:
    from qagen.manifest import iter_manifest
    from qagen.records import Clip

    names = {c.clip_id: Path(c.audio_path).stem
             for c in iter_manifest(demo_work.manifest_shards("clips").values(), Clip)}
    store = EmbeddingStore(demo_work)
    heard = {}
    for clip_id in store.clip_ids("layers"):
        mean = np.asarray(store.load(clip_id, "layers"), dtype=np.float64)[0]
        chroma = group(mean, "chroma")
        tempogram = group(mean, "tempogram")
        allowed = (TEMPO_GRID_BPM >= 60) & (TEMPO_GRID_BPM <= 200)
        heard[names[clip_id]] = (set(np.argsort(chroma)[-3:].tolist()),
                                 TEMPO_GRID_BPM[allowed][int(np.argmax(tempogram[allowed]))])
    # The three strongest pitch classes are the tonic triad's: C E G (0 4 7), A C E (9 0 4).
    assert heard["c-major"][0] == {0, 4, 7}
    assert heard["a-minor"][0] == {9, 0, 4}
    for name, bpm in (("c-major", 120), ("a-minor", 90)):
        assert min(abs(heard[name][1] / (bpm * k) - 1) for k in (1, 2, 0.5)) < 0.05


def test_a_rerun_reuses_every_clip(demo_work: WorkDir) -> None:
    report = embed(demo_work, config=EmbedConfig(encoder=MADMOM_ENCODER), strict=True)
    assert report.shards_reused == report.shards


@pytest.mark.parametrize(("cfg", "match"), [
    ({"frame_rate_hz": 20.0}, "exceeds qagen/madmom-features's 10 frames/s"),
    ({"frame_layer": 3}, "does not apply"),
])
def test_settings_it_cannot_honour_are_refused(demo_work: WorkDir, cfg: dict[str, object],
                                               match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        embed(demo_work, config=EmbedConfig(encoder=MADMOM_ENCODER, **cfg))  # type: ignore[arg-type]


def test_its_family_fixes_rate_dtype_and_workers() -> None:
    """44.1 kHz, float32 and one clip in flight whatever the config asks (no network loaded)."""
    from qagen.embed.encoder import resolve_encoder
    from qagen.embed.families import MadmomFamily, family_of
    from qagen.embed.stage import compute_dtype_of, workers_of

    source = resolve_encoder(MADMOM_ENCODER)
    config = EmbedConfig(encoder=MADMOM_ENCODER, sr=24000, compute_dtype="bfloat16",
                         device="cpu")
    assert isinstance(family_of(source), MadmomFamily)
    assert family_of(source).sample_rate(config) == 44100
    assert compute_dtype_of(source, config) == "float32"
    assert workers_of(source, config) == 1
    assert workers_of(source, config.model_copy(update={"workers": 2})) == 2
