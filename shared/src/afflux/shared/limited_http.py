"""uvicorn's httptools protocol with the bounds of ``HttpLimits`` enforced while reading.

uvicorn puts no limit on header size with httptools, and none on how slowly a
client may send: an 8 MB header was read (and copied, line by line) in full,
and a client sending one byte a second held its connection for ever. Here:

* the request line and headers are counted as they arrive (whole chunks while
  the head is incomplete, and each parsed line); crossing the limit answers
  431 and closes, so at most one read (256 KiB) more than the limit is held;
* a declared Content-Length above the body limit is answered 413 before the
  app runs; a chunked body is answered 413 when it crosses the limit;
* the head must arrive within ``header_timeout_seconds`` of the connection (or
  of the request's first byte on a reused connection) and the body within
  ``body_timeout_seconds`` of the head, else 408 and close;
* past ``max_connections`` open connections, a new one is answered 503 and closed.

Timers are armed only for a request that did not arrive in one read, so the
common small request costs no timer at all.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from afflux.shared.http_limits import HttpLimits

REASONS = {
    408: b"request not received in time",
    413: b"request body too large",
    431: b"request header fields too large",
    503: b"too many connections",
}


class _Phase(enum.Enum):
    IDLE = 0  # between requests (or none yet)
    HEAD = 1  # request line and headers arriving
    BODY = 2  # headers done, body arriving


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the status is on the protocol."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _Phase.IDLE
        self._begun = 0  # requests begun on this connection
        self._head_chunks = 0  # bytes of reads that held only this request's head
        self._head_lines = 0  # bytes of its URL and parsed header lines
        self._body_bytes = 0
        self._refusal = 0
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503)
            return
        self._arm(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal:
            return
        self._unset_keepalive_if_required()
        phase, begun = self._phase, self._begun
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
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
        if self._phase is _Phase.HEAD:
            # The whole read was this request's head when the head was already under
            # way, or when the read began between requests and began just this one.
            if (phase is _Phase.HEAD and begun == self._begun) or (
                phase is _Phase.IDLE and begun + 1 == self._begun
            ):
                self._head_chunks += len(data)
                if self._head_chunks > self.limits.max_header_bytes:
                    self._refuse(431)
                    return
            if self._deadline is None:
                self._arm(self.limits.header_timeout_seconds)
        elif self._phase is _Phase.BODY:
            if self._deadline is None:
                self._arm(self.limits.body_timeout_seconds)
        elif (
            self._deadline is None
            and self.timeout_keep_alive_task is None
            and (self.cycle is None or self.cycle.response_complete)
        ):
            # Bytes that begin no request (blank lines) must not keep a connection forever.
            self._arm(self.limits.header_timeout_seconds)

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD
        self._begun += 1
        self._head_chunks = self._head_lines = self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_head(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self._declared_length() > self.limits.max_body_bytes:
            self._stop(413)
        self._phase = _Phase.BODY
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._stop(413)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = _Phase.IDLE
        super().on_message_complete()

    def _count_head(self, size: int) -> None:
        self._head_lines += size
        if self._head_lines > self.limits.max_header_bytes:
            self._stop(431)

    def _declared_length(self) -> int:
        for name, value in self.headers:
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0

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
        if self._phase is _Phase.IDLE:
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
        if self._phase is _Phase.BODY:
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


def limited_protocol(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=`` with these limits."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})


def uvicorn_limits(limits: HttpLimits) -> dict[str, Any]:
    """``uvicorn.Config`` options that apply ``limits``."""
    return {"http": limited_protocol(limits), "timeout_keep_alive": limits.keep_alive_seconds}
