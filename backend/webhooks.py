"""Webhooks: a URL given with a job or a batch is called (POST, JSON) once it has finished.

    job (or a batch's last photo) finishes ──same transaction──> WebhookDelivery "pending" (the outbox)
    worker's delivery loop: claim what is due ──> POST ──> delivered (2xx) | retried later | failed

The call owed is written in the same transaction as the state change it reports (:func:`owe`, called by
``backend.job_lifecycle``), so a crash can delay a call but never lose it; calls are at least once (a
worker that dies between the receiver's answer and recording it calls again): receivers de-duplicate on the
``webhook-id`` header, the same for every attempt of one call. The calls follow Standard Webhooks
(https://www.standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp`` and, with WEBHOOK_SECRET,
``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``). Failed calls are retried
after :data:`RETRY_AFTER_SECONDS`, then given up; 410 Gone gives up at once. Redirects are not followed.

Unless WEBHOOK_ALLOW_PRIVATE (default: in development only), a URL whose host resolves to a loopback,
private, link-local or otherwise non-public address is refused, and the call connects to the address that
was checked (a name that resolves differently a moment later cannot redirect it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import rowcount, session_scope
from backend.errors import UserError
from backend.models import (
    FINISHED_STATUSES,
    Batch,
    Job,
    WebhookDelivery,
    WebhookState,
    new_id,
    utcnow,
)
from backend.schemas import batch_out, job_out

log = logging.getLogger("colorlab.webhooks")

JOB_FINISHED = "job.finished"
BATCH_FINISHED = "batch.finished"
# Waits before the 2nd, 3rd, ... attempt: about 11 hours in all, then the call is given up.
RETRY_AFTER_SECONDS = (5, 30, 120, 600, 1800, 3600, 10800, 21600)
MAX_ATTEMPTS = len(RETRY_AFTER_SECONDS) + 1
URL_MAX_CHARS = 2048
CALLS_AT_ONCE = 4  # a worker's calls in flight (and claimed: a round is one call's time)
# What percent-encoding leaves of a path or query: every ASCII character a URL may hold as it is, so that
# only non-ASCII text (an IRI's) is encoded and an already encoded URL stays byte for byte.
_URL_SAFE = "/?#[]@!$&'()*+,;=:%-._~"
USER_AGENT = "ColorLab-Webhooks/1"


# -- the URL a client gives --------------------------------------------------------------------------------
def check_url(url: str, settings: Settings) -> str:
    """The webhook URL of a request, checked (422 when it cannot be called): http(s), a host, no
    credentials, and a public address unless WEBHOOK_ALLOW_PRIVATE; names are resolved only when called."""
    url = url.strip()
    if settings.environment == "production" and not settings.webhook_secret.get_secret_value():
        raise UserError(422, "webhooks are off on this server: it has no WEBHOOK_SECRET to sign them with")
    if len(url) > URL_MAX_CHARS:  # before parsing; checked again once encoded (an é is 6 characters then)
        raise UserError(422, f"the webhook URL is {len(url):,} characters; at most {URL_MAX_CHARS:,}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UserError(422, "the webhook URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise UserError(422, "the webhook is not a URL, e.g. https://example.org/hook") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(422, "the webhook must be an http:// or https:// URL, e.g. https://example.org/hook")
    try:
        port = parts.port
    except ValueError:
        raise UserError(422, "the webhook URL's port is not a number from 1 to 65535") from None
    if not parts.hostname or port == 0:
        raise UserError(422, "the webhook URL has no host (or port 0)")
    if parts.username is not None or parts.password is not None:
        raise UserError(
            422,
            "the webhook URL holds a user name or password, which is never sent: put a token in its "
            "path or query instead (and check the webhook-signature header)",
        )
    if not url.isascii():
        url = _ascii_url(parts.scheme, parts.hostname, port, parts.path, parts.query)
        parts = urlsplit(url)
        if len(url) > URL_MAX_CHARS:
            raise UserError(
                422,
                f"the webhook URL is {len(url):,} characters once encoded for sending (each non-ASCII letter "
                f"takes 6 to 12); at most {URL_MAX_CHARS:,}",
            )
    if not settings.webhooks_reach_private and not _public_name(parts.hostname or ""):
        raise UserError(
            422,
            f"the webhook's host {parts.hostname!r} is not a public address (this server calls only "
            "public ones: WEBHOOK_ALLOW_PRIVATE)",
        )
    return url


def _ascii_url(scheme: str, host: str, port: int | None, path: str, query: str) -> str:
    """An IRI (``https://bücher.example/hoök?q=é``) as the URL it stands for: the host in IDNA, the path and
    query percent-encoded as UTF-8 (what is sent on the wire; the fragment, never sent, goes)."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UserError(422, f"the webhook's host {host!r} is not a valid domain name") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    netloc += f":{port}" if port is not None else ""
    return urlunsplit((scheme, netloc, quote(path, safe=_URL_SAFE), quote(query, safe=_URL_SAFE), ""))


def _public_name(host: str) -> bool:
    """False for a loopback name or a non-public address literal (in any form a resolver reads: 127.1,
    2130706433, 0x7f000001); other names are checked when called."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return _public_address(host)
    except ValueError:
        pass
    try:  # the C library's old IPv4 forms, which getaddrinfo would take as the address they spell
        return _public_address(str(ipaddress.IPv4Address(socket.inet_aton(host))))
    except OSError:
        return True  # a name, resolved when called


# IPv6 prefixes that carry an IPv4 address in their last 32 bits, reaching it through a gateway
_IPV4_CARRIERS = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64
)
_NOT_PUBLIC_V6 = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64: any IPv4 behind it
    ipaddress.IPv6Network("fec0::/10"),  # site-local (deprecated, still routed by some networks)
)


def _public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is no way around the check
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _NOT_PUBLIC_V6):
            return False
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and any(ip in net for net in _IPV4_CARRIERS):
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            ip = carried
    return ip.is_global and not ip.is_multicast


# -- owing a call (called by the job lifecycle, inside the transaction of the change) --------------------
def owe(session: Session, job_ids: Sequence[str]) -> None:
    """The calls that these jobs' finishing makes due: each job's own, and its batch's once its last photo
    has finished. Called in the transaction that finished them (the caller commits)."""
    if not job_ids:
        return
    rows = session.execute(
        select(Job.id, Job.webhook_url, Job.batch_id, Batch.webhook_url)
        .outerjoin(Batch, Job.batch_id == Batch.id)
        .where(Job.id.in_(list(job_ids)))
    ).all()
    for job_id, url, _, _ in rows:
        if url:
            _insert_once(session, JOB_FINISHED, url, job_id=job_id)
    batches = {batch_id for _, _, batch_id, batch_url in rows if batch_id and batch_url}
    if batches:
        owe_finished_batches(session, batches)


def owe_finished_batches(session: Session, batch_ids: Iterable[str] | None = None) -> int:
    """Owe the call of every batch with a webhook whose photos have all finished and which has none yet.

    Run by :func:`owe` when a batch's photo finishes, and by every sweep for all batches: two photos of one
    batch finishing at the same moment in two workers may each still see the other running."""
    unfinished = exists().where(Job.batch_id == Batch.id, Job.status.not_in(FINISHED_STATUSES))
    owed = exists().where(WebhookDelivery.batch_id == Batch.id)
    query = select(Batch.id, Batch.webhook_url).where(Batch.webhook_url.is_not(None), ~unfinished, ~owed)
    if batch_ids is not None:
        query = query.where(Batch.id.in_(list(batch_ids)))
    made = 0
    for batch_id, url in session.execute(query).all():
        if url:
            made += _insert_once(session, BATCH_FINISHED, url, batch_id=batch_id)
    return made


def _insert_once(
    session: Session, event: str, url: str, *, job_id: str | None = None, batch_id: str | None = None
) -> int:
    """One pending call; nothing when that job or batch already has one (a concurrent sweep made it)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    statement = (
        insert(WebhookDelivery)
        .values(
            id=new_id(),
            event=event,
            job_id=job_id,
            batch_id=batch_id,
            url=url,
            state=WebhookState.pending,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    return rowcount(session.execute(statement))


# -- signing -------------------------------------------------------------------------------------------
def signature(key: bytes, call_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{call_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# -- calling -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallOutcome:
    status: int | None  # the receiver's HTTP status; None when there was no answer
    error: str | None  # why the call failed; None for a 2xx


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, reach_private: bool
) -> CallOutcome:
    """POST ``body`` to ``url`` once, connecting only to an address allowed by ``reach_private``."""
    # One deadline for the whole call, resolving included: a receiver trickling its answer a byte at a time
    # never trips the socket's per-read timeout, so a watchdog cuts the connection when it is reached.
    deadline = time.monotonic() + 2 * timeout
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return CallOutcome(None, f"the host {host!r} could not be resolved ({exc})")
    addresses = [str(info[4][0]) for info in infos]
    if not reach_private and not all(_public_address(a) for a in addresses):
        return CallOutcome(
            None, f"refused: {host!r} resolves to a non-public address (WEBHOOK_ALLOW_PRIVATE)"
        )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    last = "no address"
    for address in dict.fromkeys(addresses):  # each address once, in the resolver's order
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = f"no answer within {2 * timeout:g} s"
            break
        conn = _connection(parts.scheme, host, port, address, min(timeout, remaining))
        watchdog = threading.Timer(remaining, _cut, args=(conn,))
        watchdog.start()
        try:
            conn.request("POST", target, body=body, headers=headers)
            status = conn.getresponse().status  # the answer's body is not read: only its status counts
        except Exception as exc:  # whatever the receiver does is its failure
            last = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            status = None
        finally:
            watchdog.cancel()
            conn.close()
        if conn.cut.is_set():  # an answer cut short may read as complete: it is none
            last = f"no answer within {2 * timeout:g} s"
            break
        if status is None:
            continue
        if 200 <= status < 300:
            return CallOutcome(status, None)
        if 300 <= status < 400:
            return CallOutcome(status, f"answered {status} (a redirect, not followed)")
        return CallOutcome(status, f"answered {status}")
    return CallOutcome(None, f"no answer from {host}:{port}: {last}")


class _Pinned:
    """What the pinned connections share: the checked address, the raw socket (:func:`_cut` shuts it while
    connecting) and the flag that says the call's deadline has passed."""

    address: str
    timeout: float | None
    port: int
    raw: socket.socket | None = None
    cut: threading.Event

    def _open(self) -> socket.socket:
        self.raw = socket.create_connection((self.address, self.port), self.timeout)
        self._check_deadline()
        return self.raw

    def _check_deadline(self) -> None:
        """Raise if :func:`_cut` came while there was no socket it could shut."""
        if self.cut.is_set():
            raise TimeoutError("deadline reached while connecting")


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    """An HTTP connection to one checked address, the URL's host still in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        http.client.HTTPConnection.__init__(self, host, port, timeout=timeout)
        self.address, self.cut = address, threading.Event()

    def connect(self) -> None:
        self.sock = self._open()


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    """The same over TLS: the certificate is checked against the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        http.client.HTTPSConnection.__init__(self, host, port, timeout=timeout, context=self.tls)
        self.address, self.cut = address, threading.Event()

    def connect(self) -> None:
        # the handshake after self.sock is set, so that _cut can end it (wrapping detaches the raw socket)
        self.sock = self.tls.wrap_socket(
            self._open(), server_hostname=self.host, do_handshake_on_connect=False
        )
        self._check_deadline()
        self.sock.do_handshake()


def _cut(conn: _Pinned) -> None:
    """Wake the thread blocked on ``conn``, connecting, in the TLS handshake or reading (a shutdown ends a
    blocked read at once; a close may not)."""
    conn.cut.set()
    for sock in (getattr(conn, "sock", None), conn.raw):
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed, or detached by the TLS wrapping
                sock.shutdown(socket.SHUT_RDWR)


def _connection(
    scheme: str, host: str, port: int, address: str, timeout: float
) -> _PinnedHTTP | _PinnedHTTPS:
    kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    return kind(host, port, address, timeout)


# -- the delivery loop (worker service) --------------------------------------------------------------------
@dataclass(frozen=True)
class _Claimed:
    id: str
    url: str
    attempt: int
    body: bytes | None  # None: its job or batch is gone (deleted meanwhile)


def deliver_due(settings: Settings, *, now: datetime | None = None) -> int:
    """Make the calls that are due, :data:`CALLS_AT_ONCE` side by side, recording each outcome as it comes.
    Several workers may run this at once: each call is claimed first, for as long as one call can take.
    Returns the number of calls made."""
    claimed = _claim_due(settings, CALLS_AT_ONCE, now or utcnow())
    if not claimed:
        return 0
    with ThreadPoolExecutor(max_workers=len(claimed)) as pool:
        calls = {pool.submit(_call, call, settings): call for call in claimed}
        for done in as_completed(calls):
            with session_scope() as session:  # at once: a slow receiver does not hold the others' outcome
                _record(session, calls[done], done.result())
    return len(claimed)


def _claim_due(settings: Settings, limit: int, now: datetime) -> list[_Claimed]:
    # Held for the longest one call can take (its deadline, and a resolver's slowest answer before it
    # starts); a worker that dies meanwhile leaves it due again after that.
    lease = timedelta(seconds=2 * settings.webhook_timeout + 60)
    claimed: list[_Claimed] = []
    with session_scope() as session:
        due = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.state == WebhookState.pending, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        ).all()
        for delivery_id, due_at in due:
            taken = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.state == WebhookState.pending,
                    WebhookDelivery.next_attempt_at == due_at,
                )
                .values(next_attempt_at=now + lease, attempts=WebhookDelivery.attempts + 1)
            )
            if rowcount(taken) != 1:
                continue  # another worker took it
            delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
            if delivery is None:
                continue
            claimed.append(
                _Claimed(
                    delivery.id,
                    delivery.url,
                    delivery.attempts,
                    _body(session, delivery, now, settings.public_url),
                )
            )
        session.commit()
    return claimed


def _body(session: Session, delivery: WebhookDelivery, now: datetime, public_url: str) -> bytes | None:
    """The call's JSON: what ``GET /jobs/{id}`` (or ``GET /batches/{id}``) answers now, in an envelope."""
    data: dict[str, Any]
    if delivery.job_id is not None:
        job = session.get(Job, delivery.job_id)
        if job is None:
            return None
        data = job_out(job).model_dump(mode="json")
        path = f"/jobs/{job.id}"
    else:
        batch = session.get(Batch, delivery.batch_id) if delivery.batch_id else None
        if batch is None:
            return None
        jobs = session.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.created_at, Job.id))
        data = batch_out(batch, list(jobs)).model_dump(mode="json")
        path = f"/batches/{batch.id}"
    base = public_url.rstrip("/")
    envelope = {
        "type": delivery.event,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "url": base + path,
        "data": absolute_links(data, base),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def absolute_links(data: Any, base: str, *, in_urls: bool = False) -> Any:
    """``data`` with its links (the values under ``urls`` and of ``*_url`` keys, paths on this server)
    prefixed with ``base``: a receiver elsewhere fetches them as they are."""
    if isinstance(data, list):
        return [absolute_links(item, base, in_urls=in_urls) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        link = in_urls or key.endswith("_url")
        if isinstance(value, str) and link and value.startswith("/"):
            out[key] = base + value
        else:
            out[key] = absolute_links(value, base, in_urls=in_urls or key == "urls")
    return out


def logged_url(url: str) -> str:
    """A webhook URL as the logs show it: its scheme, host and port only; its path and query may carry the
    receiver's token (README asks for one there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "(a webhook URL)"


def _call(call: _Claimed, settings: Settings) -> CallOutcome:
    if call.body is None:
        return CallOutcome(None, "gone")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": call.id,
        "webhook-timestamp": str(timestamp),
    }
    if key := settings.webhook_key:
        headers["webhook-signature"] = signature(key, call.id, timestamp, call.body)
    try:
        outcome = post(
            call.url,
            call.body,
            headers,
            timeout=settings.webhook_timeout,
            reach_private=settings.webhooks_reach_private,
        )
    except Exception:  # one URL must not stop the others
        log.exception("webhook %s to %s", call.id, logged_url(call.url))
        outcome = CallOutcome(None, "could not be called: an internal error (the server's log has it)")
    if outcome.error:
        where = logged_url(call.url)
        log.info("webhook %s (attempt %d) to %s: %s", call.id, call.attempt, where, outcome.error)
    return outcome


def _record(session: Session, call: _Claimed, outcome: CallOutcome) -> None:
    if call.body is None:
        return  # its job or batch was deleted, and the call with it
    now = utcnow()
    values: dict[str, Any] = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.error is None:
        values.update(state=WebhookState.delivered, delivered_at=now, next_attempt_at=None)
    elif outcome.status == 410 or call.attempt >= MAX_ATTEMPTS:
        values.update(state=WebhookState.failed, next_attempt_at=None)
    else:
        values["next_attempt_at"] = now + timedelta(seconds=RETRY_AFTER_SECONDS[call.attempt - 1])
    session.execute(  # only while the claim is this call's (a lease that ran out was claimed again)
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == call.id,
            WebhookDelivery.state == WebhookState.pending,
            WebhookDelivery.attempts == call.attempt,
        )
        .values(**values)
    )
