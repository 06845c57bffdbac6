"""A publication encoded once: its JSON text and its WebSocket frame are built on first use and then
shared by every subscriber (no per-connection encoding)."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from storage.history import Entry

_TS = re.compile(rb',"ts":(\d+)')
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented, uncompressed server-to-client text frame (RFC 6455)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def encode(obj: Any) -> bytes:
    return _dumps(obj).encode()


class Publication:
    __slots__ = ("channel", "seq", "json", "_frame")

    def __init__(self, channel: str, seq: int | None, json_bytes: bytes) -> None:
        self.channel = channel
        self.seq = seq  # None for ephemeral messages
        self.json = json_bytes
        self._frame: bytes | None = None

    @property
    def durable(self) -> bool:
        return self.seq is not None

    @classmethod
    def build(cls, channel: str, type: str, data: Any, ts: int, seq: int | None) -> Publication:
        body: dict[str, Any] = {"type": type, "channel": channel, "data": data, "ts": ts}
        if seq is not None:
            body["seq"] = seq
        return cls(channel, seq, encode(body))

    @classmethod
    def from_entry(cls, entry: Entry) -> Publication:
        return cls.build(entry.channel, entry.type, entry.data, entry.ts, entry.seq)

    @property
    def ts(self) -> int:
        """The publish time in epoch ms, read from the encoded JSON: its last ``"ts"`` key is the
        envelope's (``data`` comes before it, and a key inside a string would be escaped)."""
        found = _TS.match(self.json, self.json.rfind(b',"ts":'))
        return int(found.group(1)) if found else 0

    @property
    def ws_frame(self) -> bytes:
        if self._frame is None:
            self._frame = ws_text_frame(self.json)
        return self._frame

    # Broker wire format: "<seq or empty>|<json>" so a receiving process needs no JSON parse.
    def to_wire(self) -> bytes:
        return (str(self.seq).encode() if self.seq is not None else b"") + b"|" + self.json

    @classmethod
    def from_wire(cls, channel: str, payload: bytes) -> Publication:
        head, _, body = payload.partition(b"|")
        return cls(channel, int(head) if head else None, body)
