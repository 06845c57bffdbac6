"""Entry point: wires settings, storage, the real-time engine and the handlers, and runs the server.

``python server.py`` serves with the embedded defaults; see README.md for configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import faulthandler
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tornado.web
from pymongo import AsyncMongoClient

from config import ConfigError, Settings, load_settings
from config.logs import setup_logging
from config.settings import settings_help
from config.signing_key import with_signing_key
from handlers import accounts as h_accounts
from handlers import mail as h_mail
from handlers import notifications as h_notifications
from handlers import openapi
from handlers import pages as h_pages
from handlers import push as h_push
from handlers import reports as h_reports
from handlers import room as h_room
from handlers import webinars as h_webinars
from handlers.api import ApiDeps
from handlers.base import NotFoundHandler, log_request
from handlers.channels import HistoryHandler, PresenceHandler, PublishHandler
from handlers.headers import SecurityHeaders
from handlers.health import HealthHandler, ReadyHandler
from handlers.httpserver import make_http_server
from handlers.metrics import MetricsHandler, RouteTemplates, Sampler
from handlers.openapi import DocsHandler, OpenApiHandler
from handlers.sse import EventStreamHandler, TicketHandler
from handlers.ws import GOING_AWAY, RealtimeSocket
from realtime import metrics
from realtime.auth.tokens import TokenService
from realtime.engine.broker import Broker
from realtime.engine.brokers import open_broker, shared_redis
from realtime.engine.channels import ChannelPolicy
from realtime.engine.heartbeat import Heartbeat
from realtime.engine.hub import Hub
from realtime.engine.limits import ConnectionLimits
from realtime.engine.limits_redis import RedisUserCount
from realtime.engine.presence import PresenceBackend, PresenceTracker
from realtime.engine.presence_memory import MemoryPresence
from realtime.engine.presence_redis import RedisPresence
from realtime.engine.rpc import RpcRegistry
from realtime.engine.session import SessionDeps
from realtime.jobs.retention import RETENTION_JOB, RetentionSchedule
from realtime.notifications import services as notification_services
from realtime.notifications.mail_mailbox import DevMailbox
from realtime.notifications.services import NotificationServices, open_notifications
from realtime.process import listen, worker
from realtime.process.drain import StopSignal, drain
from realtime.process.registry import ProcessRegistry, broker_identity
from realtime.process.supervisor import Supervisor
from realtime.webinars import rpc as room_rpc
from realtime.webinars.audience import RoomAudience
from realtime.webinars.chat import ChatService
from realtime.webinars.events import WebinarEvents
from realtime.webinars.policy import WebinarPolicy
from realtime.webinars.polls import PollService
from realtime.webinars.qa import QaService
from realtime.webinars.reports import ReportService
from realtime.webinars.service import WebinarService
from realtime.webinars.stage import StageService
from storage import (
    accounts,
    attendance,
    feedback,
    history,
    mongo,
    polls,
    processes,
    registrations,
    room,
    tickets,
    webinars,
)
from storage.embedded import EmbeddedMongo, database_url
from storage.idempotency import Idempotency
from storage.idempotency import create_indexes as idempotency_indexes
from storage.rate_limits import Limiter, RateLimits
from storage.rate_limits import create_indexes as rate_limit_indexes
from storage.rate_limits_live import MemoryLimits, RedisLimits

log = logging.getLogger("server")


def make_broker(settings: Settings) -> Broker:
    """The broker named by ``REDIS_URL`` (realtime/engine/brokers.py); in-process when it is empty."""
    return open_broker(settings.redis_url.reveal(), settings.redis_prefix)


def make_presence(settings: Settings, broker: Broker) -> PresenceBackend:
    """Presence follows the broker: Redis when it is Redis, else in-process."""
    redis = shared_redis(broker)
    return RedisPresence(redis, settings.redis_prefix) if redis is not None else MemoryPresence()


def make_publish_limits(settings: Settings, broker: Broker) -> Limiter:
    """The publish API's limiter follows the broker: Redis when it is Redis, else in-process."""
    redis = shared_redis(broker)
    return RedisLimits(redis, settings.redis_prefix) if redis is not None else MemoryLimits()


