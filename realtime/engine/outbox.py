"""A connection's bounded outgoing buffer and the direct-write fast path.

When nothing is queued, a frame goes straight to the socket with one ``send`` (no future, no task);
what the kernel does not take is queued. Queued frames are coalesced into one stream write at a time.

Policy when full (``limit`` bytes queued): droppable (ephemeral) frames are refused first, and queued
ephemeral frames are discarded to make room for a durable one; if a durable frame still does not fit,
``on_overflow`` is called (the connection closes with 4008 and the client recovers from history).

The outbox writes its frames to the stream as they are: a transport whose stream carries another
framing (an HTTP/1.1 chunked response, handlers/sse.py) hands it frames already framed for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tornado.iostream import IOStream, StreamClosedError

from realtime import metrics


class Outbox:
    __slots__ = (
        "_stream",
        "_queue",
        "_queued",
        "_inflight",
        "limit",
        "dropped",
        "_on_overflow",
        "_on_error",
        "closed",
    )

    def __init__(
        self, stream: IOStream, limit: int, on_overflow: Callable[[], None], on_error: Callable[[], None]
    ) -> None:
        self._stream = stream
        self._queue: list[tuple[bytes, bool]] = []  # a list, not a deque: 56 bytes empty, not 600
        self._queued = 0  # bytes in _queue
        self._inflight = 0  # bytes handed to the stream and not yet written
        self.limit = limit
        self.dropped = 0
        self._on_overflow = on_overflow
        self._on_error = on_error
        self.closed = False

    @property
    def buffered(self) -> int:
        return self._queued + self._inflight

    def send(self, frame: bytes, droppable: bool, _pubs: Any = None) -> None:
        """Send ``frame`` (``_pubs`` is ignored: the signature matches the hub's ``push``)."""
        if self.closed:
            return
        if not self._queue and not self._inflight:
            stream = self._stream
            if not stream.writing():
                sock = stream.socket
                if sock is None:
                    return
                try:
                    sent = sock.send(frame)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self.closed = True
                    self._on_error()
                    return
                if sent == len(frame):
                    return
                # The rest of a frame already started must follow whatever happens.
                self._queue.append((frame[sent:], False))
                self._queued += len(frame) - sent
                self._flush()
                return
        size = len(frame)
        if self.buffered + size > self.limit:
            if droppable:
                self.dropped += 1
                metrics.DROPPED.inc()
                return
            self._discard_droppable()
            if self.buffered + size > self.limit:
                self.closed = True
                self._queue.clear()
                self._queued = 0
                metrics.SLOW_CONSUMER_CLOSES.inc()
                self._on_overflow()
                return
        self._queue.append((frame, droppable))
        self._queued += size
        if not self._inflight:
            self._flush()

    def finish(self) -> None:
        """Hand everything queued to the stream now and accept nothing more, so that what the
        stream's owner writes next (an HTTP response's last chunk) follows every queued frame."""
        if not self.closed and self._queue:
            data = b"".join(f for f, _ in self._queue)
            self._queue.clear()
            self._queued = 0
            with contextlib.suppress(StreamClosedError):
                self._stream.write(data)
        self.closed = True

    def abort(self) -> None:
        """End the connection now: close the socket (its reader sees the end and the owner's close
        follows), whatever is still queued or in flight."""
        self._stream.close()

    def close(self) -> None:
        """The connection has ended: accept nothing more, and let go of the owner's callbacks (the
        owner holds this outbox: a reference cycle per connection, for a full collection to free)."""
        self.closed = True
        self._queue = []
        self._queued = 0
        self._on_overflow = self._on_error = _nothing

    def _discard_droppable(self) -> None:
        kept = [item for item in self._queue if not item[1]]
        self.dropped += len(self._queue) - len(kept)
        metrics.DROPPED.inc(len(self._queue) - len(kept))
        self._queue = kept
        self._queued = sum(len(f) for f, _ in kept)

    def _flush(self) -> None:
        if not self._queue or self.closed:
            return
        data = b"".join(f for f, _ in self._queue) if len(self._queue) > 1 else self._queue[0][0]
        self._queue.clear()
        self._queued = 0
        self._inflight = len(data)
        try:
            future = self._stream.write(data)
        except StreamClosedError:
            self.closed = True
            self._on_error()
            return
        future.add_done_callback(self._written)

    def _written(self, future: Any) -> None:
        self._inflight = 0
        if future.exception() is not None:
            self.closed = True
            self._on_error()
            return
        self._flush()


def _nothing() -> None:
    return None
