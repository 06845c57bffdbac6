"""The listening sockets.

They are bound before anything else starts (the embedded database, the workers), so a bad ``HOST`` or
a port in use stops start-up with one line and leaves nothing behind. A supervisor binds them once and
its workers inherit them by file descriptor (:data:`LISTEN_FDS`).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

import tornado.netutil

from config import ConfigError

# Set by the supervisor in a worker's environment: the inherited listening sockets, comma-separated.
LISTEN_FDS = "SERVER_LISTEN_FDS"


class ListenError(ConfigError):
    """The server cannot listen where its settings say; the message names the setting in one line."""


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host``:``port`` (several when a name has IPv4 and IPv6 addresses)."""
    try:
        return tornado.netutil.bind_sockets(port, host or None)
    except socket.gaierror as exc:
        raise ListenError(f"HOST: cannot listen on {host!r}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"PORT: {host}:{port} is already in use (is another server running?)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ListenError(f"HOST: {host} is not an address of this machine") from None
        if exc.errno == errno.EACCES:
            raise ListenError(f"PORT: not allowed to listen on port {port}") from None
        raise ListenError(f"HOST/PORT: cannot listen on {host}:{port}: {exc.strerror}") from None


def inherited(environ: Mapping[str, str]) -> list[socket.socket]:
    """The sockets a supervisor handed this worker, or ``[]`` when it was not started as one."""
    fds = environ.get(LISTEN_FDS, "")
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",") if fd]


def bound_port(sockets: list[socket.socket]) -> int:
    return int(sockets[0].getsockname()[1])
