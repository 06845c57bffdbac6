"""The floor under any one-send-per-subscriber fan-out on this machine: a bare Python loop of
``sock.send(frame)`` over N loopback TCP connections whose peer (another process, on the other
core) reads everything with epoll, as the benchmark's load generator does.

``python -m bench.sendfloor --subscribers 5000 --messages 100``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import select
import socket
import sys
import time
from typing import Any

from bench.servers import raise_nofile


def pin(core: int) -> None:
    if (os.cpu_count() or 1) > max(core, 1):  # two cores at least; the child inherits the parent's
        os.sched_setaffinity(0, {core})


def reader(port: int, n: int, total: int, ready: Any) -> None:
    pin(1)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    ep = select.epoll()
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    ready.set()
    got = 0
    deadline = time.monotonic() + 120
    while got < total and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.1, 4096):
            got += len(os.read(fd, 1 << 18))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sendfloor", description=__doc__)
    p.add_argument("--subscribers", type=int, default=5000)
    p.add_argument("--messages", type=int, default=100)
    args = p.parse_args(argv)
    n, m = args.subscribers, args.messages
    raise_nofile(2 * n + 100)
    pin(0)
    frame = b"\x81\x7e\x00\xf0" + b"x" * 240  # a 244-byte text frame, like the benchmark's
    listener = socket.create_server(("127.0.0.1", 0), backlog=n)
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(
        target=reader, args=(listener.getsockname()[1], n, n * m * len(frame), ready), daemon=True
    )
    proc.start()
    try:
        conns = []
        for _ in range(n):
            conn, _addr = listener.accept()
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns.append(conn)
        ready.wait(60)
        ru0, wall = resource.getrusage(resource.RUSAGE_SELF), 0.0
        for _ in range(m):
            t0 = time.perf_counter()
            for conn in conns:
                conn.send(frame)
            wall += time.perf_counter() - t0
            time.sleep(0.01)  # the reader goes back to sleep in epoll between messages, as at 20 msg/s
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
        sends = n * m
        print(
            f"{sends:,} sends: {wall / sends * 1e6:.2f} µs wall per send, "
            f"{cpu / sends * 1e5:.2f} CPU-s per 100k "
            f"(user {(ru1.ru_utime - ru0.ru_utime) / sends * 1e5:.2f}, "
            f"system {(ru1.ru_stime - ru0.ru_stime) / sends * 1e5:.2f}); "
            f"one {n}-subscriber fan-out takes {wall / m * 1e3:.1f} ms"
        )
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
