"""The per-connection asyncio protocol: buffering, pipelining, keep-alive and timeouts.

Sync handlers run inline in data_received and their answers for one read are written
with a single transport.write; only a handler that returns an awaitable costs a task.
One connection gets at most Limits.max_requests_per_turn requests served per turn: a
pipelined rest waits in the server's turn queue, which serves at most
Limits.max_deferred_per_iteration requests per loop iteration, so the loop keeps
accepting, reading and answering fresh requests in between.
Timeouts are enforced by the server's periodic sweep (see server.py), so a request
costs no timer object: a connection only records the time of its last state change.
Admission, flow control, memory accounting and closing live in connection.py.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from movierec.http.connection import MAX_IDLE_BUFFER, ConnectionBase, clock
from movierec.http.messages import CloseConnection, Request, Response, render
from movierec.http.parser import HeadScanner, HttpError, content_length, parse_head_fields
from movierec.http.stats import LATENCY_BUCKETS

if TYPE_CHECKING:
    from movierec.http.server import HTTPServer

Handler = Callable[[Request], "Response | Awaitable[Response]"]

log = logging.getLogger("movierec.http")

_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE_10 = b"Connection: keep-alive\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Flush batched pipelined answers once they reach this size, to notice a slow reader.
_FLUSH_AT = 256 * 1024


class HTTPConnection(ConnectionBase):
    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self._handler = server.handler
        # How far an incomplete head at the start of _buf was already examined.
        self._scanner: HeadScanner | None = None
        self._task: asyncio.Future[Any] | None = None

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._lingering:
            self._linger(data)
            return
        buf = self._buf
        if buf:
            buf += data  # type: ignore[operator]  # bytearray, extended in place
        else:
            buf = data
            if not self._reading:
                self._first_byte = clock()  # a new request starts: its latency clock too
        if self._busy or self._write_paused or self._deferred:
            self._buf = buf if isinstance(buf, bytearray) else bytearray(buf)
            if len(buf) > MAX_IDLE_BUFFER:
                self._pause_reading()
            self._account()
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
        return (self._busy or self._deferred) and not self._lingering

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
        served = 0
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
                        self._scanner = None  # a kept lone CR was this CRLF, not a head
                        continue
                    scanner = self._scanner
                    if scanner is None:
                        end = buf.find(b"\r\n\r\n", pos)
                        if end == -1:
                            scanner = HeadScanner(limits.max_request_line, limits.max_header_bytes)
                            self._scanner = scanner
                    if scanner is not None:
                        end = scanner.scan(buf, pos)
                        if end == -1:
                            break
                        self._scanner = None
                    if end - pos > self._short_head:
                        line_end = buf.find(b"\r\n", pos)
                        if line_end - pos > limits.max_request_line:
                            raise HttpError(414, "request line too long")
                        if end - line_end > limits.max_header_bytes:
                            raise HttpError(431, "request header block too large")
                    raw = buf[pos:end]
                    # A plain tuple, not a Head: the hot path builds one object less.
                    head = parse_head_fields(
                        raw if isinstance(raw, bytes) else bytes(raw), limits.max_headers
                    )
                    pos = end + 4
                    headers = head[5]
                    if "transfer-encoding" in headers:
                        if not limits.max_body:  # no body is taken, however it is framed
                            raise HttpError(413, "no request body is accepted")
                        raise HttpError(501, "Transfer-Encoding is not supported")
                    size = content_length(headers) if "content-length" in headers else 0
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
                served += 1
                counters["requests"] += 1
                method, target, path, query, version, headers, keep = head
                request = Request(method, target, path, query, version, headers, body, self._client)
                head_only = method == "HEAD"
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
                if served >= limits.max_requests_per_turn and pos < n:
                    self._flush(out)
                    self._keep(buf, pos, served)
                    self._defer()
                    return
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

    def _keep(self, buf: bytes | bytearray, pos: int, served: int) -> None:
        """Store unprocessed input and note when the request in progress started."""
        if pos < len(buf):
            if isinstance(buf, bytearray):
                if pos:
                    del buf[:pos]  # O(1): CPython moves a bytearray's start, not its bytes
                self._buf = buf
            else:
                self._buf = bytearray(buf[pos:])
        else:
            self._buf = b""
        if self._buf or self._held:
            self._account()
        if self._busy:
            return
        if self._buf or self._pending is not None:
            if not self._reading:
                self._reading = True
                self._mark = self._loop.time()
        else:
            self._reading = False
            if served and not self._closed:
                # Only a served request restarts the idle clock: stray CRLFs must not.
                self._mark = self._loop.time()
                self._server.connections.touch(self)

    def _defer(self) -> None:
        """Leave the rest of pipelined input for the next loop turn."""
        self._deferred = True
        self._server.counters["turns_deferred"] += 1
        self._server.defer(self)

    def next_turn(self) -> None:
        """The server's turn queue reached this connection: serve the next requests."""
        self._deferred = False
        # A pending handler or a full write buffer continues by itself when it ends.
        if not (self._busy or self._write_paused or self._closed or self._lingering):
            self._serve_buffered()
            self._resume_if_room()

    def _serve_buffered(self) -> None:
        try:
            self._continue()
        except Exception:
            log.exception("internal error while processing a request")
            self.fail(500, "internal server error")

    def _continue(self) -> None:
        """Resume after an async answer, a write pause or a deferred turn."""
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
        started = self._first_byte
        task.add_done_callback(lambda t: self._on_done(t, request, head_only, keep, started))

    def _on_done(
        self,
        task: asyncio.Future[Any],
        request: Request,
        head_only: bool,
        keep: bool,
        started: float,
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
        self._answered(1, started)
        if not keep or result.close:
            self.close()
            return
        if not (self._write_paused or self._deferred):
            self._serve_buffered()
            self._resume_if_room()

    def _render(self, request: Request, result: Response, head_only: bool, keep: bool) -> bytes:
        try:
            data = render(result, head_only, self._connection_line(request.version, keep, result))
        except Exception as exc:  # e.g. a CR/LF in a handler's header: never send it
            failed = self._handler_failed(request, exc)
            data = render(failed, head_only, self._connection_line(request.version, keep, failed))
            result = failed
        self._statuses[result.status] += 1
        return data

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
        """Write the batched answers (and a 100 Continue, always last when present)."""
        if out and not self._closed and self._transport is not None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
            answers = len(out) - (out[-1] is _CONTINUE)
            if answers:
                if self._undrained or self._transport.get_write_buffer_size():
                    self._answered(answers, self._first_byte)
                else:  # the common case, inlined: the socket took it all, time it now
                    seconds = clock() - self._first_byte
                    latency = self._stats.latency
                    latency.counts[bisect_left(LATENCY_BUCKETS, seconds)] += answers
                    latency.sum += seconds * answers
