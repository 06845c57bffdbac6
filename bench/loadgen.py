"""A lean load generator: many WebSocket subscribers and an HTTP publisher on one epoll loop.

No asyncio and no WebSocket library on the receive path: the handshake is done by hand and server
frames (unmasked) are only split at their boundaries; a publication's latency is read from the send
timestamp (``time.time_ns()``) the publisher put first in its ``data`` as ``"bt"``. Every loop is
bounded by a deadline.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import resource
import select
import socket
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

CONNECTING, HANDSHAKE, SUBSCRIBING, READY, CLOSED = range(5)
MARK = b'"bt":'
TS_DIGITS = 19  # time.time_ns() has 19 digits until the year 2286
READ_SIZE = 1 << 18
HANDSHAKES_IN_FLIGHT = 100  # the server's listen backlog is 128


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client-to-server frame (RFC 6455 section 5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n <= 0xFFFF:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    body = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
    return head + mask + body


def cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Sub:
    __slots__ = ("sock", "fd", "port", "state", "buf", "hello")

    def __init__(self, port: int, hello: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.port = port
        self.state = CONNECTING
        self.buf = b""
        self.hello = hello  # auth + subscribe frames, sent once the handshake is answered


class Pub:
    """One keep-alive HTTP connection to the publish API; at most one request in flight."""

    __slots__ = ("sock", "fd", "busy", "buf")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = self.sock.fileno()
        self.busy = False
        self.buf = b""


@dataclass
class PhaseResult:
    published: int = 0
    publish_errors: int = 0
    delivered: int = 0
    window_deliveries: int = 0
    window_seconds: float = 0.0
    latencies_us: array = field(default_factory=lambda: array("q"))
    wall_seconds: float = 0.0
    generator_cpu: float = 0.0
    closed_during: int = 0

    @property
    def deliveries_per_second(self) -> float:
        return self.window_deliveries / self.window_seconds if self.window_seconds else 0.0

    def percentiles(self) -> dict[str, float]:
        lat = sorted(self.latencies_us)
        if not lat:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}

        def at(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000

        return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": lat[-1] / 1000}


class Generator:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.ep = select.epoll()
        self.subs: dict[int, Sub] = {}
        self.pubs: dict[int, Pub] = {}
        self.ready = 0
        self.closed = 0
        self.errors: list[str] = []
        self.delivered = 0
        self.latencies: array = array("q")
        self.other_frames = 0

    # -- connecting ------------------------------------------------------------------------------

    def connect(
        self,
        ports: list[int],
        tokens: list[str],
        timeout: float,
        since: int | None = None,
        in_flight_max: int = HANDSHAKES_IN_FLIGHT,
        refusals_ok: bool = False,
    ) -> float:
        """Open one subscriber per token (on ``ports[i % len(ports)]``), authenticate and subscribe
        (from ``since``, as a reconnecting client does, when given), with at most ``in_flight_max``
        joins under way. Returns the seconds it took; raises if not all are subscribed within
        ``timeout``, or if any was refused (unless ``refusals_ok``: then ``closed`` counts them)."""
        start = time.monotonic()
        deadline = start + timeout
        todo = list(enumerate(tokens))
        todo.reverse()
        in_flight = 0
        while self.ready + self.closed < len(tokens):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {self.ready}/{len(tokens)} subscribers ready after {timeout:.0f}s; "
                    f"{self.closed} closed; errors: {self.errors[:3]}"
                )
            while todo and in_flight < in_flight_max:
                i, token = todo.pop()
                subscribe: dict[str, Any] = {"type": "subscribe", "channel": self.channel}
                if since is not None:
                    subscribe["since"] = since
                hello = client_frame(json.dumps({"type": "auth", "token": token}).encode())
                hello += client_frame(json.dumps(subscribe).encode())
                sub = Sub(ports[i % len(ports)], hello)
                err = sub.sock.connect_ex(("127.0.0.1", sub.port))
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
                self.subs[sub.fd] = sub
                self.ep.register(sub.fd, select.EPOLLOUT)
                in_flight += 1
            for fd, ev in self.ep.poll(0.1, 1024):
                found = self.subs.get(fd)
                if found is None:
                    continue
                before = found.state
                self._setup_event(found, ev)
                if before < READY <= found.state:
                    in_flight -= 1
        if self.closed and not refusals_ok:
            raise RuntimeError(f"{self.closed} subscribers were refused; errors: {self.errors[:3]}")
        return time.monotonic() - start

    def _setup_event(self, sub: Sub, ev: int) -> None:
        if sub.state == CONNECTING:
            err = sub.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close(sub, f"connect: {os.strerror(err)}")
                return
            key = base64.b64encode(os.urandom(16)).decode()
            host = f"127.0.0.1:{sub.port}"
            sub.sock.send(
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n\r\n".encode()
            )
            sub.state = HANDSHAKE
            self.ep.modify(sub.fd, select.EPOLLIN)
            return
        try:
            data = sub.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(sub, str(exc))
            return
        if not data:
            self._close(sub, "closed by server during set-up")
            return
        if sub.state == HANDSHAKE:
            data = sub.buf + data
            head, sep, rest = data.partition(b"\r\n\r\n")
            if not sep:
                sub.buf = data
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self._close(sub, head.split(b"\r\n", 1)[0].decode(errors="replace"))
                return
            sub.buf = b""
            sub.state = SUBSCRIBING
            sub.sock.sendall(sub.hello)
            sub.hello = b""
            data = rest
        self._frames(sub, data, 0)

    def _close(self, sub: Sub, why: str) -> None:
        if sub.state == CLOSED:
            return
        if len(self.errors) < 20:
            self.errors.append(why)
        sub.state = CLOSED
        self.closed += 1
        self.ep.unregister(sub.fd)
        sub.sock.close()

    # -- receiving -------------------------------------------------------------------------------

    def _frames(self, sub: Sub, data: bytes, now: int) -> None:
        """Split ``data`` into frames; count deliveries and record their latency (microseconds)."""
        if sub.buf:
            data = sub.buf + data
            sub.buf = b""
        i, n = 0, len(data)
        while n - i >= 2:
            length = data[i + 1] & 0x7F
            if length < 126:
                start = i + 2
            elif length == 126:
                if n - i < 4:
                    break
                length = int.from_bytes(data[i + 2 : i + 4], "big")
                start = i + 4
            else:
                if n - i < 10:
                    break
                length = int.from_bytes(data[i + 2 : i + 10], "big")
                start = i + 10
            end = start + length
            if end > n:
                break
            opcode = data[i] & 0x0F
            if opcode == 1:
                j = data.find(MARK, start, end)
                if j >= 0 and sub.state == READY:
                    self.delivered += 1
                    self.latencies.append((now - int(data[j + 5 : j + 5 + TS_DIGITS])) // 1000)
                elif sub.state == SUBSCRIBING:
                    frame = data[start:end]
                    if b'"type":"subscribed"' in frame:
                        sub.state = READY
                        self.ready += 1
                    elif b'"type":"error"' in frame:
                        self.errors.append(frame.decode(errors="replace")[:200])
                else:
                    self.other_frames += 1
            elif opcode == 9:  # ping: answer so the server keeps the connection
                sub.sock.send(client_frame(data[start:end], 0xA))
            elif opcode == 8:
                self._close(sub, f"close frame {data[start:end][:2].hex()} {data[start + 2 : end][:80]!r}")
                return
            i = end
        if i < n:
            sub.buf = data[i:]

    # -- publishing ------------------------------------------------------------------------------

    def open_publishers(self, port: int, count: int, api_key: str) -> None:
        self._pub_head = (
            f"POST /api/channels/{self.channel}/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        ).encode()
        for _ in range(count):
            pub = Pub(port)
            self.pubs[pub.fd] = pub
            self.ep.register(pub.fd, select.EPOLLIN)

    def _publish(self, pub: Pub, seq: int, durable: bool) -> None:
        # "bt" first, so it is the first '"bt":' in the frame; ~200 bytes of data in all.
        body = b'{"type":"announcement","durable":%s,"data":{"bt":%d,"n":%d,"text":"%s"}}' % (
            b"true" if durable else b"false",
            time.time_ns(),
            seq,
            b"x" * 150,
        )
        pub.sock.send(self._pub_head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        pub.busy = True

    def _publisher_event(self, pub: Pub, result: PhaseResult) -> None:
        try:
            data = pub.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError("the server closed the publish connection")
        pub.buf += data
        while True:
            head, sep, rest = pub.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(rest) < length:
                return
            if b" 202 " not in head.split(b"\r\n", 1)[0]:
                result.publish_errors += 1
                if len(self.errors) < 20:
                    self.errors.append((head.split(b"\r\n", 1)[0] + rest[:length]).decode(errors="replace"))
            pub.buf = rest[length:]
            pub.busy = False

    # -- a measured phase ------------------------------------------------------------------------

    def run_phase(
        self,
        *,
        duration: float,
        msg_rate: float | None,
        durable: bool,
        in_flight: int,
        warmup: float,
        drain: float,
    ) -> PhaseResult:
        """Publish for ``duration`` seconds, at ``msg_rate`` messages/s or (None) as fast as the
        server answers with at most ``in_flight`` publishes outstanding; then wait up to ``drain``
        seconds for the deliveries still due. Deliveries/s is counted from ``warmup`` to the end."""
        result = PhaseResult()
        self.delivered = 0
        self.latencies = result.latencies_us
        closed_before = self.closed
        pubs = list(self.pubs.values())[:in_flight]
        cpu0, t0 = cpu_self(), time.monotonic()
        end = t0 + duration
        win_start = t0 + warmup
        win_count = None
        next_pub = t0
        subs, pubs_by_fd, poll = self.subs, self.pubs, self.ep.poll
        while True:
            now_m = time.monotonic()
            if win_count is None and now_m >= win_start:
                win_count, win_t = self.delivered, now_m
            if now_m >= end:
                break
            if msg_rate is None:
                for pub in pubs:
                    if not pub.busy:
                        self._publish(pub, result.published, durable)
                        result.published += 1
                timeout = min(0.05, end - now_m)
            else:
                for pub in pubs:
                    if next_pub > now_m:
                        break
                    if not pub.busy:
                        self._publish(pub, result.published, durable)
                        result.published += 1
                        next_pub += 1 / msg_rate
                timeout = max(0.0, min(next_pub - now_m, end - now_m, 0.05))
            self._poll_once(poll(timeout, 4096), subs, pubs_by_fd, result)
        result.window_deliveries = self.delivered - (win_count or 0)
        result.window_seconds = time.monotonic() - (win_t if win_count is not None else t0)
        # Drain: deliveries still due, and the last publish answers.
        due = lambda: result.published * (self.ready - (self.closed - closed_before))  # noqa: E731
        stop = time.monotonic() + drain
        while (self.delivered < due() or any(p.busy for p in pubs)) and time.monotonic() < stop:
            self._poll_once(poll(0.05, 4096), subs, pubs_by_fd, result)
        result.delivered = self.delivered
        result.wall_seconds = time.monotonic() - t0
        result.generator_cpu = cpu_self() - cpu0
        result.closed_during = self.closed - closed_before
        return result

    def _poll_once(
        self, events: list[tuple[int, int]], subs: dict[int, Sub], pubs: dict[int, Pub], result: PhaseResult
    ) -> None:
        now = time.time_ns()
        read = os.read
        lat = self.latencies
        delivered = 0
        for fd, _ev in events:
            sub = subs.get(fd)
            if sub is not None and sub.state == READY and not sub.buf:
                # Fast path: exactly one whole publication frame (126-65535 bytes of text).
                try:
                    data = read(fd, READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._close(sub, str(exc))
                    continue
                size = len(data)
                if size > 4 and data[0] == 0x81 and data[1] == 126 and size == 4 + (data[2] << 8 | data[3]):
                    j = data.find(MARK, 4)
                    if j >= 0:
                        delivered += 1
                        lat.append((now - int(data[j + 5 : j + 5 + TS_DIGITS])) // 1000)
                        continue
                if not data:
                    self._close(sub, "closed by server")
                    continue
                self._frames(sub, data, now)
                continue
            if sub is None:
                pub = pubs.get(fd)
                if pub is not None:
                    self._publisher_event(pub, result)
                continue
            try:
                data = read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._close(sub, str(exc))
                continue
            if not data:
                self._close(sub, "closed by server")
                continue
            self._frames(sub, data, now)
        self.delivered += delivered

    def close(self) -> None:
        for sub in self.subs.values():
            if sub.state != CLOSED:
                sub.sock.close()
        for pub in self.pubs.values():
            pub.sock.close()
        self.subs.clear()
        self.pubs.clear()
        self.ep.close()

    def summary(self) -> dict[str, Any]:
        return {"ready": self.ready, "closed": self.closed, "errors": self.errors[:5]}
