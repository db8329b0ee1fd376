"""uvicorn's httptools HTTP/1.1 protocol with a time-out on request headers (uvicorn has none of its own).

A client that opens connections and sends its headers a byte at a time would otherwise hold each
connection, and a file descriptor, for ever. The keep-alive time-out only starts after a response; this
one runs from the connection's start and from the first byte of every request until its head is in.
Slow request bodies are handled by the app (``web.LimitsMiddleware``, 408).

httptools (C) rather than h11 (pure Python): it parses a request in a fraction of the time, which is what
a burst of small study and status requests on two cores is made of (benchmarks/RESULTS.md, "User study").
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.config import get_settings


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """Named by import string in `colorlab serve` (``http=``), so that ``--workers N`` can load it."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]  # uvicorn's protocol narrows the transport the same way
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.header_timeout = get_settings().header_read_timeout
        self._arm()

    def on_message_begin(self) -> None:  # the first byte of a request
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

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
