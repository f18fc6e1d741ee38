"""A TCP gate in front of the broker, to take it away from the services and give it back.

The embedded broker keeps its log in memory, so stopping it would lose every
topic. To cut services off from Kafka without losing the log, the broker
advertises the gate's address and every client connects through the gate;
``cut()`` drops all connections and refuses new ones until ``restore()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any


class BrokerGate:
    """Forwards ``127.0.0.1:listen_port`` to ``127.0.0.1:target_port`` from its own thread."""

    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.listen_port = listen_port
        self.target_port = target_port
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="gate")

    def start(self) -> BrokerGate:
        self._thread.start()
        self._call(self._serve())
        return self

    def cut(self) -> None:
        """Drop every connection through the gate and refuse new ones."""
        self._call(self._set_open(False))

    def restore(self) -> None:
        self._call(self._set_open(True))

    @property
    def is_open(self) -> bool:
        return self._open

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)

    async def _set_open(self, value: bool) -> None:
        self._open = value
        if not value:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

    async def _shutdown(self) -> None:
        await self._set_open(False)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for end in (writer, up_writer):
            self._writers.discard(end)
            end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while self._open:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
