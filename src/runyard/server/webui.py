"""The web UI: the single-page app built from ``web/`` into ``runyard/server/webui``.

``make demo`` and ``make test`` build it (``npm ci && npm run build`` in ``web/``). Its pages
are plain paths (``/``, ``/experiments/{id}``, ``/runs/{id}``, ``/launch``, ``/cluster``,
``/signin``): each answers the app's ``index.html``, and the app reads the path. Hashed assets
under ``/assets/`` are cached for a year; ``index.html`` never is, so a new build shows at the
next load. Without a build, those pages answer 503 with the command that builds it.

Every page carries a Content-Security-Policy that allows only this origin's scripts: user
text (run names, notes, log lines) is rendered by React as text, and even a slip could not
load a script from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["PAGES", "WEBUI_DIR", "install_webui"]

WEBUI_DIR = Path(__file__).parent / "webui"

PAGES = (
    "/",
    "/signin",
    "/projects",
    "/experiments/{_id}",
    "/runs/{_id}",
    "/sweeps/{_id}",
    "/pipelines/{_id}",
    "/launch",
    "/cluster",
)

# uPlot and React set style attributes: styles may be inline, scripts never
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Runyard</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>Runyard's web UI is not built</h1>
<p>Build it once from the repository with <code>make web</code> (needs Node 20 and npm), or
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, then reload this page.</p>
<p>The REST API works without it: <a href="/docs">/docs</a>.</p></body></html>"""


class _Assets(StaticFiles):
    """Hashed file names: safe to cache for good."""

    async def check_config(self) -> None:
        if Path(str(self.directory)).is_dir():  # not built yet: answer 404s, never fail
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not Path(str(self.directory)).is_dir():
            return Response("web UI not built", status_code=404, media_type="text/plain")
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_webui(app: FastAPI, directory: Path = WEBUI_DIR) -> None:
    """Serve the built app from ``directory`` (checked per request: a build made while the
    server runs shows without a restart)."""
    index = directory / "index.html"

    async def page(request: Request) -> Response:
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/assets", _Assets(directory=directory / "assets", check_dir=False), name="webui-assets")
