"""Prompt templates: ``prompts/<id>.j2`` with YAML front matter, rendered with Jinja2.

A template is data, not code: adding a family is adding a file. Each record stores the
template's id, version and content hash, so a dataset can always say which prompt made it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qagen.errors import ConfigError
from qagen.generate.bounds import max_json_chars
from qagen.records.qa import OUTPUT_MODELS, QAKind

FRONT_MATTER = "---"
#: Tokens beyond the schema's character bound: end-of-sequence and tokenizer slack.
BUDGET_MARGIN = 8


class TemplateMeta(BaseModel):
    """The front matter of a template file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str
    description: str = ""
    kinds: list[QAKind] = Field(min_length=1)
    requires: list[str] = Field(
        default_factory=list, description="ClipFeatures fields that must be set (else rejected)."
    )
    requires_labels: bool = Field(
        default=False, description="The clip must carry a caption, aspects or tags."
    )
    output: str
    mode: Literal["clip", "paraphrase", "judge"] = Field(
        default="clip", description="clip: one request per clip; paraphrase: one per facts "
        "pair chosen for rewriting; judge: scores accepted pairs (not a family).")
    n_pairs: int = Field(default=1, ge=1, le=12)
    questions: list[str] = Field(default_factory=list, description="Fixed questions, in order.")
    question: str | None = Field(default=None, description="Fixed question of a Caption family.")
    system: str
    max_tokens: int | None = Field(
        default=None, description="Completion budget; default: the schema's length bound."
    )
    max_question_chars: int = Field(default=200, ge=8, le=1000)
    max_answer_chars: int = Field(
        default=400, ge=20, le=1000,
        description="maxLength of each answer/caption string. Bounds the output, so the budget "
        "can cover it (≤1000: llama.cpp's grammar converter drops larger bounds).",
    )

    @field_validator("output")
    @classmethod
    def _known_output(cls, v: str) -> str:
        if v not in OUTPUT_MODELS:
            raise ValueError(f"unknown output model {v!r}; known: {sorted(OUTPUT_MODELS)}")
        return v


class Template(BaseModel):
    """A loaded template: metadata, Jinja body, and the hash of the file's bytes."""

    model_config = ConfigDict(frozen=True)
    meta: TemplateMeta
    body: str
    content_hash: str
    path: str

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of the output, tightened to this template (counts, kinds)."""
        meta = self.meta
        schema = OUTPUT_MODELS[meta.output].model_json_schema()
        if meta.output == "QAPairs":
            schema["properties"]["pairs"]["minItems"] = meta.n_pairs
            schema["properties"]["pairs"]["maxItems"] = meta.n_pairs
            item = schema["$defs"]["QAItem"]["properties"]
            item["kind"] = {"type": "string", "enum": [k.value for k in meta.kinds]}
            item["question"]["maxLength"] = meta.max_question_chars
            item["answer"]["maxLength"] = meta.max_answer_chars
            schema["$defs"].pop("QAKind", None)
        elif meta.output == "FixedAnswers":
            n = len(meta.questions)
            schema["properties"]["answers"]["minItems"] = n
            schema["properties"]["answers"]["maxItems"] = n
            schema["properties"]["answers"]["items"]["maxLength"] = meta.max_answer_chars
        elif meta.output == "Caption":
            schema["properties"]["caption"]["maxLength"] = meta.max_answer_chars
        elif meta.output == "Paraphrase":
            schema["properties"]["question"]["maxLength"] = meta.max_question_chars
            schema["properties"]["answer"]["maxLength"] = meta.max_answer_chars
        return schema

    def answer_limit(self) -> int:
        """maxLength of this template's answer strings (an answer this long was cut off)."""
        return self.meta.max_answer_chars

    def output_token_bound(self) -> int:
        """A completion budget no valid output can exceed (see ``qagen.generate.bounds``)."""
        chars = max_json_chars(self.json_schema())
        if chars is None:  # cannot happen for the built-in output models; a guard for new ones
            raise ConfigError(f"template {self.meta.id}: output schema has no length bound")
        return chars + BUDGET_MARGIN


def load_template(path: Path) -> Template:
    """Parse one template file.

    Raises
    ------
    ConfigError
        When the front matter is missing or invalid (the message names the file).
    """
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    if not text.startswith(FRONT_MATTER):
        raise ConfigError(f"{path}: a template starts with '---' YAML front matter")
    try:
        _, header, body = text.split(FRONT_MATTER + "\n", 2)
        meta = TemplateMeta.model_validate(yaml.safe_load(header))
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: bad front matter: {exc}") from exc
    if meta.output == "FixedAnswers" and not meta.questions:
        raise ConfigError(f"{path}: output FixedAnswers needs a 'questions' list")
    if meta.output == "Caption" and not meta.question:
        raise ConfigError(f"{path}: output Caption needs a 'question'")
    return Template(meta=meta, body=body, content_hash=hashlib.sha256(raw).hexdigest()[:16],
                    path=str(path))


def default_prompts_dir() -> Path:
    """``prompts/`` of the repository (or ``QAGEN_PROMPTS`` when set by the user)."""
    import os

    env = os.environ.get("QAGEN_PROMPTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "prompts"


def load_templates(folder: Path | None = None, *, ids: list[str] | None = None) -> list[Template]:
    """Load every ``*.j2`` template (or those named by ``ids``), sorted by id.

    Raises
    ------
    ConfigError
        For a missing folder, duplicate ids, or ids that do not exist.
    """
    folder = folder or default_prompts_dir()
    if not folder.is_dir():
        raise ConfigError(f"prompt folder not found: {folder} (set QAGEN_PROMPTS)")
    templates = [load_template(p) for p in sorted(folder.glob("*.j2"))]
    by_id: dict[str, Template] = {}
    for t in templates:
        if t.meta.id in by_id:
            raise ConfigError(f"two templates with id {t.meta.id!r}: {by_id[t.meta.id].path}, "
                              f"{t.path}")
        by_id[t.meta.id] = t
    if ids is not None:
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ConfigError(f"unknown template ids {unknown}; known: {sorted(by_id)}")
        return [by_id[i] for i in ids]
    return [by_id[i] for i in sorted(by_id)]


def render_messages(template: Template, context: dict[str, Any]) -> list[dict[str, str]]:
    """System + user chat messages for one clip (StrictUndefined: a typo fails loudly)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                             autoescape=False)  # plain text prompts, not HTML
    ctx = {**context, "meta": template.meta.model_dump(mode="json")}
    user = env.from_string(template.body).render(**ctx).strip()
    system = env.from_string(template.meta.system).render(**ctx).strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
