"""The quality gate: pairs a curator would not keep, whatever model wrote them.

Why: the leak / junk / grounding screens catch answers that cite the inputs, refuse, or
contradict the measurements. What still got through on the embedded default were pairs that
say nothing: answers that do not answer ("The audio is described in detail"), ask back, drift
off the music ("It is produced and released in the United States"), echo list markers or
JSON, switch language, or are too vague to check. Each rule here is one of those, named by a
reason code; the gate's precision and recall are measured on a hand-labelled set of this
project's own outputs (``tests/generate/data/gate_labels.jsonl``, see ``qagen gate-eval``).

Pure functions: data in, a :class:`Finding` (or None) out.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable

from qagen.claims import GENRE_WORDS, INSTRUMENT_WORDS, MOOD_WORDS
from qagen.generate.grounding import Finding
from qagen.records.qa import GenerateReason, QAItem, QAKind, StatedFacts

_WORD = re.compile(r"[a-zà-ÿ0-9#'/]+", re.I)

# ------------------------------------------------------------------ non-answers

_STOP = frozenset([
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "is", "are", "was",
    "were", "be", "been", "being", "of", "in", "on", "at", "to", "for", "with", "by", "from",
    "and", "or", "as", "what", "which", "who", "how", "why", "when", "where", "does", "do",
    "did", "can", "could", "would", "should", "there", "here", "you", "your", "me", "my", "i",
    "about", "one", "some", "kind", "type", "sort", "so", "very", "song", "track", "piece",
    "music", "clip", "audio", "recording", "sound", "sounds", "tune", "excerpt", "please",
    "describe", "detail", "details", "detailed", "tell", "explain"
])
_EXPLAIN = re.compile(
    r"^\s*(?:why|explain)\b|^\s*how (?:does|do|did|can|could|would|might)\b.*\b(?:suggest|"
    r"relate|affect|contribute|reflect|create|convey|evoke|shape|influence|change|work|build|"
    r"develop|make)\w*", re.I)
_QUESTION_OPENERS = re.compile(
    r"^(?:what|which|who|how|why|when|where|is|are|does|do|did|can|could|would|should)\b", re.I)
_NON_ANSWERS = re.compile(
    r"^(?:it depends|not sure|unknown|n/?a|none|no answer|yes\.?|no\.?|maybe\.?|"
    r"the answer is|answer:|i think so|i don't know|i do not know)\b", re.I)

# ------------------------------------------------------------------ off the music

_OFF_TOPIC = tuple((re.compile(p, re.I), why) for p, why in (
    (r"\breleas(?:e|ed|es|ing)\b", "release"),
    (r"\b(?:united states|u\.s\.a?\.?|america|england|united kingdom|country of origin|"
     r"countries|(?:which|what|a specific|a|the|this|one|from|in|native)\s+country)\b"
     r"(?!\s+(?:music|song|style|genre|ballad|twang|guitar|feel|tune|or|and|,))",
     "country of origin"),
    (r"\b(?:sales|sold|charts?|chart-topping|billboard|streams?|streaming|downloads?|"
     r"copyright|royalt\w+|grammy|award\w*|popularity|fans?|audience|concerts?|tour\w*)\b",
     "sales, charts or audience"),
    (r"\b(?:visuals?|video|videos|scenery|imagery|picture|painting|film|movie|story|"
     r"storyline|plot|characters|main character|narrative)\b", "visuals or stories"),
    (r"\b(?:producers?|produced by|record(?:ing)? (?:company|studio|label)|released by|"
     r"recorded (?:in|at|by)|mixing engineer|engineer)\b", "production or release"),
    (r"\b(?:created|made|written|composed|intended|designed|produced|meant) for\b",
     "the maker's intent, which cannot be heard"),
    (r"\b(?:19|20)\d\d\b|\b\d0s\b", "dates or decades"),
    (r"\b(?:parameters?|settings?|software|plugin|algorithm|computer|program(?:me)?|"
     r"website|app|midi|digital audio|audio processing|recorded using|techniques)\b",
     "technology, not the music"),
    (r"(?:^|[.!?,;]\s*|\b(?:where|when|that|because)\s+)music (?:has|is|can|always|often|"
     r"brings|makes|connects|transcends)\b|\bacross cultures\b|\bmusic in general\b",
     "music in general, not this clip"),
    (r"\b(?:i|i'm|i've|i'd|my|me|myself)\b", "the speaker, not the music (first person)"),
    (r"\b(?:certain|certainty|uncertain|confidence|confident|measured|measurement|"
     r"estimated?|estimator)\b", "the measurement, not the music"),
    (r"\b(?:available|formats?|purchase|buy|price|brand|market)\b", "commerce or formats"),
))
#: A question must point at the clip ("this song", "the audio", "it"), not at music at large.
_ABOUT_THE_CLIP = re.compile(
    r"\b(?:this|the|these)\s+(?:\w+\s+){0,2}?(?:song|music|piece|track|clip|audio|recording|"
    r"tune|excerpt|composition|performance|melody|rhythm|beat|instrumentation|sound|harmony|"
    r"chords?|tempo|key|bass|vocals?|singer|drums?|guitar|piano|instruments?|progression|"
    r"mood|genre|style|meter|arrangement|bars|measures|opening|ending)s?\b"
    r"|\b(?:it|this|you hear|you can hear|is heard|are heard|can be heard|playing|played)\b",
    re.I)

# ------------------------------------------------------------------ format debris

_FORMAT = tuple((re.compile(p, re.I | re.M), why) for p, why in (
    (r"^\s*(?:\d+[.)]|[-*•]|[a-h][.)])\s", "list marker"),
    (r"[{}\[\]<>`|\\]|\*\*|#{2,}", "JSON, markup or code characters"),
    (r"\b(?:question|answer|q|a|description of (?:the )?audio|caption|output|response)\s*:",
     "a field name or template label"),
    (r"https?://|www\.", "a URL"),
    (r"\bthx\b|\bu r\b|\blol\b|\bimo\b|\bbtw\b", "chat slang"),
    (r"\ban?\s+(?:vocals|drums|strings|cymbals|horns|hi-?hats|percussions|keyboards|synths|"
     r"guitars|violins|chords|beats)\b", "an ungrammatical article"),
))

# ------------------------------------------------------------------ language

_ENGLISH = frozenset([
    "the", "a", "an", "is", "are", "was", "were", "be", "it", "this", "that", "of", "and",
    "or", "in", "on", "at", "to", "for", "with", "by", "from", "as", "has", "have", "there",
    "its", "into", "but", "not", "no", "yes", "which", "who", "what", "how", "very", "can",
    "also", "while", "over", "under", "between", "sounds", "song", "music", "plays", "played",
    "playing", "piece", "track", "features", "feel", "tempo", "key"
])
_FOREIGN = frozenset([
    "de", "la", "el", "los", "las", "que", "y", "en", "un", "una", "por", "para", "con", "del",
    "al", "lo", "le", "les", "des", "et", "est", "une", "dans", "pour", "der", "die", "das",
    "und", "ist", "ein", "eine", "nicht", "mit", "il", "di", "che", "per", "della", "delle",
    "da", "não", "uma", "com", "é", "e", "en", "het", "van", "een", "ook", "och", "att", "är"
])

# ------------------------------------------------------------------ specificity

_MUSIC_TERMS = re.compile(
    r"\b(?:\d{2,3}\s*(?:bpm|beats per minute)|[2-9]/[248]|major|minor|chords?|progression|"
    r"key of|tempo|bpm|beats? per bar|waltz|syncopat\w*|downbeat|backbeat|time signature|"
    r"arpeggi\w*|staccato|legato|crescendo|melod\w+|harmon\w+|riff|groove|bassline|bass line|"
    r"strum\w*|plucked|bowed|sustained|distort\w*|reverb|ostinato|cadence|modulat\w*|"
    r"ballad|lullaby)\b", re.I)
_GENERIC = re.compile(
    r"\b(?:emotions?|feelings?|vibes?|atmosphere|experience|beautiful|nice|good|great|"
    r"amazing|interesting|unique|various|different|elements|overall|enjoy\w*)\b", re.I)


#: Players name their instrument: "a guitarist" needs a guitar among what is known.
_PLAYER_INSTRUMENT = {"guitarist": "guitar", "pianist": "piano", "drummer": "drum",
                      "bassist": "bass", "violinist": "violin", "cellist": "cello",
                      "organist": "organ", "trumpeter": "trumpet", "saxophonist": "sax",
                      "flautist": "flute", "flutist": "flute", "harpist": "harp",
                      "singer": "vocal", "vocalist": "vocal", "rapper": "rap"}
_PLAYERS = re.compile(r"\b(?:" + "|".join(_PLAYER_INSTRUMENT) + r")s?\b", re.I)
#: Words for a singing voice: any one known supports the others.
_VOCAL_GROUP = frozenset([
    "vocal", "vocals", "voice", "voices", "singing", "singer", "singers", "sung", "sings",
    "vocalist", "vocalists", "choir", "rap", "rapper", "rapping"
])
#: Counts of performers or instruments: nothing measures them.
_COUNTED = re.compile(r"\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|dozens? of|"
                      r"hundreds? of|thousands? of)\s+(?:different\s+)?(?:drums|guitars|"
                      r"instruments|players|musicians|singers|voices|drummers|guitarists|"
                      r"violins|pianos|members)\b", re.I)
#: Near-synonymous moods: "upbeat" is supported by a clip labelled "cheerful".
_MOOD_GROUPS = tuple(frozenset(s.split()) for s in (
    "cheerful happy joyful upbeat uplifting fun playful bright hopeful triumphant exciting",
    "sad melancholic melancholy somber dark emotional nostalgic tender romantic",
    "calm relaxed relaxing peaceful serene soothing mellow chill gentle soft warm dreamy",
    "energetic exciting intense aggressive epic triumphant angry upbeat",
    "mysterious haunting dreamy tense anxious dark serious",
))
#: Words after which a "mood" word describes a sound, not a mood ("a bright synthesizer").
_TIMBRE_NOUNS = re.compile(r"\s+(?:tone|sound|timbre|chords?|melody|pad|lead|texture|"
                           r"attack|notes?)\b", re.I)
_MOOD_WORD = re.compile(r"\b(?:" + "|".join(sorted(MOOD_WORDS)) + r")\b", re.I)
#: Chord qualities beyond major/minor: named only when a measured chord has them.
_CHORD_QUALITY = re.compile(r"\b(?:diminished|augmented|dominant seventh|major seventh|"
                            r"minor seventh|suspended|sus[24]?)\b", re.I)
_SENTENCE_END = (".", "!", "?", "…")
#: Words a finished sentence does not end on.
_DANGLING = frozenset([
    "a", "an", "the", "of", "to", "and", "or", "with", "in", "on", "for", "by", "at", "from",
    "as", "but", "that", "which", "is", "are", "its", "their", "this"
])
#: A sentence has a verb: the auxiliaries and the verbs answers about music use.
_VERBS = frozenset([
    "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "can", "could",
    "will", "would", "may", "might", "must", "shall", "should", "do", "does", "did", "'s",
    "'re", "play", "plays", "sound", "sounds", "feel", "feels", "move", "moves", "sit", "sits",
    "keep", "keeps", "use", "uses", "feature", "features", "rest", "rests", "include",
    "includes", "go", "goes", "begin", "begins", "end", "ends", "give", "gives", "create",
    "creates", "remain", "remains", "last", "lasts", "carry", "carries", "seem", "seems",
    "come", "comes", "hear", "hears", "heard", "sing", "sings", "sung", "played", "strum",
    "strums", "drive", "drives", "lead", "leads", "open", "opens", "change", "changes",
    "count", "counts"
])


def _has_verb(words: list[str]) -> bool:
    """A known verb, a past participle, or a third-person verb after a subject ("it evokes")."""
    if any(w in _VERBS or (w.endswith("ed") and len(w) > 4) or w.endswith(("'s", "'re"))
           for w in words):
        return True
    return any(a in _SUBJECTS and b.endswith("s") for a, b in itertools.pairwise(words))


_SUBJECTS = frozenset([
    "it", "this", "that", "which", "who", "music", "song", "piece", "track", "tune", "one",
    "he", "she"
])


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text.replace("’", "'"))]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "ly", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP}


def check_non_answer(item: QAItem) -> Finding | None:
    """The answer must answer: not ask back, not restate the question, not dodge."""
    answer = item.answer.strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
    if sentences and sum(s.rstrip().endswith("?") for s in sentences) * 2 >= len(sentences):
        return Finding(GenerateReason.gate_non_answer, "the answer asks questions back")
    if _QUESTION_OPENERS.match(answer) and "?" in answer:
        return Finding(GenerateReason.gate_non_answer, "the answer is a question")
    if _NON_ANSWERS.match(answer) and len(_words(answer)) <= 2:
        return Finding(GenerateReason.gate_non_answer, f"no answer: {answer!r}")
    if _EXPLAIN.search(item.question) and len(_words(answer)) < 8:
        return Finding(GenerateReason.gate_non_answer,
                       "a how/why question answered without an explanation")
    content = _content(answer)
    # A choice ("A, B or C?") is answered by picking from the question's own words.
    choice = re.search(r"\bor\b", item.question, re.I) is not None
    if not choice and content and content <= _content(item.question) | {"describ", "hear"}:
        return Finding(GenerateReason.gate_non_answer, "the answer only restates the question")
    return None


def check_off_topic(item: QAItem) -> Finding | None:
    """Question and answer must stay on what can be heard in this clip."""
    for part, text in (("question", item.question), ("answer", item.answer)):
        for pattern, why in _OFF_TOPIC:
            if m := pattern.search(text):
                return Finding(GenerateReason.gate_off_topic, f"{part} is about {why}: "
                               f"{m.group(0)!r}")
    if item.kind is not QAKind.caption and not _ABOUT_THE_CLIP.search(item.question):
        return Finding(GenerateReason.gate_off_topic,
                       f"the question is not about this clip: {item.question!r}")
    return None


def check_format(item: QAItem) -> Finding | None:
    """No list markers, JSON/markup, template labels, URLs or stutter (a 4-word run said
    three times) in the text."""
    for part, text in (("question", item.question), ("answer", item.answer)):
        for pattern, why in _FORMAT:
            if m := pattern.search(text):
                return Finding(GenerateReason.gate_format, f"{part} has {why}: {m.group(0)!r}")
        words = _words(text)
        grams = Counter(zip(words, words[1:], words[2:], words[3:], strict=False))
        if grams and grams.most_common(1)[0][1] >= 3:
            return Finding(GenerateReason.gate_format, f"{part} repeats itself")
    if re.search(r"[.!?]\s+\S", item.question.strip()):
        return Finding(GenerateReason.gate_format, "the question holds more than one sentence")
    if "\n" in item.answer.strip():
        return Finding(GenerateReason.gate_format, "answer spans several lines")
    answer = item.answer.strip()
    if answer[:1].isalpha() and answer[:1].islower():
        return Finding(GenerateReason.gate_format, "answer does not start a sentence")
    words = _words(answer)
    if answer.rstrip().endswith((",", ";", ":", "-", "–", "—")) or (
            words and words[-1] in _DANGLING and not answer.rstrip().endswith(_SENTENCE_END)):
        return Finding(GenerateReason.gate_format, f"answer breaks off: …{answer[-30:]!r}")
    finished = answer.rstrip("\"')]*").endswith(_SENTENCE_END)
    short = len(words) <= 8 or item.kind not in (QAKind.description, QAKind.caption)
    if (short or not finished) and not _has_verb(words):
        return Finding(GenerateReason.gate_format, f"answer is a fragment, not a sentence: "
                       f"{answer[:40]!r}")
    sentences = [" ".join(_words(s)) for s in re.split(r"(?<=[.!?;])\s+", answer)]
    openings = [" ".join(s.split()[:4]) for s in sentences if len(s.split()) >= 4]
    if len(set(sentences)) < len(sentences) or len(set(openings)) < len(openings):
        return Finding(GenerateReason.gate_format, "answer repeats a sentence")
    return None


def check_language(item: QAItem) -> Finding | None:
    """English only: a foreign-language answer is not what the dataset promises."""
    for part, text in (("question", item.question), ("answer", item.answer)):
        letters = [c for c in text if c.isalpha()]
        if letters and sum(not c.isascii() for c in letters) / len(letters) > 0.15:
            return Finding(GenerateReason.gate_language, f"{part} is not in English (script)")
        words = _words(text)
        foreign = sum(w in _FOREIGN for w in words)
        english = sum(w in _ENGLISH for w in words)
        if foreign >= 2 and foreign > english:
            return Finding(GenerateReason.gate_language, f"{part} is not in English")
    return None


#: Words every music text uses: sharing one with the clip's description says nothing specific.
_GENERIC_MUSIC = frozenset(_stem(w) for w in [
    "tempo", "key", "chord", "chords", "beat", "beats", "rhythm", "rhythmic", "melody",
    "melodic", "harmony", "harmonic", "instrument", "instruments", "instrumental", "mood",
    "genre", "style", "piece", "music", "musical", "song", "track", "sound", "sounds", "play",
    "plays", "played", "playing", "medium", "simple", "steady", "every", "each", "also",
    "note", "notes", "bar", "bars", "time", "part", "short", "long", "slow", "fast", "soft",
    "loud", "over", "under", "with", "while", "throughout", "begins", "ends"
])


def _anchors(clip_words: Iterable[str]) -> set[str]:
    return {_stem(w) for text in clip_words for w in _words(text)
            if w not in _STOP and len(w) > 2} - _GENERIC_MUSIC


def check_vague(item: QAItem, *, clip_words: Iterable[str], claims: int) -> Finding | None:
    """An answer must say something specific about *this* clip that can be checked.

    Specific: a tempo/key/chord/meter claim grounding verified (``claims``), or a word
    shared with what is known of the clip (its labels, caption, measured key and chords).
    Generic praise ("a beautiful piece that evokes emotions") without either is vague.
    """
    if claims > 0:
        return None
    shared = _content(item.answer) & _anchors(clip_words)
    if shared:
        return None
    if _MUSIC_TERMS.search(item.answer) or INSTRUMENT_WORDS.search(item.answer):
        return Finding(GenerateReason.gate_vague,
                       "names music terms but nothing known about this clip")
    why = "generic" if _GENERIC.search(item.answer) else "nothing specific"
    return Finding(GenerateReason.gate_vague, f"{why}: no fact of this clip in the answer")


def check_unsupported(item: QAItem, *, clip_words: Iterable[str]) -> Finding | None:
    """Every instrument, genre, mood and chord quality the answer names (not negated) must be
    supported by something known of the clip: a small model's confident "jazz drummer" or
    "orchestra" on a folk guitar clip is the commonest invented fact grounding cannot see."""
    known = " ".join(clip_words).lower()
    known_stems = _anchors([known])
    tokens = {w for w in _words(known) if len(w) >= 4}
    if m := _COUNTED.search(item.answer):
        return Finding(GenerateReason.gate_unsupported,
                       f"counts performers or instruments, which nothing measures: "
                       f"{m.group(0)!r}")
    for pattern, what in ((INSTRUMENT_WORDS, "instrument"), (_PLAYERS, "player"),
                          (GENRE_WORDS, "genre"), (_MOOD_WORD, "mood"),
                          (_CHORD_QUALITY, "chord quality")):
        for m in pattern.finditer(item.answer):
            before = item.answer[max(0, m.start() - 24):m.start()].lower()
            if re.search(r"\b(?:no|not|without|nor|lacks?|absence of|instead of)\b[\w\s,-]*$",
                         before):
                continue
            word = m.group(0).lower()
            if what == "player":
                word = _PLAYER_INSTRUMENT.get(word.rstrip("s"), word)
            if word in known or _stem(word) in known_stems or word.rstrip("s") in known:
                continue
            if any(word.startswith(k) or k.startswith(word) for k in tokens if len(word) >= 4):
                continue  # "synth" → "synthesizer", "guitars" → "guitar"
            if word in _VOCAL_GROUP and tokens & _VOCAL_GROUP:
                continue  # "a voice" is supported by "male vocal"
            if what == "mood":
                after = item.answer[m.end():]
                if INSTRUMENT_WORDS.match(after.lstrip()) or _TIMBRE_NOUNS.match(after):
                    continue
                if any(word in group and any(re.search(rf"\b{w}\b", known) for w in group)
                       for group in _MOOD_GROUPS):
                    continue
            return Finding(GenerateReason.gate_unsupported,
                           f"names the {what} {m.group(0)!r}, which nothing known of the clip "
                           f"supports")
    return None


_MORE = re.compile(r"\b(?:faster|more|above|over|higher|greater|quicker)\s+than\s+(\d{2,3})|"
                   r"\b(?:above|over)\s+(\d{2,3})\b", re.I)
_LESS = re.compile(r"\b(?:slower|less|below|under|lower|fewer)\s+than\s+(\d{2,3})|"
                   r"\b(?:below|under)\s+(\d{2,3})\b", re.I)
_STATED_BPM = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)", re.I)
_ASKED_MODE = re.compile(r"\b(major|minor)\b", re.I)
_ANSWER_KEY = re.compile(r"\b[A-G](?:#|b|♯|♭)?\s+(major|minor)\b")


def check_consistency(item: QAItem) -> Finding | None:
    """A yes/no answer must agree with the value it states itself: "Is it faster than 100
    BPM?" → "Yes, about 88 BPM" or "Is it in a major key?" → "No, it is in G major"."""
    said = re.match(r"^\W*(yes|no)\b", item.answer, re.I)
    if said is None:
        return None
    yes = said.group(1).lower() == "yes"
    stated = [float(x) for x in _STATED_BPM.findall(item.answer)]
    for pattern, above in ((_MORE, True), (_LESS, False)):
        m = pattern.search(item.question)
        if m and stated:
            threshold = float(m.group(1) or m.group(2))
            value = next((v for v in stated if abs(v - threshold) > 1e-9), stated[0])
            truth = value > threshold if above else value < threshold
            if truth != yes:
                return Finding(GenerateReason.gate_inconsistent,
                               f"answers {said.group(1)!r} but states {value:g} BPM against "
                               f"{threshold:g}")
    asked = _ASKED_MODE.findall(item.question)
    keys = _ANSWER_KEY.findall(item.answer)
    if len(set(asked)) == 1 and keys and ("key" in item.question.lower()):
        truth = keys[0].lower() == asked[0].lower()
        if truth != yes:
            return Finding(GenerateReason.gate_inconsistent,
                           f"answers {said.group(1)!r} to a {asked[0]} key question but names "
                           f"a {keys[0]} key")
    return None


def check_quality(item: QAItem, *, clip_words: Iterable[str], claims: int,
                  facts: StatedFacts | None = None) -> Finding | None:
    """All gate rules in order; the first failure names the reason.

    Pairs that carry stated facts (facts pairs and their paraphrases) skip the specificity
    rule: their facts are verified separately, one by one.
    """
    clip_words = list(clip_words)
    if facts is not None and (facts.caption or facts.aspects):
        # A person's own words (a MusicCaps caption or aspect list): it may mention a movie
        # scene or an audience and repeat itself; only language and non-answers are checked.
        return check_language(item) or check_non_answer(item)
    for check in (check_language(item), check_format(item), check_non_answer(item),
                  check_off_topic(item), check_consistency(item),
                  check_unsupported(item, clip_words=clip_words)):
        if check is not None:
            return check
    if facts is not None and not facts.is_empty():
        return None
    return check_vague(item, clip_words=clip_words, claims=claims)
