"""``/static/<name>``: the pages' own files (the stylesheet; the statistics page's script and the
uPlot chart library with its licence), from ``api/web/static/``.

The files are read once at start-up, so only those shipped are served (no path from the URL reaches
the file system). The layout links them as ``/static/<name>?v=<hash>``; a request with the current
hash may be cached for a year, any other for an hour, and an ``If-None-Match`` with the ETag is
answered 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import falcon

_DIR = Path(__file__).parent / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".txt": "text/plain; charset=utf-8"}
_LONG = "public, max-age=31536000, immutable"
_SHORT = "public, max-age=3600"


@dataclass(frozen=True)
class StaticFile:
    """One shipped file: its bytes, type and content hash."""

    body: bytes
    content_type: str
    version: str


def load_files(directory: Path = _DIR) -> dict[str, StaticFile]:
    """Every file of a known type in ``directory``, by name."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in _TYPES:
            body = path.read_bytes()
            files[path.name] = StaticFile(body, _TYPES[path.suffix],
                                          hashlib.sha256(body).hexdigest()[:12])
    return files


class StaticResource:
    """Serves the loaded files with caching headers."""

    def __init__(self, files: dict[str, StaticFile]) -> None:
        self.files = files

    def url(self, name: str) -> str:
        """The versioned URL the templates link (``static_url('site.css')``)."""
        return f"/static/{name}?v={self.files[name].version}"

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise falcon.HTTPNotFound()
        etag = f'"{found.version}"'
        resp.set_header("ETag", etag)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.cache_control = [_LONG if req.get_param("v") == found.version else _SHORT]
        if etag in (req.get_header("If-None-Match") or ""):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = found.content_type
        resp.data = found.body

    on_head = on_get


SITE_NAME = "ipernity-compatible API"
STATIC = StaticResource(load_files())  # read once, at import


def layout_globals() -> dict[str, object]:
    """What templates/layout.html needs from every page's environment (pages.Pages adds it)."""
    return {"static_url": STATIC.url, "site_name": SITE_NAME}


def add_routes(app: falcon.App, pages: object = None) -> None:
    """Mount ``/static/<name>``."""
    app.add_route("/static/{name}", STATIC)
