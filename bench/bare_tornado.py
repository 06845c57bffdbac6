"""The joins benchmark's baseline: a bare Tornado server that accepts a WebSocket on ``/ws`` and
answers each ``auth`` and ``subscribe`` frame with a pre-built frame, and ``GET /healthz``.

No token check, no database, no hub: what a join costs in Tornado's own handshake and framing, the
floor the product's join is measured against (bench/joins.py). ``PORT`` from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import tornado.web
import tornado.websocket


def compact(msg: dict[str, object]) -> str:
    return json.dumps(msg, separators=(",", ":"))  # as the server writes JSON


WELCOME = compact({"type": "welcome", "conn": "bare", "user": "bare", "role": "attendee", "exp": 0})
PONG = compact({"type": "pong", "ts": 0})


class Socket(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def on_message(self, message: str | bytes) -> None:
        msg = json.loads(message)
        kind = msg.get("type")
        if kind == "auth":
            self.write_message(WELCOME)
        elif kind == "subscribe":
            channel = str(msg.get("channel", ""))[:140]
            since = msg.get("since")
            seq = since if isinstance(since, int) else 0
            self.write_message(compact({"type": "subscribed", "channel": channel, "seq": seq}))
        elif kind == "ping":
            self.write_message(PONG)


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"status": "ok"})


async def main() -> None:
    app = tornado.web.Application([("/ws", Socket), ("/healthz", Health)], websocket_ping_interval=0)
    # the default listen backlog (128), as the server has
    server = app.listen(int(os.environ.get("PORT", "8899")), "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main())
