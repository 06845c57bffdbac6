"""The test suite's Server-Sent Events client: an EventSource stand-in over a plain socket.

It speaks HTTP/1.1, where the server sends the stream with chunked transfer encoding, or HTTP/1.0,
where the stream is the raw bytes until the connection ends. Chunks are decoded strictly: a stream
that is not correctly framed fails the wait that reads it, instead of being parsed around.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

TIMEOUT = 30.0  # a hang guard: a busy machine (both cores loaded) once took over 10 s


class EventStream:
    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []  # {"data", and "event", "id" when given}
        self.status = 0
        self.error: dict[str, Any] | None = None  # the JSON error of a refused stream
        self.chunked = False
        self.ended = False  # the server ended the response (last chunk, or end of connection)
        self._failure: Exception | None = None
        self._changed = asyncio.Event()
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None

    async def open(
        self,
        base_url: str,
        ticket: str,
        channels: list[str],
        last_event_id: str | None = None,
        version: str = "1.1",
        receive_buffer: int | None = None,
        read: bool = True,
    ) -> EventStream:
        """``GET /sse``; ``receive_buffer`` shrinks the socket's receive buffer (a slow reader),
        ``read=False`` reads nothing after the response head until :meth:`read` is called."""
        host, port = base_url.split("//")[1].split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", int(port)))
        self._reader, self._writer = await asyncio.open_connection(sock=sock)
        query = "&".join(f"channel={c}" for c in channels)
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        self._writer.write(
            f"GET /sse?ticket={ticket}&{query} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n".encode()
        )
        head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.status = int(head.split()[1])
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])
        }
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        if self.status != 200:
            length = int(headers.get("content-length", "0"))
            self.error = json.loads(await self._reader.readexactly(length))["error"]
            return self
        if read:
            self.read()
        return self

    def read(self) -> None:
        """Start reading the stream."""
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            if self.chunked:
                await self._read_chunks()
            else:
                while data := await self._reader.read(65536):
                    self._feed(data)
            self.ended = True
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # we closed it
        except ValueError as exc:  # a chunk that is not framed as one
            self._failure = exc
        finally:
            self._changed.set()

    async def _read_chunks(self) -> None:
        while True:
            line = await self._reader.readuntil(b"\r\n")
            size = int(line[:-2], 16)  # ValueError when the framing is lost
            data = await self._reader.readexactly(size)
            if await self._reader.readexactly(2) != b"\r\n":
                raise ValueError(f"chunk of {size} bytes not followed by CRLF")
            if size == 0:
                return
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            event: dict[str, str] = {}
            for line in block.decode().split("\n"):
                key, _, value = line.partition(": ")
                if key and not key.startswith(":"):
                    event[key] = value
            if "data" in event:
                self.events.append(event)
                self._changed.set()

    async def _until(self, done: Any, timeout: float) -> None:
        async def wait() -> None:
            while not done():
                if self._failure is not None:
                    raise self._failure
                if self.ended or (self._task is not None and self._task.done()):
                    raise ConnectionError("the stream ended while waiting")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def wait(self, n: int, timeout: float = TIMEOUT) -> list[dict[str, str]]:
        """The events so far, once there are at least ``n``."""
        await self._until(lambda: len(self.events) >= n, timeout)
        return self.events

    async def event(self, name: str, timeout: float = TIMEOUT, start: int = 0) -> dict[str, Any]:
        """The data of the first event called ``name`` (from the ``start``-th on), once it came."""

        def found() -> dict[str, Any] | None:
            for event in self.events[start:]:
                if event.get("event") == name:
                    return json.loads(event["data"])
            return None

        await self._until(lambda: found() is not None, timeout)
        return found() or {}

    async def end(self, timeout: float = TIMEOUT) -> list[dict[str, str]]:
        """Every event, once the server has ended the stream (correctly framed to its end)."""
        await self._until(lambda: self.ended, timeout)
        if self._failure is not None:
            raise self._failure
        return self.events

    def data(self) -> list[dict[str, Any]]:
        """The publications received (the JSON of every unnamed event)."""
        return [json.loads(e["data"]) for e in self.events if "event" not in e]

    async def close(self) -> None:
        self._writer.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


async def ticket_for(http_client: Any, base_url: str, token: str) -> str:
    """A single-use stream ticket for ``token`` (``POST /api/realtime/tickets``)."""
    resp = await http_client.fetch(
        base_url + "/api/realtime/tickets",
        method="POST",
        body="",
        headers={"Authorization": f"Bearer {token}"},
    )
    return json.loads(resp.body)["ticket"]
