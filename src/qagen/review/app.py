"""The review web app's routes: clip list, clip page, the clip window's audio, decisions.

Safe by default: only the ``Host`` names given are served (no DNS rebinding), every page is
rendered by Jinja2 with autoescape and served with a Content-Security-Policy that allows no
inline script, the audio is read only through ``safe_join`` under the source's dataset root,
and decisions are posted as JSON only (a cross-site form cannot send it) and validated.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from qagen.decisions import DecisionConflictError, PairReview, append_decision
from qagen.errors import UnsafePathError
from qagen.records.review import ReviewDecision, ReviewRecord
from qagen.review.catalog import Catalog, ClipView, PairView
from qagen.review.clip_audio import AudioUnavailableError, WindowCache, byte_range
from qagen.review.filters import PairFilter
from qagen.review.pages import Pages
from qagen.review.timeline import build_timeline
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
#: Reasons offered when rejecting (free text is accepted too).
REJECT_REASONS = ("wrong fact", "does not answer", "not about this clip", "vague",
                  "leaks metadata", "bad language", "duplicate")


class DecisionRequest(BaseModel):
    """A decision as the page posts it. ``content_hash`` and ``base_id`` are what the page
    loaded: the pair's text hash and the latest decision it showed (None: none)."""

    model_config = ConfigDict(extra="forbid")
    decision: ReviewDecision
    content_hash: str = Field(min_length=1, max_length=64)
    base_id: str | None = Field(default=None, max_length=64)
    reason: str | None = None
    question: str | None = None
    answer: str | None = None
    reviewer: str | None = None


def review_json(review: PairReview | None) -> dict[str, object] | None:
    """A pair's review state for the page's script."""
    if review is None:
        return None
    return {**review.latest.model_dump(mode="json"), "stale": review.stale}


def _error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


