"""The pages' CSS, JS and images (frontend/static), addressed by their content so browsers keep them.

Templates link an asset as ``static_url("app.css")`` → ``/static/app.css?v=<hash of its content>``. A request
that names the asset's current hash gets ``Cache-Control: public, max-age=31536000, immutable``: a browser
fetches each version once and a page view asks for none of them again (without it, every page view
revalidated each asset: a 304 round trip per file). A new release changes the hash, so no browser runs new
pages against an old script. Any other request (no ``v``, or another version's) gets ``no-cache``: the file
is revalidated with its ETag every time.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "frontend" / "static"
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@lru_cache(maxsize=256)
def _content_hash(path: Path, mtime_ns: int, size: int) -> str:
    """The first 12 hex digits of the file's SHA-256; keyed by mtime and size too, so an edited file (a
    developer's) gets a new version without a restart."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_version(name: str) -> str | None:
    """The current version of ``frontend/static/<name>``; None when there is no such file."""
    path = STATIC_DIR / name
    try:
        stat = path.stat()
    except OSError:
        return None
    return _content_hash(path, stat.st_mtime_ns, stat.st_size)


def static_url(name: str) -> str:
    """``/static/<name>?v=<version>`` (a template's link to an asset)."""
    version = asset_version(name)
    if version is None:
        raise ValueError(f"no static file {name!r}")  # a template naming a missing file: caught by the tests
    return f"/static/{name}?v={version}"


class VersionedStaticFiles(StaticFiles):
    """Starlette's static files with the caching above."""

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[-1]
        current = (
            _content_hash(Path(full_path), stat_result.st_mtime_ns, stat_result.st_size) if asked else ""
        )
        response.headers["Cache-Control"] = FOREVER if asked and asked == current else REVALIDATE
        return response