def make_connection_limits(settings: Settings, broker: Broker) -> ConnectionLimits:
    """The connection caps; the per-user count is shared through Redis when the broker is Redis."""
    redis = shared_redis(broker)
    shared = RedisUserCount(redis, settings.redis_prefix) if redis is not None else None
    return ConnectionLimits(
        settings.max_connections_per_user,
        settings.max_unauthenticated_per_address,
        shared,
        ttl=settings.presence_ttl,
    )


@dataclasses.dataclass
class Services:
    """Everything a running server holds open; built whole by :func:`open_services` inside the loop."""

    settings: Settings
    client: AsyncMongoClient[dict[str, Any]]
    db: mongo.Database
    broker: Broker
    hub: Hub
    presence: PresenceTracker
    heartbeat: Heartbeat
    connection_limits: ConnectionLimits
    tokens: TokenService
    tickets: tickets.Tickets
    limits: RateLimits
    publish_limits: Limiter
    notifications: NotificationServices
    domain: ApiDeps  # the webinar domain
    rpc: RpcRegistry
    policy: ChannelPolicy
    registry: ProcessRegistry
    pauses: metrics.PauseWatch
    embedded: EmbeddedMongo | None = None
    draining: bool = False

    async def close(self) -> None:
        await self.pauses.close()
        await self.registry.close()
        await self.notifications.close()
        await self.domain.stage.close()
        await self.heartbeat.close()
        await self.hub.close_all(GOING_AWAY, "server shutting down")
        await self.presence.close()
        await self.connection_limits.close()
        await self.hub.close()
        await self.domain.policy.close()  # attendance written behind, the leaves above included
        metrics.LIVE.forget(self.hub)
        await self.broker.close()
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()


INDEX_CREATORS: list[mongo.IndexCreator] = [
    history.create_indexes,
    tickets.create_indexes,
    *notification_services.INDEX_CREATORS,
    accounts.create_indexes,
    webinars.create_indexes,
    registrations.create_indexes,
    room.create_indexes,
    polls.create_indexes,
    attendance.create_indexes,
    feedback.create_indexes,
    processes.create_indexes,
    rate_limit_indexes,
    idempotency_indexes,
]


def open_webinar_domain(
    settings: Settings,
    db: mongo.Database,
    hub: Hub,
    tokens: TokenService,
    rpc: RpcRegistry,
    *,
    accounts_store: accounts.Accounts,
    webinar_store: webinars.Webinars,
    registration_store: registrations.Registrations,
    limits: RateLimits,
    events: Iterable[WebinarEvents],
) -> ApiDeps:
    """Build the webinar services, telling ``events`` what happens, and register their RPC methods."""
    room_store = room.Room(db)
    service = WebinarService(
        settings,
        webinar_store,
        registration_store,
        accounts_store,
        tokens,
        hub,
        room_store.moderation,
        events=events,
        limits=limits,
    )
    chat = ChatService(settings, service, room_store, hub)
    qa = QaService(service, room_store, hub)
    poll_service = PollService(service, room_store, hub)
    stage = StageService(settings, service, room_store, hub)
    room_rpc.register(rpc, service, chat, qa, poll_service, stage)
    return ApiDeps(
        settings=settings,
        tokens=tokens,
        accounts=accounts_store,
        webinars=service,
        chat=chat,
        qa=qa,
        polls=poll_service,
        stage=stage,
        policy=WebinarPolicy(service, room_store, hub),
        reports=ReportService(service, room_store, hub),
        limits=limits,
    )


