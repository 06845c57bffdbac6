"""A real SMTP server for the tests: aiosmtpd's controller on a free TCP port, in its own thread.

It keeps every accepted message (parsed with the standard library's ``email`` parser) and can refuse
chosen recipients with any reply (``refuse["x@y"] = "550 5.1.1 no such user"``). ``stop()`` and
``start()`` take it down and bring it back on the same port. Tests await messages with
``await server.wait_for(n)``: the handler thread wakes the test's loop, nothing polls or sleeps.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self.server.refuse.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.server.accept(list(envelope.rcpt_tos), message, envelope.original_content)
        return "250 Message accepted"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.refuse: dict[str, str] = {}
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.raw: list[bytes] = []  # each message as received
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def accept(self, rcpts: list[str], message: Any, raw: bytes) -> None:
        with self._lock:
            self.messages.append((rcpts, message))
            self.raw.append(raw)
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    async def wait_for(self, count: int, timeout: float = 60.0) -> list[EmailMessage]:
        """Every message once ``count`` have arrived (TimeoutError after ``timeout`` seconds)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with self._lock:
                        if len(self.messages) >= count:
                            return [m for _, m in self.messages]
                        event.clear()
                    await event.wait()
        finally:
            with self._lock:
                self._waiters.remove(entry)
