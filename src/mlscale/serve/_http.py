"""A lean HTTP/1.1 server on asyncio (uvloop when installed) with the ``httptools`` parser.

Why not an ASGI server: on one core, a general ASGI stack spends most of its
time on per-request machinery (a task, scope dicts, message dicts, awaits); the
benchmark in ``benchmarks/serve.py`` measures it. Here a request is parsed by
llhttp (C), handed to the application as one small object, and answered with
one ``write``; replies may come later (after a micro-batch) and are written in
request order, so pipelining and keep-alive are correct.

Protection built in: limits on the URL, the headers and the body (413 as soon
as ``Content-Length`` says too much); against slow clients, deadlines that no
trickle of bytes can push back: the whole request head must arrive within
``head_timeout`` of its first byte (a new connection's first request, of the
connection), the body within ``body_timeout`` of the head and at no less than
``min_body_rate`` bytes a second after its first ``body_grace`` seconds (a
client sending a byte every few seconds is cut off, 408, as early as it can be
told apart from a slow one); an idle keep-alive timeout, a cap on connections,
on requests in flight per connection and on unsent output (reading pauses until
the client reads). The deadlines are checked once a second.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol, cast

import httptools

__all__ = ["Connection", "Handler", "Limits", "Request", "Server"]

log = logging.getLogger("mlscale.serve")

JSON = b"application/json"
Headers = Iterable[tuple[bytes, bytes]]

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may ask of the server."""

    max_body: int = 1 << 20
    max_url: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    read_timeout: float = 30.0
    head_timeout: float = 10.0
    body_timeout: float = 60.0
    min_body_rate: float = 4096.0
    body_grace: float = 2.0
    keepalive_timeout: float = 75.0
    max_connections: int = 10_000
    max_pipeline: int = 64
    write_buffer_high: int = 1 << 20


class Request:
    """One parsed request: only what the service looks at."""

    __slots__ = (
        "authorization",
        "body",
        "conn",
        "keep_alive",
        "method",
        "response",
        "start",
        "timeout_ms",
        "url",
    )

    def __init__(self, conn: Connection, start: float) -> None:
        self.conn = conn
        self.start = start
        self.method = b""
        self.url = b""
        self.authorization: bytes | None = None
        self.timeout_ms: bytes | None = None
        self.body = b""
        self.keep_alive = True
        self.response: bytes | None = None


class Handler(Protocol):
    """What the server calls for each complete request (it answers with :meth:`Connection.respond`)."""

    def handle(self, request: Request) -> None: ...


class _TooLargeError(Exception):
    pass


class _BadHeadersError(Exception):
    pass


