"""A minimal HTTP/1.1 client on asyncio streams, for load generators that share the machine with the server.

httpx costs about 2 ms of CPU per request; a load generator of 200 simulated participants on the same two
cores as the server then takes a third of the CPU and its own queueing shows up as server latency. This one
keeps one connection per client (keep-alive), a cookie jar, and reads Content-Length or chunked bodies:
enough for our own server on loopback, not a general client.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class TransportError(Exception):
    """The connection failed or closed before a whole response came back."""


@dataclass
class LeanResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class LeanClient:
    base_url: str
    timeout: float = 30.0
    cookies: dict[str, str] = field(default_factory=dict)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> LeanResponse:
        try:
            return await asyncio.wait_for(self._request(method, path, json, headers or {}), self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.aclose()  # the next request opens a new connection
            raise TransportError(f"{exc.__class__.__name__}: {exc}") from None

    async def _request(self, method: str, path: str, body_json: Any, extra: dict[str, str]) -> LeanResponse:
        url = urlsplit(self.base_url)
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(url.hostname, url.port)
        assert self._reader is not None and self._writer is not None
        body = b"" if body_json is None else json.dumps(body_json).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "User-Agent: lean-http"]
        if body_json is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        lines += [f"{k}: {v}" for k, v in extra.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookie_name, _, rest = value.partition("=")
                self.cookies[cookie_name] = rest.split(";", 1)[0]
            headers[name] = value
        if "content-length" in headers:
            content = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
            await self._reader.readuntil(b"\r\n")
            content = b"".join(parts)
        else:
            content = b""
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return LeanResponse(status, headers, content)
