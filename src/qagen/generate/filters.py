"""Leak, junk and near-duplicate filters for generated pairs.

Why: grounding catches answers that contradict the audio; these filters catch pairs that are
not about the audio at all. A *leak* talks about the inputs the LLM was shown (tags, captions,
files, the artist's name) instead of the music; *junk* is a refusal, a model talking about
itself, a non-answer or a phrase from the banned list; a *near duplicate* repeats a question
already kept for the same clip. All three would teach a listening model to recite metadata or to
refuse, so they are dropped and recorded with reason ``leak``, ``junk`` or ``near_duplicate``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from qagen.generate.grounding import Finding
from qagen.records.clip import Clip
from qagen.records.qa import GenerateReason, QAItem, QAKind

#: How a finished sentence ends (closing quotes/brackets after the stop are fine).
_SENTENCE_ENDS = tuple(".!?…\"')]")

#: Package resource holding the default banned phrases.
BANNED_PHRASES_RESOURCE = "banned_phrases.txt"

#: Answers only: a captioning instruction may legitimately ask for "a caption".
_CAPTION = re.compile(r"\bcaption(?:s|ed)?\b", re.I)
_LEAK_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), why) for p, why in (
        (r"\bmeta[- ]?data\b", "mentions metadata"),
        (r"\btag(?:s|ged)?\b", "mentions tags"),
        (r"\blabel(?:s|ed|led|ling|ing)?\b", "mentions labels"),
        (r"\bthe (?:audio |sound |music )?file\b|\bfile ?names?\b", "mentions the file"),
        (r"\.(?:mp3|wav|flac|ogg|m4a|aiff?)\b", "mentions an audio file name"),
        (r"\bjson\b", "mentions JSON"),
        (r"\baccording to the (?:given |provided )?(?:description|data|information|details|"
         r"text|annotations?|metadata|tags?|captions?|labels?)\b", "cites the provided data"),
        (r"\b(?:given|provided|above) (?:description|information|data|text|details)\b",
         "cites the provided data"),
        (r"\b(?:description|information|data|details) (?:provided|given)\b",
         "cites the provided data"),
        (r"\bdata ?sets?\b", "mentions the dataset"),
        (r"\bannotat\w*", "mentions annotations"),
    )
)
#: Titles/artists too generic to be a leak when they occur in text about music.
_GENERIC_NAMES = frozenset({
    "intro", "outro", "untitled", "interlude", "track", "theme", "song", "prelude", "overture",
    "unknown", "various", "various artists", "none", "n/a", "demo", "music", "live", "remix",
    "piano", "guitar", "blues", "jazz", "rock",
})
_MIN_NAME_CHARS = 4

_REFUSALS = re.compile(
    r"\bas an? (?:ai|artificial intelligence)\b|\blanguage model\b"
    r"|\bi (?:cannot|can ?not|can't|am unable to|'m unable to) (?:hear|listen)\b"
    r"|\bi(?:'m| am) sorry\b|\bwithout (?:listening|hearing)\b|\bunable to\b"
    r"|\bi (?:do not|don't) have (?:access|the ability)\b",
    re.I,
)
_IMPERATIVES = frozenset({
    "describe", "explain", "tell", "identify", "name", "list", "characterize", "characterise",
    "summarize", "summarise", "give", "provide", "write", "compare", "analyze", "analyse",
    "discuss", "estimate", "classify", "determine", "suggest", "rate", "count", "comment",
    "outline", "detail", "state", "share", "imagine", "recommend", "guess", "infer", "predict",
    "note", "point", "walk", "break", "evaluate", "assess", "specify", "mention", "find",
    "interpret", "elaborate", "transcribe", "spell",
})
_YES_NO_STARTS = frozenset({
    "is", "are", "does", "do", "did", "can", "could", "would", "was", "were", "has", "have",
    "had", "will", "should", "may", "might", "shall",
})
_INTERROGATIVES = _YES_NO_STARTS | {"what", "which", "who", "whom", "whose", "how", "why", "when",
                                    "where"}
_STOPWORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "is", "are", "was", "were",
    "be", "been", "of", "in", "on", "at", "to", "for", "with", "by", "from", "and", "or", "as",
    "what", "which", "who", "how", "why", "when", "where", "does", "do", "did", "can", "could",
    "would", "should", "there", "here", "song", "track", "piece", "music", "clip", "audio",
    "recording", "you", "me", "i", "about", "one", "some", "kind", "type", "sort", "so", "very",
})
_MIN_ANSWER_WORDS = 3
_TOKEN = re.compile(r"[a-z0-9#']+")


def _normalise(text: str) -> str:
    """Lower case, typographic quotes folded, punctuation dropped, whitespace collapsed."""
    text = text.replace("’", "'").replace("‘", "'").lower()
    return " ".join(_TOKEN.findall(text))


def _name_pattern(name: str) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive pattern of a title/artist/album; None when too generic."""
    clean = " ".join(name.split())
    if len(clean) < _MIN_NAME_CHARS or clean.lower() in _GENERIC_NAMES:
        return None
    words = (re.escape(w) for w in clean.split())
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.I)


