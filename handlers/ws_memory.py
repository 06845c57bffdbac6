"""What a WebSocket keeps once its handshake is over, made small (issue 14: ≤ 10 KB a connection).

Tornado keeps, for the whole life of every open WebSocket, objects only the handshake needed: the
coroutines of the handshake (the handler's ``_execute``, ``get``, ``accept_connection``), suspended
above the frame loop; the HTTP/1.1 connection objects and the request's headers, reachable from
``handler.request``; and two empty ``collections.deque`` in the IOStream (760 bytes each). At
5,000 idle subscribers a process these are about half of its memory. Measured with
``python -m bench.memory --frames 8`` (bench/README.md, "Memory").

Nothing here changes what a connection does: frames are read by Tornado's own frame loop, in a task
of its own; writes go through the same IOStream methods.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

import tornado.httputil
import tornado.iostream
import tornado.websocket

log = logging.getLogger("realtime.ws")


class SmallQueue(list[Any]):
    """A list with deque's ``popleft`` for the IOStream's write queues: they hold one or two entries
    (the outbox keeps one write in flight), an empty list is 56 bytes, an empty deque 760."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


READERS: set[asyncio.Task[None]] = set()  # every open socket's frame loop


class Protocol(tornado.websocket.WebSocketProtocol13):
    """Tornado's RFC 6455 protocol whose frame loop runs in a task of its own, so that the
    handshake's coroutines end when the socket opens instead of waiting above the loop for the
    connection's whole life. The task's end is handled as ``accept_connection`` handled the loop's:
    cancelled or a malformed frame (``ValueError``) aborts; anything else is logged, then aborts."""

    async def _receive_frame_loop(self) -> None:
        # Held in READERS (asyncio keeps only weak references to tasks), not in a new attribute,
        # which would give this object a dict of its own (see handlers/ws.py, _State).
        reader = asyncio.get_running_loop().create_task(super()._receive_frame_loop())
        READERS.add(reader)
        reader.add_done_callback(self._reader_done)

    def on_connection_close(self) -> None:
        stream = self.stream
        super().on_connection_close()
        # A peer's reset is kept as ``stream.error``, whose traceback's frames hold the stream: a
        # reference cycle for every connection that ends so, which only a full collection (the
        # longest pause of the loop) frees. Nothing reads it once the connection has closed.
        if stream is not None:
            stream.error = None

    def _reader_done(self, task: asyncio.Task[None]) -> None:
        READERS.discard(task)
        if task.cancelled():
            self._abort()
            return
        exc = task.exception()
        if exc is None:
            return
        if not isinstance(exc, ValueError):
            log.error("websocket frame loop failed", exc_info=exc)
        self._abort()


_NO_HEADERS = tornado.httputil.HTTPHeaders()


def forget_handshake(request: tornado.httputil.HTTPServerRequest, stream: tornado.iostream.IOStream) -> None:
    """Drop what only the handshake needed, once the socket is open: the request's headers and its
    HTTP/1.1 connection objects (detached from the stream already: Tornado writes no more HTTP on
    it), and the stream's empty deques."""
    request.headers = _NO_HEADERS
    request.connection = None
    request.server_connection = None
    _small(getattr(stream, "_write_buffer", None), "_buffers")
    _small(stream, "_write_futures")


def _small(owner: object, name: str) -> None:
    """Replace ``owner.name`` if it is a deque (a Tornado without it is left as it is)."""
    queue = getattr(owner, name, None)
    if isinstance(queue, collections.deque):
        setattr(owner, name, SmallQueue(queue))
