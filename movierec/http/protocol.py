"""The per-connection asyncio protocol: buffering, pipelining, keep-alive and timeouts.

Sync handlers run inline in data_received and their answers for one read are written
with a single transport.write; only a handler that returns an awaitable costs a task.
Timeouts are enforced by the server's periodic sweep (see server.py), so a request
costs no timer object: a connection only records the time of its last state change.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from movierec.http.messages import CloseConnection, Request, Response, error_bytes, render
from movierec.http.parser import HttpError, check_partial, content_length, parse_head

if TYPE_CHECKING:
    from movierec.http.server import HTTPServer

Handler = Callable[[Request], "Response | Awaitable[Response]"]

log = logging.getLogger("movierec.http")

_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE_10 = b"Connection: keep-alive\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# While a handler is pending or the client is not reading, buffer at most this much input.
_MAX_IDLE_BUFFER = 64 * 1024
# Flush batched pipelined answers once they reach this size, to notice a slow reader.
_FLUSH_AT = 256 * 1024
# Input drained during a lingering close before giving up on politeness.
_MAX_LINGER_BYTES = 1 << 20


class HTTPConnection(asyncio.Protocol):
    def __init__(self, server: HTTPServer) -> None:
        self._server = server
        self._handler = server.handler
        self._limits = server.limits
        self._loop = server.loop
        self._transport: asyncio.Transport | None = None
        self._client: Any = None
        # Unprocessed input: b"" or a bytearray (kept mutable so appends are in place).
        self._buf: bytes | bytearray = b""
        # A parsed head whose Content-Length body has not fully arrived yet.
        self._pending: tuple[Any, int] | None = None
        self._task: asyncio.Future[Any] | None = None
        self._busy = False
        self._closed = False
        self._lingering = False
        self._linger_bytes = 0
        self._eof = False
        # True while a request is partially received: _mark is then when it started.
        self._reading = False
        self._mark = 0.0
        self._write_paused = False
        self._write_mark = 0.0
        self._read_paused = False

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        server = self._server
        if len(server.connections) >= self._limits.max_connections:
            server.counters["connections_rejected"] += 1
            self._closed = True
            transport.write(error_bytes(503, "too many connections"))
            transport.close()
            return
        server.connections.add(self)
        server.counters["connections"] += 1
        self._client = transport.get_extra_info("peername")
        self._mark = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._buf = b""
        self._server.connections.discard(self)
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._lingering:
            self._linger_bytes += len(data)
            if self._linger_bytes > _MAX_LINGER_BYTES:
                self.abort()
            return
        buf = self._buf
        if buf:
            buf += data  # type: ignore[operator]  # bytearray, extended in place
        else:
            buf = data
        if self._busy or self._write_paused:
            self._buf = buf if isinstance(buf, bytearray) else bytearray(buf)
            if len(buf) > _MAX_IDLE_BUFFER:
                self._pause_reading()
            return
        try:
            self._process(buf)
        except Exception:
            # A bug of ours must cost this one connection, never the server.
            log.exception("internal error while processing a request")
            self.fail(500, "internal server error")

    def eof_received(self) -> bool:
        self._eof = True
        # Keep the write side open only while an answer is still owed.
        return self._busy and not self._lingering

    def pause_writing(self) -> None:
        self._write_paused = True
        self._write_mark = self._loop.time()
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._busy and not self._closed and not self._lingering:
            self._resume_reading()
            self._continue()

    # --- request processing ------------------------------------------------------------

    def _process(self, buf: bytes | bytearray) -> None:
        self._buf = b""
        limits = self._limits
        transport = self._transport
        assert transport is not None
        counters = self._server.counters
        out: list[bytes] = []
        out_size = 0
        n = len(buf)
        pos = 0
        served = False
        try:
            while pos < n or self._pending is not None:
                if self._pending is not None:
                    head, size = self._pending
                    if n - pos < size:
                        break
                    body = bytes(buf[pos : pos + size])
                    pos += size
                    self._pending = None
                else:
                    if buf[pos] == 13 and buf.startswith(b"\r\n", pos):
                        pos += 2  # stray CRLF between requests is allowed (RFC 9112 2.2)
                        continue
                    end = buf.find(b"\r\n\r\n", pos)
                    if end == -1:
                        check_partial(buf, pos, limits.max_request_line, limits.max_header_bytes)
                        break
                    line_end = buf.find(b"\r\n", pos)
                    if line_end - pos > limits.max_request_line:
                        raise HttpError(414, "request line too long")
                    if end - line_end > limits.max_header_bytes:
                        raise HttpError(431, "request header block too large")
                    raw = buf[pos:end]
                    head = parse_head(
                        raw if isinstance(raw, bytes) else bytes(raw), limits.max_headers
                    )
                    pos = end + 4
                    headers = head.headers
                    if "transfer-encoding" in headers:
                        raise HttpError(501, "Transfer-Encoding is not supported")
                    size = content_length(headers)
                    body = b""
                    if size:
                        if size > limits.max_body:
                            raise HttpError(413, "request body too large")
                        if n - pos < size:
                            self._pending = (head, size)
                            if headers.get("expect", "").lower() == "100-continue":
                                out.append(_CONTINUE)
                            break
                        body = bytes(buf[pos : pos + size])
                        pos += size

                self._reading = False
                served = True
                counters["requests"] += 1
                conn = head.headers.get("connection")
                if head.version == "HTTP/1.1":
                    keep = conn is None or "close" not in conn.lower()
                else:
                    keep = conn is not None and "keep-alive" in conn.lower()
                request = Request(
                    head.method,
                    head.target,
                    head.path,
                    head.query,
                    head.version,
                    head.headers,
                    body,
                    self._client,
                )
                head_only = head.method == "HEAD"
                try:
                    result = self._handler(request)
                except CloseConnection:
                    self._flush(out)
                    self.abort()
                    return
                except Exception as exc:
                    result = self._handler_failed(request, exc)
                if type(result) is not Response:
                    if inspect.isawaitable(result):
                        self._flush(out)
                        self._await(result, request, head_only, keep)
                        self._keep(buf, pos, served)
                        return
                    if not isinstance(result, Response):
                        result = self._handler_failed(request, TypeError("not a Response"))
                chunk = self._render(request, result, head_only, keep)
                out.append(chunk)
                if not keep or result.close:
                    self._flush(out)
                    self.close()
                    return
                out_size += len(chunk)
                if out_size >= _FLUSH_AT:
                    self._flush(out)
                    out = []
                    out_size = 0
                    if self._write_paused or self._closed:
                        self._keep(buf, pos, served)
                        return
        except HttpError as err:
            self._flush(out)
            self.fail(err.status, err.reason)
            return
        self._flush(out)
        self._keep(buf, pos, served)
        if self._eof and not self._busy:
            self.close()

    def _keep(self, buf: bytes | bytearray, pos: int, served: bool) -> None:
        """Store unprocessed input and note when the request in progress started."""
        if pos < len(buf):
            if pos == 0 and isinstance(buf, bytearray):
                self._buf = buf
            else:
                self._buf = bytearray(buf[pos:])
        else:
            self._buf = b""
        if self._busy:
            return
        if self._buf or self._pending is not None:
            if not self._reading:
                self._reading = True
                self._mark = self._loop.time()
        else:
            self._reading = False
            if served:
                # Only a served request restarts the idle clock: stray CRLFs must not.
                self._mark = self._loop.time()

    def _continue(self) -> None:
        """Resume after an async answer or a write pause: serve what is buffered."""
        if self._closed or self._lingering:
            return
        buf = self._buf
        if buf or self._pending is not None or self._eof:
            self._process(buf)
        else:
            self._mark = self._loop.time()

    def _await(self, result: Awaitable[Any], request: Request, head_only: bool, keep: bool) -> None:
        self._busy = True
        task = asyncio.ensure_future(result)
        self._task = task
        self._server.tasks.add(task)
        task.add_done_callback(lambda t: self._on_done(t, request, head_only, keep))

    def _on_done(
        self, task: asyncio.Future[Any], request: Request, head_only: bool, keep: bool
    ) -> None:
        self._task = None
        self._busy = False
        self._server.tasks.discard(task)
        if self._closed or task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, CloseConnection):
            self.abort()
            return
        result = self._handler_failed(request, exc) if exc is not None else task.result()
        if not isinstance(result, Response):
            result = self._handler_failed(request, TypeError("not a Response"))
        assert self._transport is not None
        self._transport.write(self._render(request, result, head_only, keep))
        if not keep or result.close:
            self.close()
            return
        if not self._write_paused:
            self._resume_reading()
            try:
                self._continue()
            except Exception:
                log.exception("internal error while processing a request")
                self.fail(500, "internal server error")

    def _render(self, request: Request, result: Response, head_only: bool, keep: bool) -> bytes:
        try:
            return render(result, head_only, self._connection_line(request.version, keep, result))
        except Exception as exc:  # e.g. a CR/LF in a handler's header: never send it
            failed = self._handler_failed(request, exc)
            return render(failed, head_only, self._connection_line(request.version, keep, failed))

    def _handler_failed(self, request: Request, exc: BaseException) -> Response:
        self._server.counters["handler_errors"] += 1
        log.error("handler failed on %s %.200s", request.method, request.target, exc_info=exc)
        return Response(500, f"internal server error: {type(exc).__name__}\n".encode())

    @staticmethod
    def _connection_line(version: str, keep: bool, response: Response) -> bytes:
        if not keep or response.close:
            return _CLOSE
        return b"" if version == "HTTP/1.1" else _KEEP_ALIVE_10

    def _flush(self, out: list[bytes]) -> None:
        if out and not self._closed and self._transport is not None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    # --- closing and flow control ------------------------------------------------------

    def fail(self, status: int, reason: str) -> None:
        """Answer an error, then close politely: half-close and drain input for a while,
        so the client reads the answer instead of a reset caused by its unread data."""
        if self._closed or self._lingering or self._transport is None:
            return
        self._server.counters["bad_requests"] += 1
        self._buf = b""
        self._pending = None
        self._lingering = True
        self._mark = self._loop.time()
        transport = self._transport
        transport.write(error_bytes(status, reason))
        self._resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        else:
            self.close()

    def close(self) -> None:
        if not self._closed and self._transport is not None:
            self._closed = True
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._closed = True
            self._transport.abort()

    def _pause_reading(self) -> None:
        if not self._read_paused and not self._closed and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and not self._closed and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    def check_timeouts(self, now: float) -> None:
        """Called by the server's sweep; closes connections that outstayed a limit."""
        if self._closed:
            return
        limits = self._limits
        if self._lingering:
            if now - self._mark > limits.linger_timeout:
                self.abort()
        elif self._write_paused:
            if now - self._write_mark > limits.write_timeout:
                self._server.counters["timeouts"] += 1
                self.abort()
        elif self._busy:
            return
        elif self._reading:
            if now - self._mark > limits.header_timeout:
                self._server.counters["timeouts"] += 1
                self.fail(408, "request timeout")
        elif now - self._mark > limits.keepalive_timeout:
            self.close()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._reading and not self._buf
