"""HTML pages: Jinja2 with autoescape always on, so no text from a dataset or a model can
become markup (a pair holding ``<script>`` shows as those characters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse


class Pages:
    """The templates of ``folder``, rendered to responses."""

    def __init__(self, folder: Path) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)),
                                      autoescape=True, undefined=jinja2.StrictUndefined,
                                      trim_blocks=True, lstrip_blocks=True)

    def render(self, name: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context))
