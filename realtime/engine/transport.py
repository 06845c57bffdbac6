"""The seam between a live session (realtime/engine/session.py) and the transport that carries it
(handlers/ws.py, handlers/sse.py): what a transport offers the session, and the hot path the hub
calls to hand it publications."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from realtime.engine.publication import Publication

Push = Callable[[bytes, bool, list[Publication]], None]


def push_nothing(frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
    """The hot path of a session whose transport is not open yet."""
    return None


class Transport(Protocol):
    """The framing side of a live connection."""

    @property
    def remote_ip(self) -> str: ...

    @property
    def transport_name(self) -> str:
        """``ws`` or ``sse``: how metrics count the connection."""

    def deliver(self, pub: Publication) -> None:
        """Frame and send one publication."""

    def send_json(self, msg: dict[str, Any]) -> None:
        """Frame and send one session message (``subscribed``, ``error``, ``rpc_result``...)."""

    def close(self, code: int, reason: str) -> None:
        """End the connection with ``code``; the transport calls ``Session.closed`` once it has."""

    def abort(self) -> None:
        """End the connection now (``Session.closed`` follows), not waiting for the peer."""

    def send_ping(self) -> None: ...

    def answered_since_ping(self) -> bool: ...


class Ended:
    """The transport of a session whose connection has ended and left its channels: it sends
    nothing. A session keeps this instead of its transport, which refers back to it (a reference
    cycle per connection, which only a full collection of the garbage collector frees)."""

    __slots__ = ("remote_ip", "transport_name")

    def __init__(self, transport: Transport) -> None:
        self.remote_ip = transport.remote_ip
        self.transport_name = transport.transport_name

    def deliver(self, pub: Publication) -> None:
        return None

    def send_json(self, msg: dict[str, Any]) -> None:
        return None

    def close(self, code: int, reason: str) -> None:
        return None

    def abort(self) -> None:
        return None

    def send_ping(self) -> None:
        return None

    def answered_since_ping(self) -> bool:
        return True
