"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.base import JsonHandler
from storage.errors import Kind, Refused


def _no_warnings() -> list[str]:
    return []


class HealthHandler(JsonHandler):
    """``GET /healthz``: the process is alive and its loop answers."""

    def get(self) -> None:
        self.send({"status": "ok"})


class ReadyHandler(JsonHandler):
    """``GET /readyz``: 200 when every dependency answers, else 503 naming the failed checks; 503
    ``{"error": {"code": "draining"}}`` from the moment a stop is asked for (realtime/process/drain.py).
    ``warnings`` are problems that do not make the process unready, such as processes sharing the
    database without a cross-process broker (realtime/process/registry.py)."""

    def initialize(
        self,
        checks: dict[str, Callable[[], Awaitable[bool]]],
        draining: Callable[[], bool],
        warnings: Callable[[], list[str]] = _no_warnings,
    ) -> None:
        self.checks = checks
        self.draining = draining
        self.warnings = warnings

    async def get(self) -> None:
        if self.draining():
            raise Refused(
                Kind.UNAVAILABLE, "draining", "the server is shutting down; send new clients elsewhere"
            )
        results = {name: await check() for name, check in self.checks.items()}
        ready = all(results.values())
        self.send(
            {
                "status": "ready" if ready else "unavailable",
                "checks": results,
                "draining": False,
                "warnings": self.warnings(),
            },
            200 if ready else 503,
        )
