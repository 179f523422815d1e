"""Requests shared by the backend tests: two schemas interleaved, seed = index."""

from qagen.generate.backends import GenRequest, SamplingConfig
from qagen.records.qa import Caption, QAPairs


def make_request(i: int, *, max_tokens: int = 256, temperature: float = 0.7,
                 user: str | None = None) -> GenRequest:
    """Even i: two QA pairs (QAPairs); odd i: a caption (Caption). Seed = i."""
    output = QAPairs if i % 2 == 0 else Caption
    task = ("Write two short question-answer pairs about its tempo and key."
            if output is QAPairs else "Write a one-sentence caption.")
    content = user or f"A solo piano piece at {90 + 10 * i} BPM in A minor, calm and slow. {task}"
    return GenRequest(
        request_id=f"req{i}",
        messages=[{"role": "system", "content": "You write music QA data as JSON."},
                  {"role": "user", "content": content}],
        json_schema=output.model_json_schema(),
        sampling=SamplingConfig(temperature=temperature, max_tokens=max_tokens),
        seed=i,
    )