def check_leak(item: QAItem, *, clip: Clip) -> Finding | None:
    """Reject pairs that talk about the inputs instead of the music.

    Catches mentions of metadata, tags, captions (in answers: an instruction may ask for a
    caption), (dataset) labels, files, JSON, "according to
    the description/data", datasets and annotations, and the clip's own title, artist or album
    (at least 4 characters, generic names like "Intro" excepted), in question or answer.

    Returns
    -------
    Finding | None
        ``leak`` naming what was mentioned, or None.
    """
    if m := _CAPTION.search(item.answer):
        return Finding(GenerateReason.leak, f"answer mentions a caption: {m.group(0)!r}")
    for part, text in (("question", item.question), ("answer", item.answer)):
        for pattern, why in _LEAK_PATTERNS:
            if m := pattern.search(text):
                return Finding(GenerateReason.leak, f"{part} {why}: {m.group(0)!r}")
        for field in ("title", "artist", "album"):
            value = getattr(clip, field)
            pattern = _name_pattern(value) if value else None
            if pattern is not None and pattern.search(text):
                return Finding(GenerateReason.leak, f"{part} names the clip's {field} {value!r}")
    return None


def _is_question_form(question: str) -> bool:
    """Ends with "?", or opens with an imperative ("Describe…", "Please explain…") or an
    interrogative word ("What do you hear in the audio": MU-LLaMA's own questions lack the
    question mark)."""
    stripped = question.strip().rstrip("\"')]* ")
    if stripped.endswith("?"):
        return True
    words = _normalise(question).split()
    if words and words[0] == "please":
        words = words[1:]
    return bool(words) and (words[0] in _IMPERATIVES or words[0] in _INTERROGATIVES)


def _content_words(text: str) -> set[str]:
    return {w for w in _normalise(text).split() if w not in _STOPWORDS}


def _restates_question(question: str, answer: str) -> bool:
    """The answer says nothing the question did not.

    An answer equal to the question always counts. For open questions, so does an answer
    whose content words all occur in the question; yes/no and either/or questions are exempt
    from that rule because "There is a piano." fully answers "Is there a piano?" and "Slow."
    answers "Is it fast or slow?".
    """
    q_norm, a_norm = _normalise(question), _normalise(answer)
    if a_norm == q_norm:
        return True
    words = q_norm.split()
    if (words and words[0] in _YES_NO_STARTS) or "or" in words:
        return False
    return _content_words(answer) <= _content_words(question)


def _banned_hit(text: str, banned: Sequence[str]) -> str | None:
    """First banned phrase occurring in ``text`` as whole words (case and punctuation ignored)."""
    padded = f" {_normalise(text)} "
    for phrase in banned:
        norm = _normalise(phrase)
        if norm and f" {norm} " in padded:
            return phrase
    return None


