"""Idempotency keys: an upload sent again after a lost answer gets the first answer, not a second job.

A client sends ``Idempotency-Key: <a random string of its own>`` with POST /colorize, /batches, /compare or
/jobs/{id}/rerun. The first request with a key is recorded as it starts (a row whose primary key is the key
and the client's address, hashed: a key is looked up for that client only) and, once answered, with its
answer. The same key again, with the same request, gets that answer (``Idempotent-Replayed: true``) and
makes nothing; while the first is still being handled it gets 409; with another request (another path or
other fields) 422. A refused request (a 4xx) leaves no record: sent again, it is handled anew. Records are
kept IDEMPOTENCY_HOURS.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData, UploadFile

from backend.db import session_scope
from backend.errors import UserError
from backend.job_lifecycle import IDEMPOTENCY_HOURS, forget_idempotency_keys
from backend.models import IdempotentRequest, utcnow
from backend.web import client_limit_key

HEADER = "Idempotency-Key"
KEY_MAX_CHARS = 255
# A first request still unanswered after this long died with its process (an upload is read, checked and
# queued in seconds; BODY_READ_TIMEOUT bounds a slow body): the same key may then be handled anew.
PENDING_GIVEN_UP = timedelta(minutes=10)
HEADER_DOC = (
    f"A key of your own (e.g. a UUID; at most {KEY_MAX_CHARS} printable characters): the same request sent "
    f"again with it within {IDEMPOTENCY_HOURS} h gets the first answer (`Idempotent-Replayed: true`) and "
    "makes nothing new; 409 while the first is still being handled, 422 with another request."
)


def _fingerprint(path: str, form: FormData) -> str:
    """The request as far as it can be told apart without its bytes: its path, its fields, and each file's
    field, name and size."""
    parts = [path]
    for name, value in sorted(form.multi_items(), key=lambda item: item[0]):
        if isinstance(value, UploadFile):
            parts.append(f"{name}=file:{value.filename}:{value.size}")
        else:
            parts.append(f"{name}={value}")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _claim(scope: str, fingerprint: str) -> Response | None:
    """Record the key as taken; or, when it already is, the earlier answer (or a 409/422)."""
    with session_scope() as session:
        forget_idempotency_keys(session)
        session.add(IdempotentRequest(scope=scope, fingerprint=fingerprint))
        try:
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        earlier = session.get(IdempotentRequest, scope)
        if earlier is None:  # expired and forgotten meanwhile: a fresh start
            session.add(IdempotentRequest(scope=scope, fingerprint=fingerprint))
            session.commit()
            return None
        if earlier.fingerprint != fingerprint:
            raise UserError(
                422, f"this {HEADER} was used for another request: use a new key for a new request"
            )
        if earlier.status_code is None and earlier.created_at < utcnow() - PENDING_GIVEN_UP:
            # its process died before it answered: the key is taken over (not a 409 for a whole day)
            earlier.created_at = utcnow()
            session.commit()
            return None
        if earlier.status_code is None:
            raise UserError(
                409,
                f"a request with this {HEADER} is still being handled; ask again shortly",
                headers={"Retry-After": "2"},
            )
        headers = {"Idempotent-Replayed": "true"}
        if earlier.location:
            headers["Location"] = earlier.location
        return Response(
            earlier.body, status_code=earlier.status_code, headers=headers, media_type="application/json"
        )


def _finish(scope: str, answered: tuple[int, str, str | None] | None) -> None:
    """Record the answer; with none (the request failed), forget the key so it may be sent again."""
    with session_scope() as session:
        if answered is None:
            session.execute(delete(IdempotentRequest).where(IdempotentRequest.scope == scope))
        else:
            status_code, body, location = answered
            session.execute(
                update(IdempotentRequest)
                .where(IdempotentRequest.scope == scope)
                .values(status_code=status_code, body=body, location=location)
            )
        session.commit()


Created = TypeVar("Created", bound=BaseModel)
P = ParamSpec("P")


def replayable(route: Callable[P, Awaitable[Created]]) -> Callable[P, Awaitable[Created | Response]]:
    """An upload route that may be sent again with an Idempotency-Key (it takes ``request`` by name and
    answers 202 with a model whose ``status_url`` is its Location). Without the header, the route as it is;
    with it, a repeat gets the first answer, and a first request is recorded with its answer, or forgotten
    when it fails (sent again, it is handled anew). The route's form is read (FastAPI has parsed it)."""

    @functools.wraps(route)
    async def replaying(*args: P.args, **kwargs: P.kwargs) -> Created | Response:
        request = kwargs["request"]
        assert isinstance(request, Request)
        key = request.headers.get(HEADER)
        if key is None:
            return await route(*args, **kwargs)
        if not key or len(key) > KEY_MAX_CHARS or not key.isprintable() or not key.isascii():
            raise UserError(422, f"{HEADER} must be 1 to {KEY_MAX_CHARS} printable ASCII characters")
        scope = hashlib.sha256(f"{client_limit_key(request)}\0{key}".encode()).hexdigest()
        fingerprint = _fingerprint(request.url.path, await request.form())
        replay = await run_in_threadpool(_claim, scope, fingerprint)
        if replay is not None:
            return replay
        try:
            created = await route(*args, **kwargs)
        except BaseException:
            await run_in_threadpool(_finish, scope, None)
            raise
        answer = (202, created.model_dump_json(), getattr(created, "status_url", None))
        await run_in_threadpool(_finish, scope, answer)
        return created

    return replaying
