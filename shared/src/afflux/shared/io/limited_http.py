"""uvicorn's httptools protocol with the bounds of ``HttpLimits`` enforced while reading.

uvicorn puts no limit on header size with httptools, and none on how slowly a
client may send: an 8 MB header was read (and copied, line by line) in full,
and a client sending one byte a second held its connection for ever. Here:

* the request line and headers are counted as they arrive (every read while the
  head is incomplete, and the whole head once parsed); crossing the limit
  answers 431 and closes, so at most one read (256 KiB) past the limit is held;
* a declared Content-Length above the body limit is answered 413 before the
  app runs; a chunked body is answered 413 when it crosses the limit;
* the head must arrive within ``header_timeout_seconds`` of the connection (or
  of the request's first byte on a reused connection) and the body within
  ``body_timeout_seconds`` of the head, else 408 and close;
* past ``max_connections`` open connections, a new one is answered 503 and closed, and
  past ``max_connections_per_address`` from one client address (an IPv6 client's /64;
  a trusted proxy's and this host's connections not counted) too: 1,010 connections trickling heads
  from one address held the cap, and 139 of 145 probes from others got the 503;
* a chunked body's trailer lines count against the header limit (431) and are
  dropped: uvicorn appended each to the request's headers, so one connection sending
  trailers for the body's 30 s grew a process by over a gigabyte;
* at most ``MAX_PIPELINED`` requests wait behind the one being answered; past them the
  connection closes once those are answered, the rest unread: uvicorn queued every
  request of a read (7,710 from 256 KiB of ``GET /healthz``), 17 MB a connection;
* an answer the client reads nothing of for ``body_timeout_seconds`` (the transport's
  buffer full, and nothing it or the kernel queued taken, all that time) closes the
  connection: a client pipelining requests and reading no answer held its connection
  for ever, no timer running while an answer waited to be written;
* a second ``Host`` header is a 400 (RFC 9112 §3.2);
* no WebSocket upgrade (``ws="none"``): no route takes one, and an upgraded
  connection left the connection count.

Timers are armed only for a request that did not arrive in one read, so the
common small request costs no timer at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import sys
import termios
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from afflux.shared.core.proxies import Network
from afflux.shared.io.http_limits import HttpLimits

REASONS = {
    400: b"more than one Host header",
    408: b"request not received in time",
    413: b"request body too large",
    431: b"request header fields too large",
    503: b"too many connections",
}


# Where the connection is in its current request (plain ints: compared on every read).
IDLE = 0  # between requests (or none yet)
HEAD = 1  # request line and headers arriving
BODY = 2  # headers done, body arriving


# Requests a connection may have waiting behind the one being answered. A browser does
# not pipeline; a client that does waits for answers long before this many.
MAX_PIPELINED = 32
PIPELINE_FULL = -1  # the refusal past it: the queued requests are answered, then the close


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the status is on the protocol."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()
    # Open connections per client address, of the server this class serves.
    by_address: ClassVar[dict[str, int]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = IDLE
        self._begun = 0  # requests begun on this connection
        self._head_bytes = 0  # bytes of reads that held only this request's head
        self._head_shared = 0  # bytes of reads that held its start after another request
        self._body_bytes = 0
        self._read_size = 0  # bytes of the read being parsed
        self._refusal = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._trailer_bytes = 0
        self._hosts = 0
        self._unread: asyncio.TimerHandle | None = None  # an answer waiting to be read
        self._answering: Any = None  # the request whose answer is being written
        self._address: str | None = None  # counted in ``by_address``

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503)
            return
        address = _address_of(transport, self.limits.trusted_proxies)
        if address is not None:
            open_now = self.by_address.get(address, 0)
            if open_now >= self.limits.max_connections_per_address:
                self._refuse(503)
                return
            self.by_address[address] = open_now + 1
            self._address = address
        self._arm(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._address is not None:
            left = self.by_address.pop(self._address, 1) - 1
            if left > 0:
                self.by_address[self._address] = left
            self._address = None
        # uvicorn marks only the newest request disconnected; with requests pipelined the
        # one being answered is an earlier one, whose next write then raised on the
        # closed transport (a traceback per request a client cut off).
        answering = self._answering
        if answering is not None and not answering.response_complete:
            answering.disconnected = True
            answering.message_event.set()
        if self._unread is not None:
            self._unread.cancel()
            self._unread = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._unread is None:
            self._watch_unread()

    def _watch_unread(self) -> None:
        self._unread = self.loop.call_later(
            self.limits.body_timeout_seconds, self._answers_unread, self._unsent()
        )

    def _unsent(self) -> int:
        """Bytes written and not yet taken by the client: the transport's buffer and the
        kernel's send queue, which holds megabytes on its own (a slow reader drains it
        long before the transport's buffer moves)."""
        unsent = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, ValueError):
                queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                unsent += int.from_bytes(queued, sys.byteorder, signed=True)
        return unsent

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._unread is not None:
            self._unread.cancel()
            self._unread = None

    def _answers_unread(self, unsent: int) -> None:
        # A client reading slowly drains what is queued for it, if not below the
        # transport's low mark (a large answer is written in one piece): it is given the
        # time again.
        if self._unsent() < unsent:
            self._watch_unread()
            return
        # Nothing was read: close() would wait for it for ever. The requests queued
        # behind the answer never start (``connection_lost`` ends that one).
        self._unread = None
        self.pipeline.clear()
        self.transport.abort()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._answering = cycle
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        if self._refusal:
            return
        self._unset_keepalive_if_required()
        phase, begun = self._phase, self._begun
        self._read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._refusal == PIPELINE_FULL:
                # The requests already queued are answered; the connection closes after
                # the last of them, and nothing more it sends is read.
                self._disarm()
                if self.cycle is not None:
                    self.cycle.keep_alive = False
                return
            if self._refusal:
                self._refuse(self._refusal)
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._phase == HEAD:
            # The whole read was this request's head when the head was already under
            # way, or when the read began between requests and began just this one.
            if (phase == HEAD and begun == self._begun) or (
                phase == IDLE and begun + 1 == self._begun
            ):
                self._head_bytes += len(data)
                if self._head_bytes > self.limits.max_header_bytes:
                    self._refuse(431)
                    return
            else:
                self._head_shared += len(data)
            if self._deadline is None:
                self._arm(self.limits.header_timeout_seconds)
        elif self._phase == BODY:
            if self._deadline is None:
                self._arm(self.limits.body_timeout_seconds)
        elif (
            self._deadline is None
            and self.timeout_keep_alive_task is None
            and (self.cycle is None or self.cycle.response_complete)
        ):
            # Bytes that begin no request (blank lines) must not keep a connection forever.
            self._arm(self.limits.header_timeout_seconds)

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn logged two warnings for every request with an Upgrade header (one naming
        # a missing WebSocket library): a log any client could flood. No route takes one;
        # the request is served as plain HTTP.
        self.logger.debug("Upgrade header ignored: no route takes an upgrade")

    def _bad_request(self) -> None:
        self._refusal = 400  # the parser cannot go on; later reads are dropped
        self._disarm()
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = HEAD
        self._begun += 1
        self._head_bytes = self._head_shared = self._body_bytes = 0
        self._trailer_bytes = self._hosts = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._phase == BODY:
            # A chunked body's trailer: bounded like a head, and not a request header.
            self._trailer_bytes += len(name) + len(value) + 4
            if self._trailer_bytes > self.limits.max_header_bytes:
                self._stop(431)
            return
        if len(name) == 4 and name.lower() == b"host":
            self._hosts += 1
            if self._hosts > 1:
                self._stop(400)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # A head completed in this read is measured here, once, rather than line by
        # line (the read is in memory already), and only when the reads it came in
        # could hold more than the limit: small requests stay cheap.
        if self._deadline is not None:
            self._disarm()
        limits = self.limits
        if self._head_bytes + self._head_shared + self._read_size > limits.max_header_bytes:
            size = _head_size(self.parser.get_method(), self.url, self.headers)
            if size > limits.max_header_bytes:
                self._stop(431)
        for name, value in self.headers:
            if name == b"content-length":
                if value.isdigit() and int(value) > limits.max_body_bytes:
                    self._stop(413)
                break
        if len(self.pipeline) >= MAX_PIPELINED:
            self._stop(PIPELINE_FULL)
        self._phase = BODY
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._stop(413)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._deadline is not None:
            self._disarm()
        self._phase = IDLE
        super().on_message_complete()

    def _stop(self, status: int) -> None:
        self._refusal = status
        raise _Refused

    # Timers

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self._phase == IDLE:
            # Nothing of a request arrived: an idle connection, closed without an answer.
            if not self.transport.is_closing():
                self.transport.close()
            return
        self._refuse(408)

    # Refusing

    def _refuse(self, status: int) -> None:
        """Answer ``status`` when the connection may still answer, then close it."""
        self._refusal = status
        self._disarm()
        if self.transport.is_closing():
            return
        if self._may_answer():
            body = REASONS[status]
            self.transport.write(
                b"".join(
                    (
                        STATUS_LINE[status],
                        b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: %d\r\n" % len(body),
                        b"connection: close\r\n\r\n",
                        body,
                    )
                )
            )
        self.transport.close()

    def _may_answer(self) -> bool:
        """No other response is in flight on this connection, nor can one start."""
        if self.pipeline:
            return False
        cycle = self.cycle
        if self._phase == BODY:
            # ``cycle`` is this request's: answered already (the app did not wait for
            # the body), or the app is reading the body; it then gets a disconnect and
            # its own answer, if any, is dropped.
            if cycle is None or cycle.response_started:
                return False
            cycle.disconnected = True
            cycle.message_event.set()
            return True
        # ``cycle`` is the previous request's, which may still be answering.
        return cycle is None or cycle.response_complete


def _address_of(transport: asyncio.Transport, trusted: tuple[Network, ...]) -> str | None:
    """The client address a connection counts against (an IPv6 address's /64: one host
    picks a new address in it at will); None for no IP peer, a trusted proxy, or this
    host (a proxy in front of the service, or its operator)."""
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client on a dual-stack socket
    if address.is_loopback or any(address in network for network in trusted):
        return None
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _head_size(method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes of the head as written canonically: ``GET /x HTTP/1.1``, ``Name: value``, CRLFs."""
    return len(method) + len(url) + 14 + sum(len(name) + len(value) + 4 for name, value in headers)


def limited_protocol(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=`` with these limits."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"limits": limits, "by_address": {}},
    )


def uvicorn_limits(limits: HttpLimits) -> dict[str, Any]:
    """``uvicorn.Config`` options that apply ``limits``."""
    return {
        "http": limited_protocol(limits),
        "timeout_keep_alive": limits.keep_alive_seconds,
        "ws": "none",
    }