def check_junk(item: QAItem, *, banned: Sequence[str]) -> Finding | None:
    """Reject refusals, self-talk, non-answers, malformed questions and banned phrases.

    Checks, in order: refusal / "as an AI" / "I cannot hear" / "I'm sorry" / "unable to";
    answers under 3 words; answers restating the question; questions that are neither a
    question ("?") nor an instruction ("Describe…") for every kind but ``caption``; every
    phrase of ``banned`` (see :func:`load_banned_phrases`) in question or answer.

    Returns
    -------
    Finding | None
        ``junk`` naming the rule and the phrase, or None.
    """
    for part, text in (("question", item.question), ("answer", item.answer)):
        if m := _REFUSALS.search(text.replace("’", "'")):
            return Finding(GenerateReason.junk, f"{part} refuses or talks about itself: "
                           f"{m.group(0)!r}")
    if len(_normalise(item.answer).split()) < _MIN_ANSWER_WORDS:
        return Finding(GenerateReason.junk, f"answer too short: {item.answer!r}")
    if _restates_question(item.question, item.answer):
        return Finding(GenerateReason.junk, "answer only restates the question")
    if item.kind != QAKind.caption and not _is_question_form(item.question):
        return Finding(GenerateReason.junk, f"not a question or instruction: {item.question!r}")
    for part, text in (("question", item.question), ("answer", item.answer)):
        if (phrase := _banned_hit(text, banned)) is not None:
            return Finding(GenerateReason.junk, f"{part} has banned phrase {phrase!r}")
    return None


def check_cut_off(item: QAItem, *, limit: int) -> Finding | None:
    """Reject an answer the grammar closed at its ``maxLength`` in mid-sentence.

    Constrained decoding ends a string at its length bound whatever the model was writing;
    such an answer parses but stops mid-thought. One that happens to end a sentence at the
    limit is kept.
    """
    text = item.answer.rstrip()
    if len(item.answer) >= limit and not text.endswith(_SENTENCE_ENDS):
        return Finding(GenerateReason.cut_off, f"answer stops at the {limit}-character limit "
                       f"mid-sentence: …{text[-40:]!r}")
    return None


