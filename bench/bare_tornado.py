"""The benchmarks' baseline peer: a bare Tornado server that accepts a WebSocket on ``/ws``,
answers each ``auth`` and ``subscribe`` frame with a pre-built frame, serves ``GET /healthz``, and on
``POST /api/channels/<channel>/messages`` builds the publication's WebSocket frame once and writes it
straight to every subscriber's socket (202, as the product answers).

No token check, no database, no hub, no queue: what a join costs in Tornado's own handshake and
framing (bench/joins.py), and what a delivery costs as one ``send`` per subscriber (bench/fanout.py).
``PORT`` from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import tornado.web
import tornado.websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from bench/
from realtime.engine.publication import ws_text_frame  # noqa: E402 - the product's own framing


def compact(msg: dict[str, object]) -> str:
    return json.dumps(msg, separators=(",", ":"))  # as the server writes JSON


WELCOME = compact({"type": "welcome", "conn": "bare", "user": "bare", "role": "attendee", "exp": 0})
PONG = compact({"type": "pong", "ts": 0})


SUBSCRIBERS: dict[str, set[Socket]] = {}


class Socket(tornado.websocket.WebSocketHandler):
    channels: set[str]

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.channels = set()

    def on_close(self) -> None:
        for channel in self.channels:
            SUBSCRIBERS.get(channel, set()).discard(self)

    def send_frame(self, frame: bytes) -> None:
        """``frame`` to the socket now; what the kernel does not take waits in Tornado's stream."""
        conn = self.ws_connection
        if conn is None:
            return
        stream = conn.stream
        if stream.closed():
            return
        sent = 0
        if not stream.writing():
            try:
                sent = stream.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                return
        if sent < len(frame):
            fut = stream.write(frame[sent:])
            fut.add_done_callback(lambda f: f.exception())  # a closed peer is not an error here

    def on_message(self, message: str | bytes) -> None:
        msg = json.loads(message)
        kind = msg.get("type")
        if kind == "auth":
            self.write_message(WELCOME)
        elif kind == "subscribe":
            channel = str(msg.get("channel", ""))[:140]
            since = msg.get("since")
            seq = since if isinstance(since, int) else 0
            self.channels.add(channel)
            SUBSCRIBERS.setdefault(channel, set()).add(self)
            self.write_message(compact({"type": "subscribed", "channel": channel, "seq": seq}))
        elif kind == "ping":
            self.write_message(PONG)


class Publish(tornado.web.RequestHandler):
    def post(self, channel: str) -> None:
        msg = json.loads(self.request.body)
        pub = {"type": "pub", "channel": channel, "data": msg.get("data")}
        frame = ws_text_frame(compact(pub).encode())
        for sub in list(SUBSCRIBERS.get(channel, ())):
            sub.send_frame(frame)
        self.set_status(202)
        self.write({"accepted": True})


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"status": "ok"})


async def main() -> None:
    routes = [("/ws", Socket), ("/healthz", Health), (r"/api/channels/([^/]+)/messages", Publish)]
    app = tornado.web.Application(routes, websocket_ping_interval=0)
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
