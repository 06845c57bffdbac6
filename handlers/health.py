"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.base import JsonHandler


class HealthHandler(JsonHandler):
    """``GET /healthz``: the process is alive and its loop answers."""

    def get(self) -> None:
        self.send({"status": "ok"})


class ReadyHandler(JsonHandler):
    """``GET /readyz``: 200 when every dependency answers and the server is not draining, else 503."""

    def initialize(
        self, checks: dict[str, Callable[[], Awaitable[bool]]], draining: Callable[[], bool]
    ) -> None:
        self.checks = checks
        self.draining = draining

    async def get(self) -> None:
        results = {name: await check() for name, check in self.checks.items()}
        draining = self.draining()
        ready = all(results.values()) and not draining
        self.send(
            {
                "status": "ready" if ready else "unavailable",
                "checks": results,
                "draining": draining,
            },
            200 if ready else 503,
        )