async def open_services(
    settings: Settings,
    *,
    listeners: Iterable[WebinarEvents] = (),
    worker_index: int | None = None,
    role: notification_services.Role = "all",
) -> Services:
    """Open the database and build everything in dependency order, then start the background tasks.

    The webinar events go to the notification triggers, then to ``listeners`` (extra observers).
    If start-up fails, the database client and the embedded database are closed again. Without
    ``JWT_KEYS`` the signing key is the one kept in the data directory (config/signing_key.py).
    """
    settings = with_signing_key(settings)
    url, embedded = await database_url(settings.mongodb_url.reveal(), settings.data_path)
    client = mongo.open_client(url, settings.mongodb_timeout, event_listeners=[metrics.DatabaseListener()])
    try:
        db = client[settings.mongodb_database]
        await mongo.ensure_indexes(db, INDEX_CREATORS)
        broker = make_broker(settings)
        hub = Hub(
            broker,
            history.History(db, settings.history_size),
            Idempotency(db, settings.idempotency_window),
        )
        metrics.LIVE.watch(hub)
        presence_backend = make_presence(settings, broker)
        presence = PresenceTracker(
            presence_backend, hub.publish, ttl=settings.presence_ttl, interval=settings.presence_interval
        )
        accounts_store = accounts.Accounts(db)
        webinar_store = webinars.Webinars(db)
        registration_store = registrations.Registrations(db, webinar_store)
        tokens = TokenService(
            settings, is_revoked=accounts_store.access_revoked, link_ended=registration_store.link_ended
        )
        notifications = await open_notifications(
            db,
            settings,
            hub,
            RoomAudience(registration_store, presence_backend),
            tokens,
            start_worker=False,
            role=role,
        )
        retention = RetentionSchedule(db, notifications.jobs, settings)
        notifications.worker.register(RETENTION_JOB, retention.run)
        await retention.schedule()
        rpc = RpcRegistry()
        limits = RateLimits(db)
        domain = open_webinar_domain(
            settings,
            db,
            hub,
            tokens,
            rpc,
            accounts_store=accounts_store,
            webinar_store=webinar_store,
            registration_store=registration_store,
            limits=limits,
            events=[notifications.triggers, *listeners],
        )
        domain.password_resets = notifications.password_resets
        services = Services(
            settings=settings,
            client=client,
            db=db,
            broker=broker,
            hub=hub,
            presence=presence,
            heartbeat=Heartbeat(hub.connections, settings.ws_ping_interval, settings.ws_ping_timeout),
            connection_limits=make_connection_limits(settings, broker),
            tokens=tokens,
            tickets=tickets.Tickets(db),
            limits=limits,
            publish_limits=make_publish_limits(settings, broker),
            notifications=notifications,
            domain=domain,
            rpc=rpc,
            policy=domain.policy,
            registry=ProcessRegistry(
                processes.Processes(db),
                broker=broker_identity(settings.redis_url.reveal(), settings.redis_prefix),
                worker=worker_index,
                interval=settings.process_heartbeat,
            ),
            pauses=metrics.PauseWatch(),
            embedded=embedded,
        )
        await hub.start()
        presence.start()
        services.connection_limits.start()
        services.heartbeat.start()
        domain.stage.start()
        services.pauses.start()
        notifications.worker.start()  # last: nothing to stop if start-up fails before
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
        "limits": services.publish_limits,
    }
    ticket = dict(
        tokens=services.tokens, tickets=services.tickets, limits=services.limits, rate=s.ticket_rate
    )
    live = SessionDeps(
        services.hub,
        services.tokens,
        services.policy,
        services.rpc,
        services.presence,
        services.connection_limits,
    )
    channel = r"/api/channels/([A-Za-z0-9_.:@%-]{1,160})"
    routes: list[Any] = [
        (r"/healthz", HealthHandler),
        (
            r"/readyz",
            ReadyHandler,
            {
                "checks": checks,
                "draining": lambda: services.draining,
                "warnings": lambda: services.registry.warnings,
            },
        ),
        (r"/ws", RealtimeSocket, {"settings": s, "live": live}),
        (r"/sse", EventStreamHandler, {"settings": s, "live": live, "tickets": services.tickets}),
        (r"/api/realtime/tickets", TicketHandler, ticket),
        (channel + r"/messages", PublishHandler, realtime),
        (channel + r"/history", HistoryHandler, realtime),
        (channel + r"/presence", PresenceHandler, realtime),
    ]
    n = services.notifications
    routes += h_notifications.routes(
        notifier=n.notifier,
        triggers=n.triggers,
        tokens=services.tokens,
        settings=s,
        webinars=services.domain.webinars,
    )
    routes += h_push.routes(
        subscriptions=n.subscriptions, tokens=services.tokens, public_key=n.sender.public_key
    )
    routes += h_mail.routes(
        links=n.unsubscribe,
        preferences=n.notifier.preferences,
        store=n.mail,
        mailbox=isinstance(n.mail_transport, DevMailbox),
    )
    routes += api_routes(services.domain)
    routes += h_pages.routes()
    routes.append(
        (r"/metrics", MetricsHandler, {"samplers": metrics_samplers(services), "allow": s.metrics_allow})
    )
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        log_function=RouteTemplates(routes).log_function(log_request),
        websocket_max_message_size=s.ws_max_message_bytes,
        xsrf_cookies=False,
        transforms=[SecurityHeaders],
        cors_origins=s.cors_origins,  # read by JsonHandler (handlers/base.py)
    )


