"""Kick control: ending a user's subscriptions or connections on every process.

A kick travels on the broker's ``$control`` channel in the wire format of an ephemeral publication
(``|`` + JSON), so every process, the kicking one included, applies it to its own connections (one
path, one process or many). When the broker is down the kick is applied on this process only: bans
are checked again on every subscribe and revoked tokens on every ``auth``, so the user's other
processes refuse them on their next attempt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from realtime.engine.broker import Broker, BrokerUnavailable
from realtime.engine.publication import encode

log = logging.getLogger("realtime.engine.control")

CONTROL = "$control"

# (channel or "*", user_id, close code, reason, jti or None): end the matching local connections.
KickLocal = Callable[[str, str, int, str, str | None], None]


class Control:
    def __init__(self, broker: Broker, kick_local: KickLocal) -> None:
        self.broker = broker
        self._kick_local = kick_local

    async def start(self) -> None:
        await self.broker.subscribe(CONTROL)

    async def kick(self, channel: str, user_id: str, code: int, reason: str, jti: str | None = None) -> None:
        msg = {"op": "kick", "channel": channel, "user": user_id, "code": code, "reason": reason, "jti": jti}
        try:
            await self.broker.publish(CONTROL, b"|" + encode(msg))
        except BrokerUnavailable:
            self._kick_local(channel, user_id, code, reason, jti)

    def receive(self, payload: bytes) -> None:
        """A message on ``$control`` (from any process)."""
        try:
            msg = json.loads(payload.partition(b"|")[2])
            if msg.get("op") == "kick":
                self._kick_local(
                    msg["channel"], msg["user"], int(msg["code"]), str(msg["reason"]), msg.get("jti")
                )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("malformed control message ignored")
