"""uvicorn's httptools HTTP/1.1 protocol with a time-out and a size limit on request headers (uvicorn has
neither of its own).

A client that opens connections and sends its headers a byte at a time would otherwise hold each
connection, and a file descriptor, for ever. The keep-alive time-out only starts after a response; this
one runs from the connection's start and from the first byte of every request until its head is in.
A request head (request line and headers) over ``MAX_HEAD_BYTES`` is answered 431 and the connection
closed: the parser keeps what it has read, so a 20 MB header held 20 MB per connection until the time-out.
Slow request bodies are handled by the app (``web.LimitsMiddleware``, 408).

httptools (C) rather than h11 (pure Python): it parses a request in a fraction of the time, which is what
a burst of small study and status requests on two cores is made of (benchmarks/RESULTS.md, "User study").
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.config import get_settings

MAX_HEAD_BYTES = 64 * 1024  # browsers send 1-8 KB; common servers refuse past 8-64 KB
# After a 431, what the client still sends is read and dropped for this long before the connection closes:
# closing on unread data sends a reset, which can destroy the 431 before the client reads it.
LINGER_S = 2.0


def _head_too_large_response() -> bytes:
    body = json.dumps(
        {"detail": f"the request's headers are larger than the {MAX_HEAD_BYTES:,}-byte limit"}
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


HEAD_TOO_LARGE = _head_too_large_response()


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """Named by import string in `colorlab serve` (``http=``), so that ``--workers N`` can load it."""

    _header_timer: asyncio.TimerHandle | None = None
    # True from the connection's start, and after each request's body, until the next head is complete:
    # the bytes received meanwhile are a request head (``_head_bytes`` of them so far).
    _reading_head = True
    _head_bytes = 0
    _refused = False  # a 431 was sent: the rest is dropped until the connection closes
    _linger_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]  # uvicorn's protocol narrows the transport the same way
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.header_timeout = get_settings().header_read_timeout
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._reading_head:  # a body: the app limits it (web.LimitsMiddleware)
            super().data_received(data)
            return
        room = MAX_HEAD_BYTES - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Parse only what the limit leaves room for: the head must end within it.
        self._head_bytes = MAX_HEAD_BYTES
        if room > 0:
            super().data_received(data[:room])
        if self.transport.is_closing():  # the parser refused the request (400)
            return
        if self._reading_head:
            self._refuse_large_head()
            return
        self.data_received(data[room:])  # the rest: the body, or a pipelined request

    def on_message_begin(self) -> None:  # the first byte of a request
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What comes next on this connection is the next request's head.
        self._reading_head = True
        self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def _refuse_large_head(self) -> None:
        self._disarm()
        self._refused = True
        self.transport.write(HEAD_TOO_LARGE)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the 431, then the end: the client reads both
            self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
