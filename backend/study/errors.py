"""The one error type of the study services: what went wrong, for the user, and the HTTP status to answer."""

from __future__ import annotations


class StudyError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
