"""A scripted backend for stage tests: answers from the facts in the prompt, misbehaves on cue.

It implements the same Backend protocol as the real backends, so the stage's parsing, retry,
screening, caching and resume logic are exercised exactly; the real backends are tested on
the packaged model in their own files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from qagen.generate.backends import BackendConfig, GenRequest, GenResult, RequestQueue

Misbehave = Callable[[GenRequest, int], str | None]


class ScriptedBackend:
    name = "scripted"
    extra = "test"

    def __init__(
        self, config: BackendConfig | None = None, *, misbehave: Misbehave | None = None
    ) -> None:
        self.config = config or BackendConfig(backend="transformers", model="scripted")
        self.misbehave = misbehave
        self.calls: list[str] = []

    @property
    def model_id(self) -> str:
        return "scripted"

    def close(self) -> None:
        pass

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]:
        """One request at a time through :meth:`generate`, each result yielded as it is made."""
        while len(queue):
            yield from self.generate(queue.take(1))

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for req in requests:
            self.calls.append(req.request_id)
            text = self.misbehave(req, len(self.calls)) if self.misbehave else None
            out.append(
                GenResult(
                    request_id=req.request_id,
                    text=text or answer(req),
                    prompt_tokens=100,
                    completion_tokens=50,
                    finish_reason="stop",
                )
            )
        return out


def facts(req: GenRequest) -> dict:
    user = req.messages[-1]["content"]
    match = re.search(r"\{.*?\n\}", user, flags=re.S)
    return json.loads(match.group(0)) if match else {}


def paraphrase(req: GenRequest) -> str:
    """A rewrite that keeps every fact: the source pair, reworded at the edges."""
    user = req.messages[-1]["content"]
    question = re.findall(r"^Question: (.*)$", user, flags=re.M)[-1]  # the pair, not the example
    answer_ = re.findall(r"^Answer: (.*)$", user, flags=re.M)[-1]
    return json.dumps({"question": f"Listening to this recording: {question[0].lower()}"
                                   f"{question[1:]}",
                       "answer": f"Listening closely, {answer_[0].lower()}{answer_[1:]}"})


def answer(req: GenRequest) -> str:
    f = facts(req)
    props = req.json_schema["properties"]
    if set(props) == {"relevance", "faithfulness", "specificity", "fluency"}:
        return json.dumps({"relevance": 4, "faithfulness": 4, "specificity": 3, "fluency": 5})
    if set(props) == {"question", "answer"}:
        return paraphrase(req)
    if "answers" in props:
        n = props["answers"]["minItems"]
        return json.dumps(
            {
                "answers": [
                    f"A {', '.join(f.get('genres', ['musical']))} piece "
                    f"with {', '.join(f.get('instruments', ['instruments']))}."
                    for _ in range(n)
                ]
            }
        )
    if "caption" in props:
        return json.dumps(
            {
                "caption": f"A piece in {f.get('key')} at about {f.get('tempo_bpm')} "
                f"BPM in {f.get('meter')} time, with a steady pulse."
            }
        )
    kinds = req.json_schema["$defs"]["QAItem"]["properties"]["kind"]["enum"]
    n = props["pairs"]["minItems"]
    templates = {
        "tempo": (
            "What is the tempo of this piece?",
            f"It moves at about {f.get('tempo_bpm')} BPM.",
        ),
        "key": ("What key is the music in?", f"It is in {f.get('key')}."),
        "rhythm": ("How many beats are in each bar?", f"The meter is {f.get('meter')}."),
        "harmony": ("Which chords are used?", f"The chords are {', '.join(f.get('chords', []))}."),
        "mood": ("What mood does the music convey?", "It feels calm and warm overall."),
        "instrumentation": ("Which instruments can be heard?", "A piano and a bass are heard."),
        "genre": ("What style is this music?", "It sounds like a relaxed pop piece."),
        "reasoning": ("Where could this music be played?", "It would suit a quiet cafe scene."),
        "structure": ("How is the piece organised?", "It repeats a short chord cycle."),
    }
    pairs = [
        {"question": templates[k][0], "answer": templates[k][1], "kind": k}
        for k in kinds
        if k in templates
    ][:n]
    return json.dumps({"pairs": pairs})
