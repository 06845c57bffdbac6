"""Entry point: wires settings, storage, the real-time engine and the handlers, and runs the server.

``python server.py`` serves with the embedded defaults; see README.md for configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from typing import Any

import tornado.httpserver
import tornado.web

from config import ConfigError, Settings, load_settings
from config.logs import setup_logging
from handlers.base import NotFoundHandler, log_request
from handlers.health import HealthHandler, ReadyHandler
from realtime.broker import Broker
from realtime.broker_memory import MemoryBroker
from realtime.broker_redis import RedisBroker
from storage import mongo
from storage.embedded import EmbeddedMongo

log = logging.getLogger("server")


def make_broker(settings: Settings) -> Broker:
    """Pick the broker from the URL scheme: Redis when ``REDIS_URL`` is set, else in-process."""
    url = settings.redis_url.reveal()
    if url:
        return RedisBroker(url, settings.redis_prefix)
    return MemoryBroker()


@dataclasses.dataclass
class Services:
    """Everything a running server holds open; built by :func:`open_services` inside the loop."""

    settings: Settings
    client: Any
    db: mongo.Database
    broker: Broker
    embedded: EmbeddedMongo | None = None
    draining: bool = False

    async def close(self) -> None:
        await self.broker.close()
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()


INDEX_CREATORS: list[mongo.IndexCreator] = []


async def open_services(settings: Settings) -> Services:
    embedded = None
    url = settings.mongodb_url.reveal()
    if not url:
        embedded = EmbeddedMongo(settings.data_path / "mongo")
        url = await embedded.start()
    try:
        client = mongo.open_client(url)
        db = client[settings.mongodb_database]
        await mongo.ensure_indexes(db, INDEX_CREATORS)
        broker = make_broker(settings)
        services = Services(settings=settings, client=client, db=db, broker=broker, embedded=embedded)
        await broker.start(on_message=lambda channel, payload: None, on_recover=lambda chs: None)
    except BaseException:
        if embedded is not None:
            await embedded.stop()
        raise
    return services


def make_app(services: Services) -> tornado.web.Application:
    s = services.settings
    checks = {"mongodb": lambda: mongo.ping(services.db), "broker": services.broker.ready}
    routes: list[Any] = [
        (r"/healthz", HealthHandler),
        (r"/readyz", ReadyHandler, {"checks": checks, "draining": lambda: services.draining}),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        websocket_max_message_size=s.ws_max_message_bytes,
        xsrf_cookies=False,
    )


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT, then drain and close everything."""
    services = await open_services(settings)
    app = make_app(services)
    server = tornado.httpserver.HTTPServer(app, max_body_size=settings.max_body_bytes, xheaders=True)
    server.listen(settings.port, settings.host)
    port = next(iter(server._sockets.values())).getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    base = settings.public_url or f"http://{settings.host}:{port}"
    log.info("serving on %s (pid %d); stop with Ctrl-C", base, os.getpid())
    print(f"READY {base}", flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down")
    services.draining = True
    server.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), 3)
    await services.close()
    log.info("stopped")


def main() -> int:
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.effective_log_format)
    try:
        asyncio.run(serve(settings))
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
