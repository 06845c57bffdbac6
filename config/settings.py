"""The server's settings.

Every setting is a typed field of :class:`Settings` declared with :func:`setting`, which records its
environment variable name, default, parser and meaning (the README's configuration table is generated
from ``FIELDS``, derived from those declarations). Values come from, in order of precedence: the
environ mapping passed in, then an optional TOML file (``CONFIG_FILE``, default
``config/server.toml`` when it exists), then the default. Nothing reads ``os.environ`` at import time.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from config.redis_url import parse_redis_url

ROOT = Path(__file__).resolve().parent.parent
# Keys that were ever published in this repository (the old built-in development key, the deploy
# examples' placeholder): refused in every mode, because anyone can sign tokens with them.
PUBLISHED_KEYS = frozenset({"dev-only-signing-key-change-me-0123456789", "replace-me"})
MIN_KEY_LENGTH = 32
T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting in one line."""


class Secret:
    """A string whose repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _float(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(raw: Any) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _list(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, list | tuple):
        items = [str(x).strip() for x in raw]
    else:
        items = [x.strip() for x in str(raw).split(",")]
    return tuple(x for x in items if x)


def _origins(raw: Any) -> tuple[str, ...]:
    values = _list(raw)
    for value in values:
        parts = urlsplit(value)
        bad = parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
        if value != "*" and bad:
            raise ValueError(f"expected origins like https://app.example.com or *, got {value!r}")
        parts.port  # noqa: B018  # raises ValueError for a port outside 0-65535
    return values


def _path(raw: Any) -> str:
    return str(raw).strip()


def _url(*schemes: str, optional: bool = True) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip()
        if not value and optional:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.hostname or parts.path):
            raise ValueError(f"must be a {'/'.join(schemes)} URL")
        return value

    return parse


def _secret_url(*schemes: str) -> Callable[[Any], Secret]:
    check = _url(*schemes)
    return lambda raw: Secret(check(raw))


def _redis_url(raw: Any) -> Secret:
    text = str(raw).strip()
    if text:
        parse_redis_url(text)  # raises RedisUrlError (a ValueError) naming what is wrong
    return Secret(text)


def _keys(raw: Any) -> dict[str, Secret]:
    """``kid1:secret1,kid2:secret2`` or a bare secret (kid ``k1``); the first key signs."""
    if isinstance(raw, Mapping):
        pairs = [(str(k), str(v)) for k, v in raw.items()]
    else:
        text = str(raw).strip()
        if not text:
            return {}
        if ":" not in text:
            pairs = [("k1", text)]
        else:
            pairs = []
            for item in text.split(","):
                kid, sep, secret = item.strip().partition(":")
                if not sep or not kid or not secret:
                    raise ValueError("expected kid:secret pairs separated by commas")
                pairs.append((kid.strip(), secret.strip()))
    return {kid: Secret(secret) for kid, secret in pairs}


def _optional_port(raw: Any) -> int | None:
    if raw is None or str(raw).strip() == "":
        return None
    return _int(1, 65535)(raw)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(raw: Any) -> tuple[Network, ...]:
    """CIDR blocks (``10.0.0.0/8,::1``; a bare address is one host), comma-separated."""
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in _list(raw))
    except ValueError as exc:
        raise ValueError(f"expected CIDR blocks such as 10.0.0.0/8, comma-separated ({exc})") from None


def _offsets(raw: Any) -> tuple[int, ...]:
    values = []
    for item in _list(raw):
        try:
            values.append(int(item))
        except ValueError:
            raise ValueError(f"expected whole minutes separated by commas, got {item!r}") from None
    if any(v <= 0 for v in values):
        raise ValueError("offsets are positive numbers of minutes")
    return tuple(sorted(set(values), reverse=True))


def _mailbox(raw: Any) -> str:
    """An RFC 5322 mailbox, ``Name <addr@host>`` or ``addr@host``, on one line."""
    value = str(raw).strip()
    _, addr = parseaddr(value)
    if "\r" in value or "\n" in value or "@" not in addr:
        raise ValueError("expected an address like 'Webinars <noreply@example.com>'")
    return value


@dataclasses.dataclass(frozen=True)
class Field:
    """One setting as the loader and the README see it: the attribute, its environment variable, the
    default, the parser of a raw value (environment text or a TOML value) and its meaning."""

    name: str
    env: str
    default: Any
    parse: Callable[[Any], Any]
    meaning: str


def setting(env: str, default: T, parse: Callable[[Any], T], meaning: str) -> T:
    """Declare one field of :class:`Settings`; the type checker sees the field as a ``T`` with a default."""
    spec = Field("", env, default, parse, meaning)
    if isinstance(default, dict):  # a dataclass default must not be shared mutable state
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata={"setting": spec})
    return dataclasses.field(default=default, metadata={"setting": spec})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated settings; build with :func:`load_settings`. The README table lists them in this order."""

    mode: str = setting(
        "MODE",
        "development",
        _choice("development", "production"),
        "`production` requires `JWT_KEYS`, refuses short signing keys and enables JSON logs by default.",
    )
    host: str = setting("HOST", "127.0.0.1", str, "Interface to listen on.")
    port: int = setting("PORT", 8888, _int(0, 65535), "TCP port to listen on (0 picks a free one).")
    public_url: str = setting(
        "PUBLIC_URL",
        "",
        _url("http", "https"),
        "Base URL users reach the server at, for links; default `http://HOST:PORT`.",
    )
    mongodb_url: Secret = setting(
        "MONGODB_URL",
        Secret(""),
        _secret_url("mongodb", "mongodb+srv"),
        "MongoDB server. Empty: start the embedded MongoDB-wire server (SecantusDB) as a child.",
    )
    mongodb_database: str = setting("MONGODB_DATABASE", "webinar", str, "Database name.")
    redis_url: Secret = setting(
        "REDIS_URL",
        Secret(""),
        _redis_url,
        "Redis for cross-process fan-out and presence: `redis://`, `rediss://`, `unix://` (one server), "
        "`redis+sentinel://h1:26379,h2:26379/SERVICE` (Sentinel), `redis+cluster://h1:7000,h2:7001` "
        "(Cluster, sharded pub/sub); docs/deploy.md. Empty: in-process broker (one process).",
    )
    redis_prefix: str = setting("REDIS_PREFIX", "wb:", str, "Prefix of every Redis key and channel.")
    data_dir: str = setting(
        "DATA_DIR", "var/data", str, "Directory for the embedded database and other state."
    )
    jwt_keys: dict[str, Secret] = setting(
        "JWT_KEYS",
        {},
        _keys,
        "HMAC signing keys as `kid:secret,...`; the first signs, all verify (rotation). Empty: a random "
        "key generated on first start in `DATA_DIR/signing-key` (mode 0600); production requires keys.",
    )
    jwt_algorithm: str = setting(
        "JWT_ALGORITHM",
        "HS256",
        lambda raw: _choice("hs256", "hs384", "hs512")(raw).upper(),
        "Algorithm for tokens this server signs; only this one is accepted.",
    )
    jwt_issuer: str = setting("JWT_ISSUER", "webinar-server", str, "`iss` of tokens this server signs.")
    jwt_audience: str = setting("JWT_AUDIENCE", "webinar", str, "`aud` required in every token.")
    integrator_keys: dict[str, Secret] = setting(
        "INTEGRATOR_KEYS",
        {},
        _keys,
        "Keys (`kid:secret,...`) integrators sign attendee tokens with; `iss` must be `INTEGRATOR_ISSUER`.",
    )
    integrator_issuer: str = setting(
        "INTEGRATOR_ISSUER", "integrator", str, "`iss` of integrator-minted tokens."
    )
    api_keys: dict[str, Secret] = setting(
        "API_KEYS", {}, _keys, "Integrator API keys as `name:key,...` for the publish API."
    )
    access_token_ttl: int = setting(
        "ACCESS_TOKEN_TTL", 900, _int(30, 86400), "Access token lifetime, seconds."
    )
    refresh_token_ttl: int = setting(
        "REFRESH_TOKEN_TTL", 30 * 86400, _int(300, 365 * 86400), "Refresh token lifetime, seconds."
    )
    signup_open: bool = setting("SIGNUP_OPEN", True, _bool, "Whether anyone may create a host account.")
    allowed_origins: tuple[str, ...] = setting(
        "ALLOWED_ORIGINS",
        (),
        _list,
        "Origins allowed to open WebSockets, comma-separated; the server's own origin is always allowed.",
    )
    log_level: str = setting("LOG_LEVEL", "info", _choice("debug", "info", "warning", "error"), "Log level.")
    log_format: str = setting(
        "LOG_FORMAT",
        "",
        _choice("", "text", "json"),
        "`text` or `json`; default `json` in production, `text` otherwise.",
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES", 1 << 20, _int(1024, 1 << 30), "Largest HTTP request body."
    )
    ws_max_message_bytes: int = setting(
        "WS_MAX_MESSAGE_BYTES",
        64 * 1024,
        _int(256, 16 << 20),
        "Largest WebSocket frame a client may send; larger closes with 1009.",
    )
    ws_outbox_bytes: int = setting(
        "WS_OUTBOX_BYTES",
        1 << 20,
        _int(4096, 1 << 30),
        "Bound of each connection's outgoing buffer; see docs/protocol.md for the policy when full.",
    )
    ws_ping_interval: float = setting(
        "WS_PING_INTERVAL",
        25.0,
        _float(0.05, 3600),
        "Seconds between rounds of pings; a round goes out in parts over half of the interval minus "
        "WS_PING_TIMEOUT, not to every connection at once.",
    )
    ws_ping_timeout: float = setting(
        "WS_PING_TIMEOUT",
        20.0,
        _float(0.05, 3600),
        "Seconds without a pong before a connection is closed as dead.",
    )
    history_size: int = setting(
        "HISTORY_SIZE",
        1000,
        _int(10, 1_000_000),
        "Durable messages a reconnecting client can recover per channel (more missed: reset); "
        "personal channels keep this many, rooms keep their whole timeline.",
    )
    presence_ttl: float = setting(
        "PRESENCE_TTL",
        30.0,
        _float(0.5, 3600),
        "Seconds after which a crashed process's presence entries (and counted connections) expire.",
    )
    presence_interval: float = setting(
        "PRESENCE_INTERVAL",
        1.0,
        _float(0.05, 60),
        "Seconds between coalesced presence and reaction broadcasts.",
    )
    chat_rate: int = setting("CHAT_RATE", 5, _int(1, 1000), "Chat messages per 10 s per user (rate limit).")
    chat_max_chars: int = setting("CHAT_MAX_CHARS", 500, _int(1, 100_000), "Longest chat message.")
    reactions: tuple[str, ...] = setting(
        "REACTIONS",
        ("👍", "👏", "❤️", "😂", "😮", "🎉"),
        _list,
        "The fixed set of reaction emoji attendees may send, comma-separated.",
    )
    slow_mode_default: int = setting(
        "SLOW_MODE",
        0,
        _int(0, 3600),
        "Slow mode of new webinars: seconds between an attendee's chat messages (0: off).",
    )
    login_rate: int = setting(
        "LOGIN_RATE", 10, _int(1, 10_000), "Login attempts per minute per email and IP."
    )
    reminder_offsets: tuple[int, ...] = setting(
        "REMINDER_OFFSETS", (1440, 15), _offsets, "Minutes before a webinar's start to remind registrants."
    )
    vapid_private_key: Secret = setting(
        "VAPID_PRIVATE_KEY",
        Secret(""),
        lambda raw: Secret(str(raw).strip()),
        "VAPID private key (PEM or base64url). Empty: one is generated once and kept in MongoDB.",
    )
    vapid_subject: str = setting("VAPID_SUBJECT", "mailto:admin@localhost", str, "VAPID `sub` claim.")
    worker_poll_interval: float = setting(
        "WORKER_POLL_INTERVAL", 1.0, _float(0.01, 60), "Seconds between background job polls."
    )
    job_lease_seconds: float = setting(
        "JOB_LEASE_SECONDS",
        30.0,
        _float(0.5, 3600),
        "A background job's lease; a job whose process died runs again after it expires.",
    )
    push_concurrency: int = setting(
        "PUSH_CONCURRENCY", 16, _int(1, 1000), "Web Push requests in flight per process."
    )
    room_history_retention_days: int = setting(
        "ROOM_HISTORY_RETENTION_DAYS",
        0,
        _int(0, 36500),
        "Days a webinar room's timeline, chat, questions and announcements are kept (0: forever); "
        "older ones are deleted, so replays and reports of older webinars lose them.",
    )
    inbox_retention_days: int = setting(
        "INBOX_RETENTION_DAYS", 0, _int(0, 36500), "Days a notification stays in its inbox (0: forever)."
    )
    attendance_retention_days: int = setting(
        "ATTENDANCE_RETENTION_DAYS",
        0,
        _int(0, 36500),
        "Days attendance sessions (the attendance report's data) are kept (0: forever).",
    )
    job_retention_days: int = setting(
        "JOB_RETENTION_DAYS",
        14,
        _int(0, 36500),
        "Days finished background jobs (and their idempotency keys) are kept (0: forever).",
    )
    retention_interval: float = setting(
        "RETENTION_INTERVAL",
        3600.0,
        _float(1, 7 * 86400),
        "Seconds between the server's retention runs (one process runs each, through the job queue).",
    )
    # -- processes and shutdown (docs/deploy.md, "Processes on one host" and "Stopping") --
    workers: int = setting(
        "WORKERS",
        1,
        _int(1, 256),
        "Server processes on the one port, under a parent that restarts a worker that dies "
        "(`--workers N`); more than 1 needs `REDIS_URL`.",
    )
    mail_process: bool = setting(
        "MAIL_PROCESS",
        False,
        _bool,
        "Compose and send email in a process of its own, started and restarted beside the server's "
        "(`--mail-process`): a reminder to thousands then leaves the live rooms' event loop alone.",
    )
    drain_seconds: float = setting(
        "DRAIN_SECONDS",
        5.0,
        _float(0, 3600),
        "After SIGTERM, seconds `/readyz` answers 503 `draining` while everything still serves "
        "(the load balancer stops sending new clients); then the listener closes.",
    )
    drain_close_window: float = setting(
        "DRAIN_CLOSE_WINDOW",
        10.0,
        _float(0, 3600),
        "Then the WebSocket and SSE clients are closed with 1001 spread evenly over this many "
        "seconds, so they do not all reconnect at once (0: all at once).",
    )
    shutdown_timeout: float = setting(
        "SHUTDOWN_TIMEOUT",
        20.0,
        _float(1, 7200),
        "The longest a stop may take after SIGTERM; then the process exits anyway (code 1). "
        "Must exceed `DRAIN_SECONDS` + `DRAIN_CLOSE_WINDOW`.",
    )
    process_heartbeat: float = setting(
        "PROCESS_HEARTBEAT",
        10.0,
        _float(0.1, 3600),
        "Seconds between a process's heartbeats in the database, by which processes sharing it without "
        "a common broker are detected (`/readyz` `warnings`); gone after 3 missed.",
    )

    # Secure defaults (issue 10): who the client is, slow clients, TLS.
    trusted_proxies: tuple[Network, ...] = setting(
        "TRUSTED_PROXIES",
        (),
        _networks,
        "Networks (CIDRs, comma-separated) of proxies whose `X-Forwarded-For`/`X-Real-IP`/"
        "`X-Forwarded-Proto` are believed; from anyone else they are ignored. Empty: nobody's.",
    )
    http_idle_timeout: float = setting(
        "HTTP_IDLE_TIMEOUT",
        75.0,
        _float(0.1, 3600),
        "Seconds a connection may take to send a request's headers, new or kept alive (then closed).",
    )
    http_body_timeout: float = setting(
        "HTTP_BODY_TIMEOUT",
        60.0,
        _float(0.1, 3600),
        "Seconds a client may take to send a request body (then closed).",
    )
    tls_cert: str = setting(
        "TLS_CERT", "", _path, "PEM certificate chain file: serve HTTPS (and send HSTS). Needs `TLS_KEY`."
    )
    tls_key: str = setting("TLS_KEY", "", _path, "PEM private key file of `TLS_CERT`.")
    cors_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS",
        (),
        _origins,
        "Origins (comma-separated, or `*`) whose pages may call the REST API cross-origin (CORS); "
        "others get no CORS headers. Empty: none.",
    )
    # Rate limits where a request is cheap to send and expensive to answer (0: no limit), counted across
    # every process (MongoDB; the publish API: Redis or, with one process, memory); each refusal is 429
    # ``rate_limited`` with Retry-After.
    login_address_rate: int = setting(
        "LOGIN_ADDRESS_RATE",
        30,
        _int(0, 1_000_000),
        "Login attempts per minute per client address, across emails (each costs an argon2 hash).",
    )
    signup_rate: int = setting(
        "SIGNUP_RATE", 20, _int(0, 1_000_000), "Sign-ups per hour per client address (argon2 again)."
    )
    registration_rate: int = setting(
        "REGISTRATION_RATE", 30, _int(0, 1_000_000), "Webinar registrations per minute per client address."
    )
    ticket_rate: int = setting(
        "TICKET_RATE",
        30,
        _int(0, 1_000_000),
        "SSE tickets (`POST /api/realtime/tickets`) per minute per user.",
    )
    publish_rate: int = setting(
        "PUBLISH_RATE",
        100,
        _int(0, 1_000_000),
        "Publish API calls per second per API key (or per host publishing with a token).",
    )
    # Sessions (issue 10): caps on simultaneous live connections (realtime/engine/limits.py).
    max_connections_per_user: int = setting(
        "MAX_CONNECTIONS_PER_USER",
        20,
        _int(0, 100_000),
        "Simultaneous live connections (WebSockets and SSE streams) per user, on all processes together "
        "with Redis; past it close 4009 / HTTP 429 `too_many_connections` (0: no cap).",
    )
    max_unauthenticated_per_address: int = setting(
        "MAX_UNAUTHENTICATED_PER_ADDRESS",
        200,
        _int(0, 1_000_000),
        "WebSockets per client address and process that have not sent `auth` yet; past it close 4009 "
        "(0: no cap).",
    )
    metrics_port: int | None = setting(
        "METRICS_PORT",
        None,
        _optional_port,
        "Port of the separate Prometheus listener (`/metrics` only); process *i* of several listens "
        "on `METRICS_PORT + i`. Empty: no separate listener.",
    )
    metrics_host: str = setting(
        "METRICS_HOST", "127.0.0.1", str, "Interface the `METRICS_PORT` listener binds to."
    )
    metrics_allow: tuple[Network, ...] = setting(
        "METRICS_ALLOW",
        (),
        _networks,
        "CIDR blocks whose TCP peers may read `/metrics` on the main port (never `X-Forwarded-For`). "
        "Empty: the main port answers 404.",
    )
    mongodb_timeout: float = setting(
        "MONGODB_TIMEOUT",
        3.0,
        _float(0.1, 600),
        "Seconds a request waits for an unreachable MongoDB before it answers 503 `unavailable` "
        "(PyMongo's server selection and connect timeouts).",
    )
    idempotency_window: float = setting(
        "IDEMPOTENCY_WINDOW",
        86400.0,
        _float(1, 30 * 86400),
        "Seconds a send's `idempotency_key` is remembered: a retry within it answers with the first "
        "send's result instead of sending again.",
    )
    smtp_url: Secret = setting(
        "SMTP_URL",
        Secret(""),
        _secret_url("smtp", "smtps"),
        "SMTP relay for email, `smtp://user:password@host:587` (STARTTLS when offered) or `smtps://` "
        "(TLS); empty: a development mailbox at `/dev/mailbox` (email is off with `MODE=production`).",
    )
    mail_from: str = setting(
        "MAIL_FROM", "Webinars <webinars@localhost>", _mailbox, "`From` of every email this server sends."
    )
    smtp_concurrency: int = setting(
        "SMTP_CONCURRENCY", 4, _int(1, 100), "SMTP connections open at once per process (each sends a batch)."
    )
    smtp_timeout: float = setting(
        "SMTP_TIMEOUT", 30.0, _float(1, 600), "Seconds an SMTP connect or command may take."
    )
    password_reset_ttl: int = setting(
        "PASSWORD_RESET_TTL", 1800, _int(60, 86_400), "Seconds a mailed password-reset link works (once)."
    )
    password_reset_rate: int = setting(
        "PASSWORD_RESET_RATE",
        5,
        _int(1, 10_000),
        "Password-reset requests per hour per email address (and 4x that per client address).",
    )

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.production else "text")

    @property
    def signing_kid(self) -> str:
        return next(iter(self.jwt_keys))

    @property
    def data_path(self) -> Path:
        path = Path(self.data_dir)
        return path if path.is_absolute() else ROOT / path

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


