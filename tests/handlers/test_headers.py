"""Response headers and cross-origin REST calls, against the app over TCP and a real server process:
CORS for CORS_ORIGINS only, with correct preflight answers; no server version in ``Server``; optional
TLS (a self-signed certificate made here) with HSTS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator

import pytest
import tornado.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import websocket_connect

from handlers.httpserver import make_http_server
from tests.servers import AppProcess

ALLOWED = "https://app.example.com"


@pytest.fixture
def services_env():
    return {"CORS_ORIGINS": f"{ALLOWED}, http://localhost:3000", "TRUSTED_PROXIES": "127.0.0.0/8"}


@pytest.fixture
def served(io_loop, services) -> Iterator[str]:
    """The app behind the HTTP server server.py builds (make_http_server), on a free port."""
    from server import make_app

    server = make_http_server(make_app(services), services.settings)
    sock, port = tornado.testing.bind_unused_port()
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def fetch(url: str, method: str = "GET", **headers: str):
    body = b"{}" if method in ("POST", "PATCH") else None
    return await AsyncHTTPClient().fetch(
        url, method=method, headers=headers, body=body, raise_error=False, allow_nonstandard_methods=True
    )


def cors_headers(resp) -> dict[str, str]:
    return {k: v for k, v in resp.headers.get_all() if k.lower().startswith("access-control-")}


@pytest.mark.gen_test(timeout=60)
async def test_preflight_from_an_allowed_origin(served):
    resp = await fetch(
        served + "/api/webinars",
        "OPTIONS",
        Origin=ALLOWED,
        **{
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert resp.code == 204
    h = resp.headers
    assert h["Access-Control-Allow-Origin"] == ALLOWED
    assert h["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS" == h["Allow"]
    allowed_headers = {x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert int(h["Access-Control-Max-Age"]) > 0
    assert "Origin" in h.get_list("Vary")
    # another route, other methods; the port is part of the origin
    resp = await fetch(
        served + "/api/webinars/w1", "OPTIONS", Origin="http://localhost:3000",
        **{"Access-Control-Request-Method": "PATCH"},
    )  # fmt: skip
    assert resp.code == 204 and resp.headers["Access-Control-Allow-Methods"] == "GET, PATCH, OPTIONS"


@pytest.mark.gen_test(timeout=60)
async def test_other_origins_get_no_cors_headers(served):
    for origin in (
        "https://evil.example",
        "http://localhost:3001",
        "http://app.example.com",
        "http://h:99999",
    ):
        resp = await fetch(
            served + "/api/webinars", "OPTIONS", Origin=origin, **{"Access-Control-Request-Method": "POST"}
        )
        assert resp.code == 204 and cors_headers(resp) == {}, origin
        resp = await fetch(served + "/api/me", Origin=origin)
        assert resp.code == 401 and cors_headers(resp) == {}, origin
    resp = await fetch(served + "/api/webinars", "OPTIONS")  # not a preflight: just what is allowed
    assert resp.code == 204 and resp.headers["Allow"] == "GET, POST, OPTIONS" and cors_headers(resp) == {}


@pytest.mark.gen_test(timeout=60)
async def test_an_allowed_origin_reads_answers_and_errors(served):
    resp = await fetch(served + "/api/me", Origin=ALLOWED)
    assert resp.code == 401 and json.loads(resp.body)["error"]["code"] == "unauthorized"
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-Id" in resp.headers["Access-Control-Expose-Headers"]
    resp = await fetch(served + "/healthz", Origin=ALLOWED)
    assert resp.code == 200 and resp.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.gen_test(timeout=60)
async def test_no_server_version_and_hsts_only_over_https(served):
    for path in ("/healthz", "/", "/static/no-such-file.js", "/no/such/route"):
        resp = await fetch(served + path)
        assert "Server" not in resp.headers, path
        assert "Strict-Transport-Security" not in resp.headers, path
    # https as the trusted proxy (127.0.0.0/8 here) reports it
    resp = await fetch(served + "/healthz", **{"X-Forwarded-Proto": "https"})
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def tls_app(mongo_server, test_id, tmp_path) -> Iterator[tuple[AppProcess, ssl.SSLContext]]:
    cert, key = self_signed(tmp_path)
    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "DATA_DIR": str(tmp_path / "data"),
            "TLS_CERT": cert,
            "TLS_KEY": key,
            "LOG_LEVEL": "warning",
        }
    )
    app.start()
    client = ssl.create_default_context(cafile=cert)
    yield app, client
    app.stop()
    app.logfile.close()


@pytest.mark.gen_test(timeout=90)
async def test_tls_with_hsts(tls_app):
    app, client = tls_app
    base = f"https://127.0.0.1:{app.port}"
    resp = await AsyncHTTPClient().fetch(HTTPRequest(base + "/healthz", ssl_options=client))
    assert json.loads(resp.body) == {"status": "ok"}
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Server" not in resp.headers
    signup = {"email": "tls@example.com", "password": "correct horse battery", "name": "T"}
    resp = await AsyncHTTPClient().fetch(
        HTTPRequest(base + "/api/auth/signup", "POST", body=json.dumps(signup), ssl_options=client)
    )
    token = json.loads(resp.body)["access_token"]
    # WebSockets over TLS (wss), with the server's own https origin
    ws = await websocket_connect(
        HTTPRequest(f"wss://127.0.0.1:{app.port}/ws", headers={"Origin": base}, ssl_options=client)
    )
    await ws.write_message(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await ws.read_message())["type"] == "welcome"
    ws.close()
    # plain HTTP on the TLS port gets no answer
    with pytest.raises((OSError, StreamClosedError)):
        await AsyncHTTPClient().fetch(f"http://127.0.0.1:{app.port}/healthz")
