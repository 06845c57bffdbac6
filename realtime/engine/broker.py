"""The broker seam: how a publication reaches every process that has subscribers for its channel.

Contract (every implementation: memory, one Redis or Sentinel, Redis Cluster):
- ``publish(channel, payload)`` hands ``payload`` to the ``on_message`` callback of every process
  subscribed to ``channel``, the publishing process included (one publish path, one process or many).
  Delivery is at most once; durability is the history layer's job (storage/history.py).
- Ordering is preserved per channel for one publisher; publishers on different processes interleave.
- ``subscribe``/``unsubscribe`` are idempotent and called by the hub on the first local subscriber
  and after the last one leaves. When ``subscribe`` returns, every later ``publish`` on the channel
  (from any process) reaches this one: the subscription is in force, not merely requested (or the
  broker is down, and ``on_recover`` follows its return). Subscribes and unsubscribes of a channel
  take effect in the order they were called.
- After an outage the broker resubscribes every live channel and calls ``on_recover(channels)`` so
  the layer above can repair the gap from history.
- ``publish`` raises ``BrokerUnavailable`` when the message could not be handed on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

MessageCallback = Callable[[str, bytes], None]
RecoverCallback = Callable[[list[str]], None]


class BrokerUnavailable(Exception):
    """The broker could not accept a publication (e.g. Redis is down)."""


class Broker(Protocol):
    async def start(self, on_message: MessageCallback, on_recover: RecoverCallback) -> None: ...

    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def publish_many(self, items: Iterable[tuple[str, bytes]]) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...