def create_app(work: WorkDir, *, reviewer: str,
               allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> FastAPI:
    """The app for one work dir; decisions are signed ``reviewer`` unless a post names one."""
    catalog = Catalog(work)
    audio = WindowCache(catalog.roots)
    pages = Pages(HERE / "templates")
    app = FastAPI(title="qagen review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"invalid request: {where + ': ' if where else ''}"
                      f"{first.get('msg', 'malformed')}")

    def progress(reviews: dict[str, PairReview], pairs: list[PairView]) -> dict[str, int]:
        done = sum(1 for p in pairs if (r := reviews.get(p.pair_id)) and r.applied)
        return {"reviewed": done, "total": len(pairs)}

    def listed(flt: PairFilter, reviews: dict[str, PairReview]) -> list[tuple[ClipView, int]]:
        out = []
        for clip in catalog.clips.values():
            if not flt.clip_matches(clip):
                continue
            n = sum(1 for p in clip.pairs if flt.pair_matches(p, reviews.get(p.pair_id)))
            if n:
                out.append((clip, n))
        return out

    def choices() -> dict[str, list[str]]:
        clips, pairs = catalog.clips.values(), catalog.pairs.values()
        return {"source": sorted({c.clip.source for c in clips}),
                "split": sorted({c.split for c in clips}),
                "kind": sorted({p.kind for p in pairs if p.kind}),
                "status": ["accepted", "rejected"],
                "reason": sorted({p.reason for p in pairs if p.reason})}

    def read_filter(request: Request) -> PairFilter:
        params = {k: v for k, v in request.query_params.items() if v != ""}
        return PairFilter.model_validate(params)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        try:
            flt = read_filter(request)
        except ValidationError as exc:
            return _error(422, f"invalid filter: {exc.errors()[0]['msg']}")
        reviews = catalog.reviews()
        rows = listed(flt, reviews)
        return pages.render("index.html", filter=flt, query=flt.query(), rows=rows,
                            choices=choices(), reviews=reviews,
                            progress=progress(reviews, list(catalog.pairs.values())),
                            clip_progress=lambda c: progress(reviews, c.pairs))

    @app.get("/clips/{clip_id}", response_class=HTMLResponse)
    def clip_page(clip_id: str, request: Request) -> Response:
        clip = catalog.clips.get(clip_id)
        if clip is None:
            return _error(404, f"no clip {clip_id!r} in {work.root}")
        try:
            flt = read_filter(request)
        except ValidationError as exc:
            return _error(422, f"invalid filter: {exc.errors()[0]['msg']}")
        reviews = catalog.reviews()
        order = [c.clip.clip_id for c, _ in listed(flt, reviews)] or [clip_id]
        at = order.index(clip_id) if clip_id in order else -1
        audio_error = None
        try:
            _, y, sr = audio.get(clip.clip)
        except (UnsafePathError, AudioUnavailableError) as exc:
            audio_error, y, sr = str(exc), None, 1
        clip_reviews = catalog.reviews_of(clip)
        return pages.render(
            "clip.html", view=clip, clip=clip.clip, features=clip.features, query=flt.query(),
            timeline=build_timeline(y, sr=sr, features=clip.features,
                                    duration_s=(clip.clip.end_s or 0) - clip.clip.start_s),
            audio_error=audio_error, reviews=clip_reviews,
            prev_id=order[at - 1] if at > 0 else None,
            next_id=order[at + 1] if 0 <= at < len(order) - 1 else None,
            progress=progress(reviews, list(catalog.pairs.values())),
            clip_progress=progress(clip_reviews, clip.pairs), reasons=REJECT_REASONS)

    @app.get("/audio/{clip_id}.wav")
    def clip_wav(clip_id: str, request: Request) -> Response:
        clip = catalog.clips.get(clip_id)
        if clip is None:
            return _error(404, f"no clip {clip_id!r}")
        try:
            data, _, _ = audio.get(clip.clip)
        except UnsafePathError as exc:
            log.warning("review: refused the audio of %s: %s", clip_id, exc)
            return _error(403, f"refused: {exc}")
        except AudioUnavailableError as exc:
            return _error(404, str(exc))
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        try:
            span = byte_range(request.headers.get("range"), len(data))
        except ValueError as exc:
            return Response(str(exc), status_code=416,
                            headers={**headers, "Content-Range": f"bytes */{len(data)}"})
        if span is None:
            return Response(data, media_type="audio/wav", headers=headers)
        first, last = span
        return Response(data[first:last + 1], status_code=206, media_type="audio/wav",
                        headers={**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"})

    @app.get("/api/pairs/{pair_id}")
    def pair_state(pair_id: str) -> Response:
        pair = catalog.pairs.get(pair_id)
        if pair is None:
            return _error(404, f"no pair {pair_id!r}")
        review = catalog.reviews_of(catalog.clips[pair.clip_id]).get(pair_id)
        return JSONResponse({"pair_id": pair_id, "content_hash": pair.content_hash,
                             "review": review_json(review)})

    @app.post("/api/pairs/{pair_id}/decisions", status_code=201)
    async def decide(pair_id: str, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "post decisions as application/json")
        try:
            body = DecisionRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _error(422, f"invalid decision: {where + ': ' if where else ''}{first['msg']}")
        pair = catalog.pairs.get(pair_id)
        if pair is None:
            return _error(404, f"no pair {pair_id!r} in {work.root}")
        if body.content_hash != pair.content_hash:
            return _error(409, "stale: the pair's text changed since the page was loaded; "
                          "reload it and review the new text", kind="stale",
                          content_hash=pair.content_hash)
        try:
            record = ReviewRecord(
                review_id=uuid.uuid4().hex, pair_id=pair_id, clip_id=pair.clip_id,
                reviewer=(body.reviewer or reviewer).strip() or reviewer,
                created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                decision=body.decision, reason=(body.reason or "").strip() or None,
                question=body.question, answer=body.answer, content_hash=body.content_hash,
                base_id=body.base_id)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            return _error(422, f"invalid decision: {msg}")
        try:
            append_decision(work.reviews_shard(pair.shard), record)
        except DecisionConflictError as exc:
            return _error(409, str(exc), kind="conflict",
                          latest=review_json(PairReview(latest=exc.latest, stale=False))
                          if exc.latest else None)
        clip = catalog.clips[pair.clip_id]
        clip_reviews = catalog.reviews_of(clip)
        return JSONResponse(
            {"review": review_json(clip_reviews.get(pair_id)),
             "clip_progress": progress(clip_reviews, clip.pairs),
             "progress": progress(catalog.reviews(), list(catalog.pairs.values()))},
            status_code=201)

    return app