def metrics_samplers(services: Services) -> list[Sampler]:
    """What a scrape reads first: the job queue's backlog (one query of the shared database)."""

    async def job_backlog() -> None:
        metrics.job_queue_sampled(*await services.notifications.jobs.backlog())

    return [job_backlog]


def listen_metrics(services: Services, index: int = 0) -> tornado.httpserver.HTTPServer | None:
    """The separate ``/metrics`` listener of process ``index`` (0 for a single process, the
    worker's 0-based index with several): ``METRICS_HOST:METRICS_PORT + index``, so that every
    process on a host is scraped on its own port. None when ``METRICS_PORT`` is empty."""
    s = services.settings
    if s.metrics_port is None:
        return None
    port = s.metrics_port + index
    if port > 65535:
        raise RuntimeError(f"METRICS_PORT {s.metrics_port} + process index {index} is not a port")
    routes: list[Any] = [(r"/metrics", MetricsHandler, {"samplers": metrics_samplers(services)})]
    app = tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        log_function=RouteTemplates(routes).log_function(log_request),
    )
    # socket.create_server closes its socket when the bind fails; tornado's bind_sockets leaks it.
    family = socket.AF_INET6 if ":" in s.metrics_host else socket.AF_INET
    try:
        sock = socket.create_server((s.metrics_host, port), family=family, backlog=128)
    except OSError as exc:
        where = f"{s.metrics_host}:{port}"
        raise RuntimeError(f"METRICS_PORT: cannot listen on {where}: {exc.strerror}") from None
    sock.setblocking(False)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    log.info("metrics on http://%s:%d/metrics", s.metrics_host, port)
    return server