class Connection(asyncio.Protocol):
    """One client connection: parses requests, keeps their replies in order."""

    __slots__ = (
        "_body",
        "_body_since",
        "_body_size",
        "_current",
        "_eof",
        "_failed",
        "_head_since",
        "_header_bytes",
        "_headers",
        "_paused_reading",
        "_paused_writing",
        "_pending",
        "_url",
        "last_active",
        "parser",
        "server",
        "transport",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._pending: deque[Request] = deque()
        self._current: Request | None = None
        self._url: list[bytes] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers = 0
        self._header_bytes = 0
        self._eof = False
        self._failed = False
        self._paused_reading = False
        self._paused_writing = False
        self.last_active = time.monotonic()
        # When the head being awaited began (None: idle between keep-alive requests), and the body.
        self._head_since: float | None = self.last_active
        self._body_since: float | None = None

    # -- transport events ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        server = self.server
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=server.limits.write_buffer_high)
        server.connections.add(self)
        if len(server.connections) > server.limits.max_connections:
            self._fail(503, b"too many connections", retry_after=1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self._pending.clear()

    def pause_writing(self) -> None:
        self._paused_writing = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return  # discarding the rest of a refused request
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as err:
            cause = err.__context__
            if isinstance(cause, _TooLargeError):
                self._fail(413, str(cause).encode())
            elif isinstance(cause, _BadHeadersError):
                self._fail(431, str(cause).encode())
            else:
                log.error("request handling failed", exc_info=cause)
                self._fail(500, b"internal error")
        except httptools.HttpParserUpgrade:
            self._fail(400, b"protocol upgrades are not supported")
        except httptools.HttpParserError as err:
            self._fail(400, f"malformed HTTP request: {err}".encode())

    def eof_received(self) -> bool | None:
        # The client has finished sending; answer what is in flight, then close.
        if not self._pending and self.transport is not None:
            self.transport.close()
        else:
            self._eof = True
        return True

    # -- parser callbacks (httptools calls only those defined) -----------------------

    def on_message_begin(self) -> None:
        now = time.monotonic()
        self._current = Request(self, now)
        if self._head_since is None:
            self._head_since = now
        self._body_since = None
        self._url.clear()
        self._body.clear()
        self._body_size = 0
        self._headers = 0
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._header_bytes += len(url)
        if self._header_bytes > self.server.limits.max_url:
            raise _BadHeadersError(f"the URL is longer than {self.server.limits.max_url} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        self._header_bytes += len(name) + len(value)
        limits = self.server.limits
        if self._headers > limits.max_headers or self._header_bytes > limits.max_header_bytes:
            raise _BadHeadersError("request headers too large")
        req = self._current
        assert req is not None
        lname = name.lower()
        if lname == b"authorization":
            req.authorization = value
        elif lname == b"content-length":
            try:
                size = int(value)
            except ValueError:
                return  # llhttp rejects it itself
            if size > limits.max_body:
                raise _TooLargeError(f"the body ({size} bytes) is larger than the limit of {limits.max_body} bytes")
        elif lname == b"x-request-timeout-ms":
            req.timeout_ms = value
        elif lname == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._body_since = time.monotonic()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.server.limits.max_body:
            raise _TooLargeError(f"the body is larger than the limit of {self.server.limits.max_body} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        req = self._current
        assert req is not None
        self._current = None
        self._head_since = self._body_since = None
        parser = self.parser
        req.method = parser.get_method()
        req.url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        if self._body:
            req.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req.keep_alive = parser.should_keep_alive()
        self._pending.append(req)
        if len(self._pending) >= self.server.limits.max_pipeline:
            self._update_reading()
        self.server.handler.handle(req)

    # -- replies -----------------------------------------------------------------------

    def respond(
        self,
        req: Request,
        status: int,
        body: bytes,
        headers: Headers = (),
        content_type: bytes = JSON,
    ) -> None:
        """Answer ``req``; replies go out in request order."""
        if self._failed or self.transport is None:
            return
        close = not req.keep_alive or self._eof or self.server.draining
        head = [
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\ndate: %s\r\n"
            % (status, _REASONS.get(status, b"Unknown"), content_type, len(body), self.server.date)
        ]
        for name, value in headers:
            head.append(b"%s: %s\r\n" % (name, value))
        if close:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if req.method != b"HEAD":
            head.append(body)
        req.response = b"".join(head)
        pending = self._pending
        if pending and pending[0] is req and len(pending) == 1:
            pending.popleft()
            self._write(req.response, close)
            if self._eof and self.transport is not None:
                self.transport.close()
            return
        while pending and pending[0].response is not None:
            done = pending.popleft()
            assert done.response is not None
            self._write(done.response, not done.keep_alive)
        if self._eof and not pending and self.transport is not None:
            self.transport.close()
        self._update_reading()

    def _write(self, data: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(data)
        if close:
            self._pending.clear()
            transport.close()
            self.transport = None

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None:
            return
        want_pause = self._paused_writing or len(self._pending) >= self.server.limits.max_pipeline
        if want_pause and not self._paused_reading:
            transport.pause_reading()
            self._paused_reading = True
        elif not want_pause and self._paused_reading:
            transport.resume_reading()
            self._paused_reading = False

    def _fail(self, status: int, message: bytes, retry_after: int | None = None) -> None:
        """Answer a request that cannot be parsed or accepted, then close the connection."""
        transport = self.transport
        if transport is None or self._failed:
            return
        self._failed = True
        self._pending.clear()
        body = b'{"error":{"status":%d,"message":"%s"}}' % (status, message.replace(b'"', b"'"))
        extra = b"retry-after: %d\r\n" % retry_after if retry_after else b""
        transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"date: %s\r\n%sconnection: close\r\n\r\n%s"
            % (status, _REASONS.get(status, b"Error"), len(body), self.server.date, extra, body)
        )
        # Read and drop what the client is still sending for a moment, so that closing does not
        # reset the connection before it has read the answer.
        if self._paused_reading:
            transport.resume_reading()
            self._paused_reading = False
        self.server.loop.call_later(0.5, self._close_now)

    def refuse_unanswered(self, status: int, message: bytes) -> int:
        """Answer every request still waiting for its reply with ``status``, in order, then close."""
        waiting = [r for r in self._pending if r.response is None]
        if self.transport is None or not waiting:
            return 0
        body = b'{"error":{"status":%d,"message":"%s"}}' % (status, message.replace(b'"', b"'"))
        for req in waiting:
            req.keep_alive = False  # the answer to the last one closes the connection
            self.respond(req, status, body, ((b"retry-after", b"1"),))
        return len(waiting)

    def _close_now(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def check_timeouts(self, now: float) -> None:
        """Close the connection if its client is too slow sending a request, or idled too long."""
        if self.transport is None or self._failed or self._paused_reading:
            return  # paused: the server stopped reading, the client is not the slow one
        limits = self.server.limits
        idle = now - self.last_active
        head, body = self._head_since, self._body_since
        if head is not None and now - head > limits.head_timeout:
            if self._current is None:
                self.transport.close()  # connected and sent nothing: nobody to answer
            else:
                self._fail(408, b"the request head was not received in %d seconds" % limits.head_timeout)
        elif body is not None and self._current is not None:
            took = now - body
            if took > limits.body_timeout:
                self._fail(408, b"the request body was not received in %d seconds" % limits.body_timeout)
            elif took > limits.body_grace and self._body_size < limits.min_body_rate * (took - limits.body_grace):
                self._fail(408, b"the request body arrives slower than %d bytes a second" % limits.min_body_rate)
        elif self._current is not None and idle > limits.read_timeout:
            self._fail(408, b"the request was not received in time")
        elif not self._pending and self._current is None and idle > limits.keepalive_timeout:
            self.transport.close()


class Server:
    """Accepts connections on a listening socket and passes requests to ``handler``."""

    def __init__(self, handler: Handler, limits: Limits, loop: asyncio.AbstractEventLoop) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = loop
        self.connections: set[Connection] = set()
        self.date = formatdate(usegmt=True).encode()
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.TimerHandle | None = None
        #: Set when a graceful stop begins: every answer from then on closes its connection.
        self.draining = False
        #: Called once a second on the loop (gauges, housekeeping).
        self.on_tick: list[Callable[[], None]] = []

    async def start(self, sock: socket.socket, backlog: int = 2048) -> None:
        """Serve on the (bound, listening) socket ``sock``."""
        self._server = await self.loop.create_server(lambda: Connection(self), sock=sock, backlog=backlog)
        self._tick()

    def _tick(self) -> None:
        # Once a second: refresh the Date header and enforce the timeouts (cheaper than a timer each).
        self.date = formatdate(usegmt=True).encode()
        now = time.monotonic()
        for conn in list(self.connections):
            conn.check_timeouts(now)
        for hook in self.on_tick:
            hook()
        self._ticker = self.loop.call_later(1.0, self._tick)

    def stop_accepting(self) -> None:
        """Close the listening socket (a graceful stop drains the open connections next)."""
        if self._server is not None:
            self._server.close()

    def in_flight(self) -> int:
        """Requests received and not yet answered, over every connection."""
        return sum(len(c._pending) for c in self.connections)

    def close_idle(self) -> None:
        """Close connections with nothing in flight (called while draining)."""
        for conn in list(self.connections):
            if not conn._pending and conn._current is None and conn.transport is not None:
                conn.transport.close()

    def refuse_unanswered(self, status: int = 503, message: bytes = b"the server is shutting down") -> int:
        """Answer every request still waiting, on every connection (the end of a graceful stop); how many."""
        return sum(conn.refuse_unanswered(status, message) for conn in list(self.connections))

    def close(self) -> None:
        """Stop everything now."""
        if self._ticker is not None:
            self._ticker.cancel()
        self.stop_accepting()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()


def install_loop_policy() -> Callable[[], asyncio.AbstractEventLoop]:
    """The fastest event loop available: uvloop when installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop
    return uvloop.new_event_loop
