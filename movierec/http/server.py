"""A small, fast, hardened HTTP/1.1 server on asyncio (uvloop when installed).

    server = HTTPServer(lambda req: Response(200, b"hi"), port=0, keepalive_timeout=5)
    with ServerThread(server) as thread:        # tests and the simulator
        urlopen(f"http://127.0.0.1:{thread.port}/")
    run_forever(server)                          # CLI: blocks until SIGINT/SIGTERM

A handler takes a Request and returns a Response, or an awaitable of one. Sync handlers
are the fast path (no task per request); async handlers may sleep (injected latency).
Limits (see messages.Limits) may be given as keyword arguments. What the server did is
counted in a stats.ServerStats, its own or one passed in (a service passes the one its
metrics read).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import signal
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from movierec.http.admission import ConnectionTable
from movierec.http.listen import listen
from movierec.http.messages import (
    APPLICATION_JSON,
    TEXT_PLAIN,
    CloseConnection,
    Limits,
    Request,
    Response,
)
from movierec.http.protocol import Handler, HTTPConnection
from movierec.http.stats import ServerStats

__all__ = [
    "APPLICATION_JSON",
    "TEXT_PLAIN",
    "CloseConnection",
    "HTTPServer",
    "Handler",
    "Limits",
    "Request",
    "Response",
    "ServerThread",
    "new_event_loop",
    "run_forever",
]

log = logging.getLogger("movierec.http")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (several times faster), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class HTTPServer:
    """One listening socket serving `handler`; start() and stop() run inside an event loop."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: Limits | None = None,
        reuse_port: bool = False,
        backlog: int = 2048,
        sock: socket.socket | None = None,
        stats: ServerStats | None = None,
        **limit_overrides: Any,
    ) -> None:
        self.handler = handler
        self.host = host
        self._requested_port = port
        self.limits = dataclasses.replace(limits or Limits(), **limit_overrides)
        self.reuse_port = reuse_port
        self.backlog = backlog
        self._sock = sock
        self.connections: ConnectionTable[HTTPConnection] = ConnectionTable(
            self.limits.max_connections, self.limits.max_address_share
        )
        # Connections holding input or backed-up answers (counted in stats.buffered_bytes).
        self.holders: set[HTTPConnection] = set()
        # Tasks of async handlers in flight, so stop() can cancel and reap them.
        self.tasks: set[asyncio.Future[Any]] = set()
        # Connections whose pipelined rest waits for a turn, served in order, a bounded
        # number of requests per loop iteration (Limits.max_deferred_per_iteration).
        self._turns: collections.deque[HTTPConnection] = collections.deque()
        self._turns_scheduled = False
        self.server_stats = stats if stats is not None else ServerStats()
        self.counters = self.server_stats.counters
        # The listening sockets, accepted from by _accept (None before start).
        self._listeners: list[socket.socket] | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._port = 0
        self.loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one chosen by the OS when constructed with 0)."""
        if self._listeners is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._fit_connection_cap()
        if self._sock is not None:
            self._sock.listen(self.backlog)
            listeners = [self._sock]
        else:
            listeners = listen(self.host, self._requested_port, self.reuse_port, self.backlog)
        for listener in listeners:
            listener.setblocking(False)
            if self.limits.send_buffer:
                # Accepted sockets inherit it: a client that does not read leaves at most
                # this much in the kernel (loopback's default grows to megabytes), so
                # backpressure reaches us after a few dozen unread answers, not thousands.
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
            self.loop.add_reader(listener.fileno(), self._accept, listener)
        self._listeners = listeners
        self._port = listeners[0].getsockname()[1]
        lim = self.limits
        shortest = min(lim.keepalive_timeout, lim.header_timeout, lim.linger_timeout)
        # The sweep granularity bounds how late a timeout fires, at a quarter of the shortest.
        self._tick = min(1.0, max(0.02, shortest / 4))
        self._sweeper = self.loop.call_later(self._tick, self._sweep)

    def _accept(self, listener: socket.socket) -> None:
        """Accept the connections waiting, up to Limits.max_accepts_per_iteration. The
        loop's own server (libuv) accepts one per iteration: under a flood that makes each
        iteration long, newcomers then wait an iteration apiece, time out and reconnect,
        and the queue of stale connections outgrows the accepts (a site reconnecting after
        its timeouts lost every request). Accepting them together bounds a newcomer's
        wait at an iteration or two however many arrive."""
        for _ in range(self.limits.max_accepts_per_iteration):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # reset before we took it: the next one
                continue
            except OSError as error:  # out of descriptors or memory: pause, as asyncio does
                log.warning("accept failed (%s): pausing accepts for 1 s", error)
                self.loop.remove_reader(listener.fileno())
                self.loop.call_later(1.0, self._resume_accepting, listener)
                return
            conn.setblocking(False)
            task = self.loop.create_task(self._adopt(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if self._listeners is not None and listener in self._listeners:
            self.loop.add_reader(listener.fileno(), self._accept, listener)

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: HTTPConnection(self), conn)
        except OSError:  # the peer is already gone
            conn.close()

    def _fit_connection_cap(self) -> None:
        """Keep max_connections below the open-file limit: running out of descriptors makes
        accept() fail for everyone, whereas the cap answers the excess with a clean 503."""
        try:
            import resource  # POSIX only
        except ImportError:
            return
        wanted = self.limits.max_connections + 64  # listeners, logs, the model's files
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
            if soft < wanted:
                cap = max(1, soft - 64)
                log.warning("open-file limit %d: capping connections at %d", soft, cap)
                self.limits = dataclasses.replace(self.limits, max_connections=cap)
                self.connections = ConnectionTable(cap, self.limits.max_address_share)

    def defer(self, conn: HTTPConnection) -> None:
        """`conn` has pipelined requests left after its turn: queue it for a later one."""
        self._turns.append(conn)
        if not self._turns_scheduled:
            self._turns_scheduled = True
            self.loop.call_soon(self._run_turns)

    def _run_turns(self) -> None:
        """Serve queued connections in order until this iteration's budget is spent, then
        let the loop poll (accept, read, answer fresh requests) before going on."""
        self._turns_scheduled = False
        turns, counters = self._turns, self.counters
        budget = self.limits.max_deferred_per_iteration
        start = counters["requests"]
        # Each connection once at most: one deferred again goes to the back of the queue.
        for _ in range(len(turns)):
            if counters["requests"] - start >= budget:
                break
            turns.popleft().next_turn()
        if turns and not self._turns_scheduled:
            self._turns_scheduled = True
            self.loop.call_soon(self._run_turns)

    def shed(self) -> None:
        """Buffered memory went over max_buffered: drop the connections holding the most
        until a quarter of it is free again."""
        target = self.limits.max_buffered * 3 // 4
        for conn in sorted(self.holders, key=lambda c: c.held, reverse=True):
            if self.server_stats.buffered_bytes <= target:
                break
            conn.shed()

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            conn.check_timeouts(now)
        self._sweeper = self.loop.call_later(self._tick, self._sweep)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop accepting; close idle connections now and busy ones after `grace` seconds."""
        listeners = self._listeners
        if listeners is None:
            return
        for listener in listeners:
            self.loop.remove_reader(listener.fileno())
            listener.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        deadline = self.loop.time() + grace
        while True:
            for conn in list(self.connections):
                if conn.idle:
                    conn.close()
            if not self.connections or self.loop.time() >= deadline:
                break
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.abort()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        # Let the aborted connections' connection_lost callbacks run before returning.
        await asyncio.sleep(0)

    def stats(self) -> dict[str, int]:
        return {
            **self.counters,
            "connections_open": len(self.connections),
            "buffered_bytes": self.server_stats.buffered_bytes,
        }


class ServerThread:
    """Runs an HTTPServer on its own event loop in a daemon thread."""

    def __init__(self, server: HTTPServer, name: str = "http-server") -> None:
        self.server = server
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("server thread not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start the thread and return once the server is listening."""
        if self._thread is not None:
            raise RuntimeError("server thread already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("HTTP server did not start in time")
        if self._error is not None:
            self._thread.join()
            # The original error (an OSError for a taken port) so callers can catch it.
            raise self._error
        return self

    def _run(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float = 0.0, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        try:
            self.call(self.server.stop(grace), timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_forever(
    server: HTTPServer,
    *,
    grace: float = 5.0,
    ready: Callable[[HTTPServer], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests (up to `grace` s)."""

    async def main() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        log.info("listening on %s:%d", server.host, server.port)
        if ready is not None:
            ready(server)
        try:
            await stop.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await server.stop(grace)
            log.info("stopped %s:%d", server.host, server.port)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