def api_routes(deps: ApiDeps) -> list[Any]:
    """The webinar REST API (the OpenAPI document: handlers/operations.py and handlers/openapi.py)."""
    d = {"deps": deps}
    doc = {"document": openapi.document(deps.settings)}
    w = r"/api/webinars/([A-Za-z0-9_-]{1,64})"
    i = r"([A-Za-z0-9_-]{1,64})"
    return [
        (r"/api/openapi.json", OpenApiHandler, doc),
        (r"/api/docs", DocsHandler, doc),
        (r"/api/auth/signup", h_accounts.SignupHandler, d),
        (r"/api/auth/login", h_accounts.LoginHandler, d),
        (r"/api/auth/refresh", h_accounts.RefreshHandler, d),
        (r"/api/auth/logout", h_accounts.LogoutHandler, d),
        (r"/api/auth/password-reset", h_accounts.PasswordResetHandler, d),
        (r"/api/auth/password-reset/confirm", h_accounts.PasswordResetConfirmHandler, d),
        (r"/api/me", h_accounts.MeHandler, d),
        (r"/api/webinars", h_webinars.WebinarsHandler, d),
        (w, h_webinars.WebinarHandler, d),
        (w + r"/(live|end|cancel)", h_webinars.LifecycleHandler, d),
        (w + r"/registrations", h_webinars.RegistrationsHandler, d),
        (w + r"/join-link", h_webinars.JoinLinkHandler, d),
        (w + r"/registration", h_webinars.OwnRegistrationHandler, d),
        (w + r"/registrations\.csv", h_webinars.RegistrationsCsvHandler, d),
        (w + r"/registrations/" + i, h_webinars.RegistrationHandler, d),
        (w + r"/registrations/" + i + r"/(approve|reject)", h_webinars.RegistrationDecisionHandler, d),
        (w + r"/state", h_room.StateHandler, d),
        (w + r"/chat", h_room.ChatHandler, d),
        (w + r"/chat/" + i, h_room.ChatMessageHandler, d),
        (w + r"/moderation", h_room.ModerationHandler, d),
        (w + r"/slow-mode", h_room.SlowModeHandler, d),
        (w + r"/questions", h_room.QuestionsHandler, d),
        (
            w + r"/questions/" + i + r"/(upvote|withdraw|approve|answer|dismiss|pin|unpin)",
            h_room.QuestionActionHandler,
            d,
        ),
        (w + r"/polls", h_room.PollsHandler, d),
        (w + r"/polls/" + i + r"/(vote|open|close|show_results|hide_results)", h_room.PollActionHandler, d),
        (w + r"/reactions", h_room.ReactionsHandler, d),
        (w + r"/hands", h_room.HandsHandler, d),
        (w + r"/announcements", h_room.AnnouncementsHandler, d),
        (w + r"/reports/attendance(\.csv)?", h_reports.AttendanceHandler, d),
        (w + r"/reports/engagement", h_reports.EngagementHandler, d),
        (w + r"/reports/feedback", h_reports.FeedbackReportHandler, d),
        (w + r"/feedback", h_reports.FeedbackHandler, d),
        (w + r"/reports/(questions|polls)\.csv", h_reports.ExportHandler, d),
        (w + r"/timeline", h_reports.TimelineHandler, d),
    ]


async def serve(
    settings: Settings,
    sockets: list[socket.socket],
    environ: Mapping[str, str],
    ready: asyncio.Event | None = None,
) -> None:
    """Serve on ``sockets`` until SIGTERM/SIGINT (or the supervisor's end), then drain
    (realtime/process/drain.py)."""
    stop = StopSignal()
    stop.install()
    worker.watch_supervisor(environ, stop.request)
    index = worker.worker_index(environ)
    # supervised beside a mail process: its jobs are the mail process's, not this one's
    role: notification_services.Role = "serving" if settings.mail_process and index is not None else "all"
    services = await open_services(settings, worker_index=index, role=role)
    try:
        await services.registry.start()  # only a serving process announces itself, not a test's services
        metrics_server = listen_metrics(services, worker.worker_index(environ) or 0)
    except BaseException:
        await services.close()
        raise
    app = make_app(services)
    server = make_http_server(app, settings)
    server.add_sockets(sockets)
    port = listen.bound_port(sockets)
    scheme = "https" if settings.tls_cert else "http"
    base = settings.public_url or f"{scheme}://{settings.host}:{port}"
    log.info("serving on %s (pid %d); stop with Ctrl-C", base, os.getpid())
    tune_collector()
    print(f"READY {base}", flush=True)
    if ready is not None:
        ready.set()
    await stop.requested.wait()

    def mark_draining() -> None:
        services.draining = True

    await drain(
        settings,
        stop,
        mark_draining=mark_draining,
        server=server,
        connections=services.hub.connections,
        close=services.close,
    )
    if metrics_server is not None:
        metrics_server.stop()
    log.info("stopped")


