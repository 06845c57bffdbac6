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
from handlers import notifications as notification_handlers
from handlers import push as push_handlers
from handlers.base import NotFoundHandler, log_request
from handlers.channels import HistoryHandler, PresenceHandler, PublishHandler
from handlers.health import HealthHandler, ReadyHandler
from handlers.sse import EventStreamHandler, TicketHandler
from handlers.ws import GOING_AWAY, RealtimeSocket
from realtime import notifications as notification_services
from realtime.broker import Broker
from realtime.broker_memory import MemoryBroker
from realtime.broker_redis import RedisBroker
from realtime.channels import ChannelPolicy, ClaimsPolicy
from realtime.hub import Hub
from realtime.notifications import NotificationServices, open_notifications
from realtime.presence import PresenceBackend, PresenceTracker
from realtime.presence_memory import MemoryPresence
from realtime.presence_redis import RedisPresence
from realtime.rpc import RpcRegistry
from realtime.tokens import TokenService
from storage import history, mongo, tickets
from storage.embedded import EmbeddedMongo

log = logging.getLogger("server")


def make_broker(settings: Settings) -> Broker:
    """Pick the broker from the URL scheme: Redis when ``REDIS_URL`` is set, else in-process."""
    url = settings.redis_url.reveal()
    if url:
        return RedisBroker(url, settings.redis_prefix)
    return MemoryBroker()


def make_presence(settings: Settings, broker: Broker) -> PresenceBackend:
    """Presence follows the broker: Redis when it is Redis, else in-process."""
    if isinstance(broker, RedisBroker):
        return RedisPresence(broker.redis, settings.redis_prefix)
    return MemoryPresence()


@dataclasses.dataclass
class Services:
    """Everything a running server holds open; built by :func:`open_services` inside the loop."""

    settings: Settings
    client: Any
    db: mongo.Database
    broker: Broker
    hub: Hub
    presence: PresenceTracker
    tokens: TokenService
    tickets: tickets.Tickets
    rpc: RpcRegistry
    policy: ChannelPolicy
    notifications: NotificationServices | None = None
    embedded: EmbeddedMongo | None = None
    draining: bool = False

    async def close(self) -> None:
        if self.notifications is not None:
            await self.notifications.close()
        await self.hub.close_all(GOING_AWAY, "server shutting down")
        await self.presence.close()
        await self.hub.close()
        await self.broker.close()
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()


INDEX_CREATORS: list[mongo.IndexCreator] = [
    history.create_indexes,
    tickets.create_indexes,
    *notification_services.INDEX_CREATORS,
]


async def open_services(settings: Settings) -> Services:
    embedded = None
    url = settings.mongodb_url.reveal()
    if not url:
        embedded = EmbeddedMongo(settings.data_path / "mongo")
        url = await embedded.start()
    client = mongo.open_client(url)
    try:
        db = client[settings.mongodb_database]
        await mongo.ensure_indexes(db, INDEX_CREATORS)
        broker = make_broker(settings)
        hub = Hub(broker, history.History(db, settings.history_size))
        presence = PresenceTracker(
            make_presence(settings, broker),
            hub.publish,
            ttl=settings.presence_ttl,
            interval=settings.presence_interval,
        )
        services = Services(
            settings=settings,
            client=client,
            db=db,
            broker=broker,
            hub=hub,
            presence=presence,
            tokens=TokenService(settings),
            tickets=tickets.Tickets(db),
            rpc=RpcRegistry(),
            policy=ClaimsPolicy(),
            embedded=embedded,
        )
        await hub.start()
        presence.start()
        services.notifications = await open_notifications(db, settings, hub)
    except BaseException:
        await client.close()
        if embedded is not None:
            await embedded.stop()
        raise
    return services


def make_app(services: Services) -> tornado.web.Application:
    s = services.settings
    checks = {"mongodb": lambda: mongo.ping(services.db), "broker": services.broker.ready}
    realtime = {
        "settings": s,
        "hub": services.hub,
        "tokens": services.tokens,
        "policy": services.policy,
        "presence": services.presence,
    }
    channel = r"/api/channels/([A-Za-z0-9_.:@%-]{1,160})"
    routes: list[Any] = [
        (r"/healthz", HealthHandler),
        (r"/readyz", ReadyHandler, {"checks": checks, "draining": lambda: services.draining}),
        (r"/ws", RealtimeSocket, {**realtime, "rpc": services.rpc}),
        (
            r"/sse",
            EventStreamHandler,
            {"settings": s, "hub": services.hub, "policy": services.policy, "tickets": services.tickets},
        ),
        (r"/api/realtime/tickets", TicketHandler, {"tokens": services.tokens, "tickets": services.tickets}),
        (channel + r"/messages", PublishHandler, realtime),
        (channel + r"/history", HistoryHandler, realtime),
        (channel + r"/presence", PresenceHandler, realtime),
    ]
    if services.notifications is not None:
        n = services.notifications
        routes += notification_handlers.routes(
            notifier=n.notifier, triggers=n.triggers, tokens=services.tokens, settings=s
        )
        routes += push_handlers.routes(
            subscriptions=n.subscriptions, tokens=services.tokens, public_key=n.sender.public_key
        )
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        websocket_max_message_size=s.ws_max_message_bytes,
        websocket_ping_interval=s.ws_ping_interval,
        websocket_ping_timeout=s.ws_ping_timeout,
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
    await services.hub.close_all(GOING_AWAY, "server shutting down")
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
