"""Run the review app with uvicorn, bound to the loopback interface only."""

from __future__ import annotations

import getpass
import logging
import os

from qagen.errors import ConfigError
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def default_reviewer() -> str:
    """Who signs decisions when ``--reviewer`` is not given: ``QAGEN_REVIEWER``, else the
    login name."""
    try:
        return os.environ.get("QAGEN_REVIEWER") or getpass.getuser()
    except (KeyError, OSError):
        return "curator"


def serve(work: WorkDir, *, port: int = 8765, reviewer: str | None = None) -> None:
    """Serve the review app for ``work`` on http://127.0.0.1:``port`` until interrupted.

    Raises
    ------
    ConfigError
        The work dir has no clip manifest.
    """
    import uvicorn

    from qagen.review.app import create_app

    if not work.manifest_shards("clips"):
        raise ConfigError(f"no clip manifest in {work.root}; run `qagen ingest` (and generate) "
                          "first")
    app = create_app(work, reviewer=reviewer or default_reviewer())
    log.info("review: http://%s:%d/ (decisions → %s)", HOST, port, work.reviews)
    uvicorn.run(app, host=HOST, port=port, log_level="warning")
