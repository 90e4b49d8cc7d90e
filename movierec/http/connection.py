"""One connection below the HTTP exchange: admission, flow control, the memory it holds,
its deadlines, and how it ends. protocol.HTTPConnection adds the requests on top.

Backpressure: the transport's write buffer pauses us above Limits.write_buffer_high and
resumes us only once it is empty (low-water mark 0), and while paused the connection is
not read. The write deadline runs from the moment answers first back up until they have
all reached the socket, so a client reading a trickle cannot keep extending it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, cast

from movierec.http.messages import error_bytes

if TYPE_CHECKING:
    from movierec.http.server import HTTPServer

# While a handler is pending or the client is not reading, buffer at most this much input.
MAX_IDLE_BUFFER = 64 * 1024
# Input drained during a lingering close before giving up on politeness.
_MAX_LINGER_BYTES = 1 << 20

clock = time.perf_counter


class ConnectionBase(asyncio.Protocol):
    def __init__(self, server: HTTPServer) -> None:
        self._server = server
        self._limits = server.limits
        # A head no longer than this has a short enough request line and header block.
        self._short_head = min(server.limits.max_request_line, server.limits.max_header_bytes)
        self._loop = server.loop
        self._stats = server.server_stats
        self._statuses = server.server_stats.statuses
        self._transport: asyncio.Transport | None = None
        self._client: Any = None
        # The peer's host, the key of the per-address share (see admission.py).
        self.address: Hashable = None
        # Unprocessed input: b"" or a bytearray (kept mutable so appends are in place).
        self._buf: bytes | bytearray = b""
        # A parsed head whose Content-Length body has not fully arrived yet.
        self._pending: tuple[Any, int] | None = None
        self._busy = False
        self._closed = False
        self._lingering = False
        self._linger_bytes = 0
        self._eof = False
        # True while a request is partially received: _mark is then when it started.
        self._reading = False
        self._mark = 0.0
        self._read_paused = False
        self._write_paused = False
        # Loop time our answers first backed up; 0.0 while they flow.
        self._stuck_since = 0.0
        # A later loop turn is scheduled to serve the rest of pipelined input.
        self._deferred = False
        # Bytes of this connection counted in the server's buffered total.
        self._held = 0
        # When the oldest input not yet answered arrived (clock()), and answers written
        # but still in the transport's buffer: (first byte, count), timed once drained.
        self._first_byte = 0.0
        self._undrained: list[tuple[float, int]] = []

    # --- admission and the end of a connection --------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        server = self._server
        table = server.connections
        peer = transport.get_extra_info("peername")
        self._client = peer
        self.address = peer[0] if isinstance(peer, tuple) else peer
        admitted, evicted = table.admit(self)
        if evicted is not None:
            server.counters["connections_evicted"] += 1
        if not admitted:
            server.counters["connections_rejected"] += 1
            self._statuses[503] += 1
            self._closed = True
            # Refused for its address's share (when the share is below the whole cap).
            share = table.per_address
            own = share < table.cap and table.held_by(self.address) >= share
            transport.write(
                error_bytes(503, "too many connections" + (" from your address" if own else ""))
            )
            transport.close()
            return
        server.counters["connections"] += 1
        self._stats.open_connections = len(table)
        transport.set_write_buffer_limits(high=self._limits.write_buffer_high, low=0)
        self._mark = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._buf = b""
        self._server.connections.discard(self)
        self._stats.open_connections = len(self._server.connections)
        self._settle(clock())
        self._release()

    def fail(self, status: int, reason: str, bad: bool = True) -> None:
        """Answer an error, then close politely: half-close and drain input for a while,
        so the client reads the answer instead of a reset caused by its unread data."""
        if self._closed or self._lingering or self._transport is None:
            return
        if bad:
            self._server.counters["bad_requests"] += 1
        self._statuses[status] += 1
        self._buf = b""
        self._pending = None
        self._lingering = True
        self._mark = self._loop.time()
        transport = self._transport
        transport.write(error_bytes(status, reason))
        self._answered(1, self._first_byte or clock())
        self._account()
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

    def evict(self) -> None:
        """Make room at the connection cap: an idle connection is closed, a busy one (of an
        address over its share) dropped."""
        if self.idle:
            self.close()
        else:
            self.abort()

    def shed(self) -> None:
        """Free this connection's buffers because the server's total went over its bound."""
        self._server.counters["connections_shed"] += 1
        if self._write_paused:
            self._release()  # its answers go unread anyway: drop them with the connection
            self.abort()
        else:
            self.fail(503, "server out of buffer memory", bad=False)

    @property
    def idle(self) -> bool:
        """Nothing in progress: no request, input, pending answer or scheduled turn."""
        return not (
            self._busy
            or self._reading
            or self._buf
            or self._write_paused
            or self._deferred
            or self._lingering
            or self._closed
        )

    def check_timeouts(self, now: float) -> None:
        """Called by the server's sweep; closes connections that outstayed a limit."""
        if self._closed:
            return
        limits = self._limits
        if self._lingering:
            if now - self._mark > limits.linger_timeout:
                self.abort()
        elif self._write_paused:
            if now - self._stuck_since > limits.write_timeout:
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

    # --- flow control ----------------------------------------------------------------------

    def pause_writing(self) -> None:
        self._write_paused = True
        self._server.counters["backpressure_pauses"] += 1
        if not self._stuck_since:
            self._stuck_since = self._loop.time()
        self._pause_reading()
        self._account()

    def resume_writing(self) -> None:
        # With a low-water mark of 0 this means every answer has reached the socket.
        self._write_paused = False
        self._stuck_since = 0.0
        self._settle(clock())
        self._account()
        if not (self._busy or self._closed or self._lingering or self._deferred):
            self._serve_buffered()
            self._resume_if_room()

    def _serve_buffered(self) -> None:
        """Serve input that arrived while we could not (the subclass's part)."""
        raise NotImplementedError

    def _linger(self, data: bytes) -> None:
        self._linger_bytes += len(data)
        if self._linger_bytes > _MAX_LINGER_BYTES:
            self.abort()

    def _pause_reading(self) -> None:
        if not self._read_paused and not self._closed and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_if_room(self) -> None:
        """Read again after serving what was buffered, unless complete requests still wait
        for a later turn and fill the buffer: resuming then would read a pipelining client's
        next 256 KB every turn while serving only a few requests of it, without bound."""
        if self._closed or self._lingering or self._busy or self._write_paused:
            return
        if self._deferred and len(self._buf) > MAX_IDLE_BUFFER:
            return  # next_turn comes back here once a turn has served more of it
        self._resume_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and not self._closed and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    # --- what the server counts ------------------------------------------------------------

    def _answered(self, n: int, started: float) -> None:
        """`n` answers to input that arrived at `started` were just written; they are timed
        once the socket has taken them all (first byte read to last byte written)."""
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size():
            self._undrained.append((started, n))
            return
        finished = clock()
        if self._undrained:
            self._settle(finished)
        self._stats.latency.observe(finished - started, n)

    def _settle(self, finished: float) -> None:
        latency = self._stats.latency
        for started, n in self._undrained:
            latency.observe(finished - started, n)
        self._undrained.clear()

    def _account(self) -> None:
        """Keep the server's total of buffered bytes current; over its bound, shed."""
        held = len(self._buf)
        if self._write_paused and self._transport is not None:
            held += self._transport.get_write_buffer_size()
        delta = held - self._held
        if not delta:
            return
        self._held = held
        server = self._server
        self._stats.buffered_bytes += delta
        if held:
            server.holders.add(self)
        else:
            server.holders.discard(self)
        if delta > 0 and self._stats.buffered_bytes > self._limits.max_buffered:
            server.shed()

    def _release(self) -> None:
        if self._held:
            self._stats.buffered_bytes -= self._held
            self._held = 0
            self._server.holders.discard(self)

    @property
    def held(self) -> int:
        return self._held
