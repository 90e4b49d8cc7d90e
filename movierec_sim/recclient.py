"""The site's side of `GET /recommend/<userid>`: real HTTP calls with the site's timeout,
their outcome described the way the site logs it (SPEC sections 1 and 4)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from movierec.http.server import new_event_loop

_MAX_HEAD = 64 * 1024
_MAX_BODY = 256 * 1024
_MAX_RESULT_TEXT = 300


@dataclass(frozen=True, slots=True)
class CallOutcome:
    status: int  # 0 when the call failed (timeout, refused, broken answer)
    result: str  # what the site writes after "result: "
    latency_ms: int
    items: tuple[str, ...] = ()  # the movie ids answered (status 200 only)


class RecommendationClient:
    """Calls the service concurrently, over a small pool of keep-alive connections."""

    def __init__(
        self, base_url: str, timeout: float = 0.6, concurrency: int = 64, separator: str = ", "
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"service URL must be http://HOST:PORT, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.separator = separator
        self.label = f"{self.host}:{self.port}"  # how the site names the service in its log
        self._peer = f"{self.host}/{self.host}:{self.port}"
        self._loop = new_event_loop()
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._limit = asyncio.Semaphore(concurrency)

    def call_many(self, paths: list[str]) -> list[CallOutcome]:
        """One call per path ('/recommend/42'), concurrently; outcomes in the same order."""
        if not paths:
            return []
        return self._loop.run_until_complete(self._gather(paths))

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def _gather(self, paths: list[str]) -> list[CallOutcome]:
        return list(await asyncio.gather(*(self._call(p) for p in paths)))

    async def _call(self, path: str) -> CallOutcome:
        async with self._limit:
            started = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(self._exchange(path), self.timeout)
            except TimeoutError:
                text = (
                    f"java.util.concurrent.TimeoutException: Request timeout to {self._peer} "
                    f"after {round(self.timeout * 1000)} ms"
                )
                return CallOutcome(0, text, _elapsed_ms(started))
            except ConnectionRefusedError:
                return CallOutcome(0, f"Connection refused: {self._peer}", _elapsed_ms(started))
            except (OSError, ValueError, asyncio.IncompleteReadError) as error:
                text = f"java.io.IOException: {type(error).__name__}: {error}"
                return CallOutcome(0, _one_line(text), _elapsed_ms(started))
            latency = _elapsed_ms(started)
        if status == 200:
            line = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
            items = tuple(item.strip() for item in line.split(",") if item.strip())
            return CallOutcome(200, self.separator.join(items), latency, items)
        return CallOutcome(status, _one_line(body.decode("utf-8", "replace")), latency)

    async def _exchange(self, path: str) -> tuple[int, bytes]:
        while self._idle:
            # A pooled connection the service has since closed fails at once: use a fresh one.
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                return await self._exchange_on(self._idle.pop(), path)
        conn = await asyncio.open_connection(self.host, self.port, limit=_MAX_HEAD)
        return await self._exchange_on(conn, path)

    async def _exchange_on(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str
    ) -> tuple[int, bytes]:
        reader, writer = conn
        try:
            request = f"GET {self.prefix}{path} HTTP/1.1\r\nHost: {self.label}\r\n\r\n"
            writer.write(request.encode("latin-1"))
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            if length is None:
                body = await reader.read(_MAX_BODY)
                close = True
            elif length > _MAX_BODY:
                raise ValueError(f"answer of {length} bytes is too large")
            else:
                body = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self._idle.append(conn)
        return status, body

    def __enter__(self) -> RecommendationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _parse_head(head: bytes) -> tuple[int, int | None, bool]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"invalid HTTP response: {lines[0][:80]!r}")
    length: int | None = None
    close = parts[0] == "HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection":
            close = value.strip().lower() == "close"
    return int(parts[1]), length, close


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _one_line(text: str) -> str:
    """The site writes a failed call's text on one line."""
    flat = " ".join(text.split())
    return flat[:_MAX_RESULT_TEXT]
