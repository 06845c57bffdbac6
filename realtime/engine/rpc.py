"""Live actions sent over the WebSocket as ``{"type": "rpc", "id", "method", "params"}``.

Domains register methods (``chat.send``, ``poll.vote``...) on one registry; a live session hands it
each ``rpc`` message and sends the answer, ``rpc_result`` or ``rpc_error`` with the same ``id``. The
same service functions back the REST API, so authorisation is decided in one place. A method that
fails because MongoDB is unreachable answers ``unavailable``, as its REST twin answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from realtime.auth.tokens import Claims
from storage.errors import Kind, Refused, outage

log = logging.getLogger("realtime.engine.rpc")


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

    async def answer(self, context: RpcContext, msg: dict[str, Any]) -> dict[str, Any]:
        """The envelope of one ``rpc`` message: ``rpc_result`` or ``rpc_error`` with its ``id``. A
        ``Refused`` from the method answers with its code; anything else is logged and answered
        ``internal_error``. A message without a usable ``id`` is ``Refused`` (``bad_message``)."""
        rid = msg.get("id")
        if not (isinstance(rid, int | str) and not isinstance(rid, bool) and len(str(rid)) <= 64):
            raise Refused(Kind.INVALID, "bad_message", "rpc needs an 'id' (number or short string)")
        name = msg.get("method")
        method = self.get(name) if isinstance(name, str) else None
        params = msg.get("params", {})
        if method is None:
            return _error(rid, "unknown_method", "no such method")
        if not isinstance(params, dict):
            return _error(rid, "invalid", "'params' must be an object")
        try:
            result = await method(context, params)
        except Refused as exc:
            return _error(rid, exc.code, exc.message, **exc.extra)
        except Exception:
            log.exception("rpc %s failed conn=%s", name, context.connection_id)
            return _error(rid, "internal_error", "internal error")
        return {"type": "rpc_result", "id": rid, "result": result}


def _error(rid: int | str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """``extra``: a ``Refused``'s further fields (``retry_after``, the ``choices`` a vote kept) beside
    ``code`` and ``message``."""
    return {"type": "rpc_error", "id": rid, "error": {**extra, "code": code, "message": message}}


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
