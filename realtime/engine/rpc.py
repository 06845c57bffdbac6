"""Live actions sent over the WebSocket as ``{"type": "rpc", "id", "method", "params"}``.

Domains register methods (``chat.send``, ``poll.vote``...) on one registry; the WebSocket handler
dispatches to it and answers ``rpc_result`` or ``rpc_error`` with the same ``id``. The same service
functions back the REST API, so authorisation is decided in one place. A method that fails because
MongoDB is unreachable answers ``unavailable``, as its REST twin answers 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from realtime.auth.tokens import Claims
from storage.errors import outage


@dataclass
class RpcContext:
    claims: Claims
    connection_id: str
    remote_ip: str = ""


RpcMethod = Callable[[RpcContext, dict[str, Any]], Awaitable[Any]]


class RpcRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, RpcMethod] = {}

    def register(self, name: str, method: RpcMethod) -> None:
        if name in self._methods:
            raise ValueError(f"rpc method {name!r} registered twice")
        self._methods[name] = _outage_refused(method)

    def get(self, name: str) -> RpcMethod | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)


def _outage_refused(method: RpcMethod) -> RpcMethod:
    async def call(ctx: RpcContext, params: dict[str, Any]) -> Any:
        try:
            return await method(ctx, params)
        except Exception as exc:
            refused = outage(exc)
            if refused is None:
                raise
            raise refused from exc

    return call
