"""The one error type for people: what went wrong, in words for them, and the HTTP status it answers with.

Raised anywhere in the backend (decoding an upload, building a study, checking a form, a rate limit); the
web app answers it with its status and ``{"detail": ...}`` (one exception handler, ``backend.main``), the
command line prints it as one line and exits with status 2 (``backend.cli``). Nothing re-wraps it on the way.
Free of web-framework imports: the worker service decodes stored images with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping


class UserError(Exception):
    """A request or command that cannot be done as asked; ``detail`` says why, for the person who asked.

    ``status_code`` is the HTTP status a web request gets (4xx); ``headers`` go with it (e.g. Retry-After);
    ``field``: the request field it is about (``image``, ``reference``), so a form can show it there.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None
        self.field = field

    def __str__(self) -> str:
        return self.detail