def load_banned_phrases(path: Path | None = None) -> list[str]:
    """Read the banned phrases: one per line, ``#`` comments and blank lines skipped.

    Parameters
    ----------
    path
        A phrase file; None reads the packaged ``qagen/generate/banned_phrases.txt``.

    Returns
    -------
    list[str]
        Lower-cased phrases in file order, without duplicates.
    """
    if path is None:
        text = resources.files("qagen.generate").joinpath(BANNED_PHRASES_RESOURCE).read_text(
            encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    phrases: dict[str, None] = {}
    for line in text.splitlines():
        phrase = " ".join(line.split("#", 1)[0].split()).lower()
        if phrase:
            phrases.setdefault(phrase, None)
    return list(phrases)


_CONTRACTIONS = (("what's", "what is"), ("it's", "it is"), ("that's", "that is"),
                 ("there's", "there is"), ("n't", " not"), ("'re", " are"), ("'s", ""))
#: Words for "the recording" that do not change what a question asks.
_RECORDING_WORDS = frozenset({"song", "track", "piece", "clip", "tune", "recording", "music",
                              "audio", "excerpt", "composition"})


def _canonical(question: str) -> str:
    """Normalised question with contractions expanded, plural -s dropped and every word for
    "the recording" unified, so that trivial rewordings compare equal."""
    text = _normalise(question)
    for short, long in _CONTRACTIONS:
        text = text.replace(short, long)
    words = []
    for w in text.split():
        if w in _RECORDING_WORDS:
            w = "song"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        words.append(w)
    return " ".join(words)


def _shingles(text: str) -> set[str]:
    """Character 3-grams of the normalised text (word boundaries kept as spaces)."""
    padded = f" {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def question_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1]: the larger of token-set and character-3-gram Jaccard.

    Why both: token sets ignore word order ("What is the tempo of this song" vs "Of this song,
    what is the tempo"); 3-grams forgive small edits and typos. Both compare canonical text
    (contractions expanded, plurals and "song"/"track"/"piece" unified).
    """
    na, nb = _canonical(a), _canonical(b)
    return max(_jaccard(set(na.split()), set(nb.split())), _jaccard(_shingles(na), _shingles(nb)))


def near_duplicate_indices(questions: Sequence[str], *, threshold: float = 0.85) -> set[int]:
    """Indices of questions that near-duplicate an earlier *kept* question of the same clip.

    Comparing against kept questions only means a chain A, A′, A″ drops A′ but keeps A″ when
    A″ is not itself close to A. Quadratic, which is fine for the ~10 questions of one clip.

    Parameters
    ----------
    questions
        The clip's questions in generation order.
    threshold
        Minimum :func:`question_similarity` for a duplicate.
    """
    kept: list[str] = []
    dropped: set[int] = set()
    for i, question in enumerate(questions):
        if any(question_similarity(question, k) >= threshold for k in kept):
            dropped.add(i)
        else:
            kept.append(question)
    return dropped


#: What the answer of each kind must talk about, so a pair labelled "key"
#: that only speaks of tempo — or of nothing musical at all — is not filed under the kind.
_KIND_VOCABULARY: dict[QAKind, re.Pattern[str]] = {
    kind: re.compile(pattern, re.I) for kind, pattern in {
        QAKind.tempo: r"\btempo|\bbpm\b|beats? per minute|\bpace\b|\bspeed\b|\bfast|\bslow"
                      r"|\bquick|\bbrisk|\bleisurely",
        QAKind.rhythm: r"\brhythm|\bbeats?\b|\bmeter\b|\bmetre\b|\btime signature|\bbars?\b"
                       r"|\bmeasures?\b|\bwaltz|\bgroove|\bsyncopat|\bdownbeat|\b\d/\d\b|\bpulse",
        QAKind.key: r"\bkey\b|\bmajor\b|\bminor\b|\btonic|\btonal|\bscale\b|\bmode\b",
        QAKind.harmony: r"\bchords?\b|\bharmon|\bprogression|\bcadence|\bmajor\b|\bminor\b"
                        r"|\btriads?\b",
        QAKind.instrumentation: r"\binstrument|\bpiano|\bguitar|\bdrum|\bbass\b|\bstrings?\b"
                                r"|\borgan|\bsynth|\bviolin|\bcello|\bviola|\bvocal|\bvoice"
                                r"|\bhorn|\bflute|\bsax|\btrumpet|\bpercussion|\bkeyboard"
                                r"|\bensemble|\borchestra|\bplayed\b|\bplays\b|\bsing"
                                r"|\btrombone|\btuba|\bharp|\baccordion|\bbanjo|\bmandolin"
                                r"|\bukulele|\bsitar|\btabla|\bmarimba|\bxylophone|\bvibraphone"
                                r"|\bglockenspiel|\bbells?\b|\bchoir|\bquartet|\bbrass|\bwoodwind"
                                r"|\bclarinet|\boboe|\bbassoon|\bharmonica|\bcymbal|\bhi-?hat"
                                r"|\bsnare|\bkick|\b808\b|\bsampler|\bbeatbox|\bfiddle|\bwhistl"
                                r"|\btrio\b|\bband\b|\bcan be heard\b",
    }.items()
}
#: Words that show a question is about the sound at all (for kinds without a vocabulary).
_MUSIC_WORDS = re.compile(
    r"\bmusic|\bsong|\bpiece\b|\btrack\b|\bclip\b|\baudio|\bsound|\bhear|\blisten|\bplay"
    r"|\binstrument|\bmelod|\brhythm|\bbeat|\btempo|\bchord|\bkey\b|\bmood|\bfeel|\bstyle"
    r"|\bgenre|\bdance|\bscene|\bsuit|\bcompos|\bperform|\bnote|\bharmon|\bdrum|\bguitar"
    r"|\bpiano|\bvocal|\bsing", re.I)


def check_kind(item: QAItem) -> Finding | None:
    """A pair must be about its kind (and about the music at all).

    Returns
    -------
    Finding | None
        ``kind_mismatch`` naming the kind, or None.
    """
    pattern = _KIND_VOCABULARY.get(item.kind)
    # The answer must carry it: "What is the key to understanding?" names no key.
    if pattern is not None and not pattern.search(item.answer):
        return Finding(GenerateReason.kind_mismatch,
                       f"a {item.kind.value} pair that says nothing about {item.kind.value}")
    if pattern is None and not _MUSIC_WORDS.search(item.question):
        return Finding(GenerateReason.kind_mismatch,
                       f"question is not about the music: {item.question!r}")
    return None