async def serve_mail(settings: Settings, environ: Mapping[str, str]) -> None:
    """The mail process (``MAIL_PROCESS``): run the mail's jobs (composing, sending, the link and
    password-reset mails) until SIGTERM or the supervisor's end. No HTTP but ``/metrics`` on
    ``METRICS_PORT`` + its index when that is set. It does not announce itself in the process
    registry: it shares no broker and serves no client."""
    stop = StopSignal()
    stop.install()
    worker.watch_supervisor(environ, stop.request)
    index = worker.worker_index(environ)
    services = await open_services(settings, worker_index=index, role="mail")
    try:
        metrics_server = listen_metrics(services, index or 0)  # its jobs' metrics: METRICS_PORT + index
    except BaseException:
        await services.close()
        raise
    log.info("mail process running (pid %d)", os.getpid())
    tune_collector()
    try:
        await stop.requested.wait()
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        await services.close()  # running jobs get a few seconds, then their leases lapse
    log.info("stopped")


FULL_COLLECTION_AFTER = 1000  # generation-1 collections between two full ones (Python's default: 10)


def tune_collector() -> None:
    """Two changes to the garbage collector, for the loop's longest pauses (issue 14; measured in
    bench/README.md, "Pauses" and "Idle soak"):

    - What start-up built (modules, settings, services: ~100,000 tracked objects, the size of 2,000
      connections) is frozen out of every later collection's walk: it lives as long as the process.
    - A full collection walks every connection's objects: 0.5-1 s at 19,000 connections here. By
      default one ran about every 30 s even with idle connections, because every frame read leaves a
      pending read of the next frame that lives until the next ping's answer and is counted as
      long-lived. A full collection now waits for FULL_COLLECTION_AFTER collections of generation 1
      (about 45 minutes in the idle soak, an hour at 10,000 deliveries/s). Garbage in reference
      cycles waits that long to be freed; connections leave none (tests/handlers/test_ws.py)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def parse_args(argv: list[str] | None) -> dict[str, str]:
    """The command line, as settings that override the environment's."""
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="The webinar and notification server: HTTP API, pages, WebSocket /ws and SSE /sse.",
        epilog="Every setting is an environment variable or a key of CONFIG_FILE (README.md,\n"
        '"Configuration"); an option above overrides both.\n\nSettings:\n' + settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", metavar="N", help="processes on the one port (WORKERS; default 1)")
    parser.add_argument("--host", help="interface to listen on (HOST)")
    parser.add_argument("--port", help="TCP port to listen on (PORT)")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (CONFIG_FILE)")
    parser.add_argument(
        "--mail-process",
        action="store_true",
        help="compose and send email in a process of its own (MAIL_PROCESS)",
    )
    args = parser.parse_args(argv)
    names = {"workers": "WORKERS", "host": "HOST", "port": "PORT", "config": "CONFIG_FILE"}
    given = {env: value for name, env in names.items() if (value := getattr(args, name)) is not None}
    return {**given, "MAIL_PROCESS": "true"} if args.mail_process else given


def main(argv: list[str] | None = None) -> int:
    environ = {**os.environ, **parse_args(argv)}
    mail_process = worker.is_mail_process(environ)
    try:
        settings = load_settings(environ)
        sockets = []  # the mail process serves nothing
        if not mail_process:
            sockets = listen.inherited(environ) or listen.bind(settings.host, settings.port)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    index = worker.worker_index(environ)
    setup_logging(settings.log_level, settings.effective_log_format, worker=index)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: where a process that will not stop
    # (or stalls) is, without stopping it
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        # before any worker starts: they all read the one key this keeps in DATA_DIR
        settings = with_signing_key(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if mail_process:
            asyncio.run(serve_mail(settings, environ))
        elif (settings.workers > 1 or settings.mail_process) and index is None:
            command = [sys.executable, str(Path(__file__).resolve())]
            return asyncio.run(Supervisor(settings, sockets, command, environ).run())
        else:
            asyncio.run(serve(settings, sockets, environ))
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