FIELDS: tuple[Field, ...] = tuple(
    dataclasses.replace(f.metadata["setting"], name=f.name) for f in dataclasses.fields(Settings)
)


def load_settings(environ: Mapping[str, str], *, toml_path: str | Path | None = None) -> Settings:
    """Build settings from ``environ`` and the TOML file; raise ConfigError naming the bad setting."""
    file_values: dict[str, Any] = {}
    path = toml_path or environ.get("CONFIG_FILE") or ROOT / "config" / "server.toml"
    path = Path(path)
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        known = {f.name for f in FIELDS} | {f.env.lower() for f in FIELDS}
        unknown = sorted(set(file_values) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    elif toml_path or environ.get("CONFIG_FILE"):
        raise ConfigError(f"CONFIG_FILE: {path} does not exist")

    values: dict[str, Any] = {}
    for field in FIELDS:
        if field.env in environ:
            raw: Any = environ[field.env]
        elif field.name in file_values:
            raw = file_values[field.name]
        elif field.env.lower() in file_values:
            raw = file_values[field.env.lower()]
        else:
            values[field.name] = field.default
            continue
        try:
            values[field.name] = field.parse(raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{field.env}: {exc}") from None
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if s.workers > 1 and not s.redis_url:
        raise ConfigError(
            f"WORKERS: {s.workers} processes need REDIS_URL; the in-process broker reaches only "
            "the clients of its own process"
        )
    if s.shutdown_timeout <= s.drain_seconds + s.drain_close_window:
        raise ConfigError(
            f"SHUTDOWN_TIMEOUT: {s.shutdown_timeout:g} s must exceed DRAIN_SECONDS + DRAIN_CLOSE_WINDOW "
            f"({s.drain_seconds + s.drain_close_window:g} s)"
        )
    named = {"JWT_KEYS": s.jwt_keys, "INTEGRATOR_KEYS": s.integrator_keys, "API_KEYS": s.api_keys}
    for env, keys in named.items():
        for kid, key in keys.items():
            if key.reveal() in PUBLISHED_KEYS:
                raise ConfigError(f"{env}: key {kid!r} is published in this repository; set your own")
    if s.ws_ping_timeout < 0.05:
        raise ConfigError("WS_PING_TIMEOUT: must be positive")
    if bool(s.tls_cert) != bool(s.tls_key):
        raise ConfigError("TLS_CERT: TLS_CERT and TLS_KEY are set together or not at all")
    for env, file in (("TLS_CERT", s.tls_cert), ("TLS_KEY", s.tls_key)):
        if file and not Path(file).is_file():
            raise ConfigError(f"{env}: {file} is not a file")
    if s.metrics_port is not None and s.metrics_port == s.port:
        raise ConfigError("METRICS_PORT: must differ from PORT (the metrics listener is a port of its own)")
    if s.production:
        if not s.jwt_keys:
            raise ConfigError("JWT_KEYS: production needs its own keys (a generated key is for development)")
        for kid, key in s.jwt_keys.items():
            if len(key.reveal()) < MIN_KEY_LENGTH:
                raise ConfigError(f"JWT_KEYS: key {kid!r} is shorter than {MIN_KEY_LENGTH} characters")
        for kid, key in {**s.integrator_keys, **s.api_keys}.items():
            if len(key.reveal()) < MIN_KEY_LENGTH:
                raise ConfigError(f"INTEGRATOR_KEYS/API_KEYS: key {kid!r} is shorter than 32 characters")


def shown_value(value: Any) -> str:
    """A setting's value as ``check-config`` prints it: secrets masked (a URL keeps its scheme, user
    and hosts, its password and query are masked), lists comma-separated."""
    if isinstance(value, Secret):
        return _masked(value.reveal())
    if isinstance(value, dict):
        return ",".join(f"{kid}:{shown_value(v)}" for kid, v in value.items())
    if isinstance(value, tuple):
        return ",".join(str(x) for x in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _masked(text: str) -> str:
    if not text:
        return ""
    if "://" not in text:
        return "**********"
    parts = urlsplit(text)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        hosts = f"{user}{':**********' if colon else ''}@{hosts}"
    query = "?**********" if parts.query else ""
    return f"{parts.scheme}://{hosts}{parts.path}{query}"


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """(variable, shown value) of every setting, in the README's order, secrets masked."""
    return [(f.env, shown_value(getattr(settings, f.name))) for f in FIELDS]


def configuration_table() -> str:
    """The README's configuration table, in Markdown."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for f in FIELDS:
        default = f.default
        if isinstance(default, Secret):
            default = "" if not default else "(development key)"
        elif isinstance(default, dict):
            default = "(set)" if default else ""
        elif isinstance(default, tuple):
            default = ",".join(str(x) for x in default)
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        rows.append(f"| `{f.env}` | {shown} | {f.meaning} |")
    return "\n".join(rows)


def settings_help() -> str:
    """Every setting's variable and meaning, for ``server.py --help``."""
    width = max(len(f.env) for f in FIELDS)
    return "\n".join(f"  {f.env:<{width}}  {f.meaning.replace('`', '')}" for f in FIELDS)


if __name__ == "__main__":
    print(configuration_table())
