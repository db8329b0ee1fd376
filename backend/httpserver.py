"""uvicorn's HTTP/1.1 protocol with a time-out on request headers (uvicorn has none of its own).

A client that opens connections and sends its headers a byte at a time would otherwise hold each
connection, and a file descriptor, for ever. The keep-alive time-out only starts after a response; this
one runs from the first byte of every request (and from the connection's start) until its head is in.
Slow request bodies are handled by the app (``web.LimitsMiddleware``, 408).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from backend.config import get_settings


class HeaderTimeoutProtocol(H11Protocol):
    """Named by import string in `colorlab serve` (``http=``), so that ``--workers N`` can load it."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]  # uvicorn's H11Protocol narrows the transport the same way
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.header_timeout = get_settings().header_read_timeout
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # a request head is still incomplete
            if self._header_timer is None:
                self._arm()
        else:
            self._disarm()

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
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
