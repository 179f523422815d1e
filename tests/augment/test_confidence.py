"""Calibrated tempo confidence: the isotonic fit, the shipped map, and its use in decisions."""

import pytest

from qagen.augment.confidence import (
    CALIBRATION_VERSION,
    CEILING,
    FLOOR,
    TempoCalibration,
    fit_tempo_calibration,
    load_tempo_calibration,
    reliability,
    tempo_evidence,
)
from qagen.augment.tempo import TempoDecision, with_calibrated_confidence
from qagen.records.features import TempoAgreement


def test_isotonic_fit_is_monotone_bounded_and_pools_violators() -> None:
    # Raw 0.9 clips are right less often than raw 0.7 ones: the two blocks must pool.
    pairs = [(0.3, False), (0.3, False), (0.5, True), (0.5, False), (0.7, True), (0.7, True),
             (0.9, True), (0.9, False), (0.99, True), (0.99, True), (0.99, True)]
    cal = fit_tempo_calibration(pairs, fitted_on="toy")
    ps = [b.p for b in cal.bins]
    assert ps == sorted(ps) and ps[0] >= FLOOR and ps[-1] <= CEILING
    assert sum(b.n for b in cal.bins) == len(pairs) == cal.clips
    assert any(b.lo == 0.7 and b.hi == 0.9 for b in cal.bins)  # pooled
    xs = [i / 20 for i in range(21)]
    mapped = [cal.apply(x) for x in xs]
    assert mapped == sorted(mapped)
    assert cal.apply(0.0) == ps[0] and cal.apply(1.0) == ps[-1]  # flat outside


def test_all_right_is_not_certain_and_empty_fit_is_identity() -> None:
    cal = fit_tempo_calibration([(0.95, True)] * 5, fitted_on="toy")
    assert cal.apply(0.99) <= CEILING < 1.0
    empty = fit_tempo_calibration([], fitted_on="none")
    with pytest.raises(ValueError, match="empty"):
        empty.apply(0.42)


def test_evidence_counts_agreeing_estimators_first() -> None:
    assert tempo_evidence(120.0, 0.5, [120.5, 60.0, None]) == pytest.approx(1.4995)
    assert tempo_evidence(120.0, 1.0, [119.0, 121.0, 240.0]) < tempo_evidence(
        120.0, 0.1, [120.0, 120.0, 120.0])


def test_shipped_calibration_loads_and_is_monotone() -> None:
    cal = load_tempo_calibration()
    if cal is None:
        pytest.skip("no tempo_calibration.json of this version shipped")
    assert cal.version == CALIBRATION_VERSION and cal.clips >= 30
    assert "dev" in cal.fitted_on  # never fitted on the reported half
    mapped = [cal.apply(i / 50) for i in range(201)]  # evidence spans [0, 4)
    assert mapped == sorted(mapped)
    assert len(cal.fingerprint) == 12
    assert TempoCalibration.model_validate_json(cal.model_dump_json()) == cal


def test_calibrated_decision_keeps_weights_summing_to_one() -> None:
    d = TempoDecision(bpm=120.0, confidence=0.9, agreement=TempoAgreement.agree,
                      alternatives=((120.0, 0.9), (60.0, 0.08), (240.0, 0.02)))
    c = with_calibrated_confidence(d, 0.7)
    assert c.bpm == 120.0 and c.confidence == 0.7
    assert dict(c.alternatives)[120.0] == 0.7
    assert sum(w for _, w in c.alternatives) == pytest.approx(1.0, abs=1e-3)
    assert dict(c.alternatives)[60.0] > dict(c.alternatives)[240.0]  # order kept
    low = with_calibrated_confidence(d, 0.3)  # the chosen tempo may fall below another
    assert low.bpm == 120.0 and low.alternatives[0][0] == 60.0
    none = TempoDecision(bpm=None, confidence=None, agreement=None)
    assert with_calibrated_confidence(none, 0.5) == none


def test_reliability_bins() -> None:
    pairs = [(0.55, True), (0.6, False), (0.97, True), (1.0, True)]
    table = reliability(pairs)
    assert [(lo, n) for lo, _, n, _, _ in table] == [(0.5, 2), (0.95, 2)]
    assert table[0][4] == 0.5 and table[1][3] == pytest.approx(0.985)
