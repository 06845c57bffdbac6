"""Host accounts over REST: sign-up, login, refresh rotation and reuse, logout, rate limit."""

import asyncio
import time

import jwt
import pytest

from tests.api import Api
from tests.sseclient import EventStream, ticket_for
from tests.wsclient import WsClient

INTEGRATOR_SECRET = "crm-shared-secret-0123456789abcdef0123"


@pytest.fixture
def services_env():
    return {"INTEGRATOR_KEYS": f"crm:{INTEGRATOR_SECRET}"}


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def integrator_token(webinar_id: str, **claims) -> str:
    """An attendee token minted by an integrator (no ``jti`` unless given)."""
    now = int(time.time())
    body = {"sub": "crm-42", "name": "Ivy", "role": "attendee", "wid": webinar_id, "iss": "integrator"}
    body.update({"aud": "webinar", "iat": now, "exp": now + 600, **claims})
    return jwt.encode(body, INTEGRATOR_SECRET, algorithm="HS256", headers={"kid": "crm"})


@pytest.mark.gen_test
async def test_signup_login_me(api):
    host = await api.host("ann@example.com", name="Ann")
    assert host["user"] == {
        "id": host["user"]["id"],
        "email": "ann@example.com",
        "name": "Ann",
        "role": "host",
    }
    code, body = await api.call(
        "POST", "/api/auth/signup", {"email": "ANN@example.com", "password": "another password", "name": "A"}
    )
    assert (code, body["error"]["code"]) == (409, "email_taken")
    code, body = await api.call(
        "POST", "/api/auth/login", {"email": "ann@example.com", "password": "nope nope"}
    )
    assert (code, body["error"]["code"]) == (401, "bad_credentials")
    code, body = await api.call(
        "POST", "/api/auth/login", {"email": "ann@example.com", "password": "correct horse battery"}
    )
    assert code == 200 and body["refresh_token"]
    code, me = await api.call("GET", "/api/me", token=body["access_token"])
    assert code == 200 and me["email"] == "ann@example.com"


@pytest.mark.gen_test
async def test_refresh_rotates_and_reuse_revokes_family(api):
    host = await api.host()
    first = host["refresh_token"]
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": first})
    assert code == 200 and body["refresh_token"] != first
    second = body["refresh_token"]
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": second})
    assert code == 200
    third = body["refresh_token"]
    # the first again, after its successor was used: a replay, the whole family ends
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": first})
    assert (code, body["error"]["code"]) == (401, "refresh_reused")
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": third})
    assert (code, body["error"]["code"]) == (401, "refresh_invalid")


@pytest.mark.gen_test
async def test_a_refresh_whose_answer_was_lost_can_be_retried_at_once(api):
    """A reload during a refresh: the server rotated, the new token never reached the browser. The
    retry with the token it still holds gets a new one instead of ending every tab's session."""
    host = await api.host()
    first = host["refresh_token"]
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": first})
    assert code == 200
    lost = body["refresh_token"]
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": first})
    assert code == 200, body
    kept = body["refresh_token"]
    assert kept not in (first, lost)
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": kept})
    assert code == 200
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": lost})
    assert (code, body["error"]["code"]) == (401, "refresh_invalid")  # superseded, not a replay


@pytest.mark.gen_test
async def test_tabs_refreshing_with_one_token_at_once_all_keep_the_session(api):
    """Three tabs reloading at once each abort a refresh in flight and send the same cookie again:
    the server sees one token presented concurrently. Every answer is a working token until one of
    them is used; then the others are revoked, and the family lives on."""
    host = await api.host()
    first = host["refresh_token"]
    answers = await asyncio.gather(
        *(api.call("POST", "/api/auth/refresh", {"refresh_token": first}) for _ in range(3))
    )
    assert [code for code, _ in answers] == [200, 200, 200], answers
    tokens = [body["refresh_token"] for _, body in answers]
    assert len(set(tokens)) == 3
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": tokens[1]})
    assert code == 200, body
    for other in (tokens[0], tokens[2]):
        code, refused = await api.call("POST", "/api/auth/refresh", {"refresh_token": other})
        assert (code, refused["error"]["code"]) == (401, "refresh_invalid")  # superseded, not a replay
    code, _ = await api.call("POST", "/api/auth/refresh", {"refresh_token": body["refresh_token"]})
    assert code == 200


@pytest.mark.gen_test
async def test_logout_revokes_refresh_and_access(api):
    host = await api.host()
    token = host["access_token"]
    code, _ = await api.call("POST", "/api/auth/logout", {"refresh_token": host["refresh_token"]}, token)
    assert code == 204
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": host["refresh_token"]})
    assert code == 401
    code, body = await api.call("GET", "/api/me", token=token)
    assert (code, body["error"]["code"]) == (401, "token_revoked")
    # Refused everywhere, not only by the webinar API: one check in TokenService.authenticate.
    for method, path in (
        ("GET", "/api/notifications"),
        ("POST", "/api/realtime/tickets"),
        ("GET", "/api/channels/room:w1/history"),
    ):
        code, body = await api.call(method, path, token=token)
        assert (code, body["error"]["code"]) == (401, "token_revoked"), path


@pytest.mark.gen_test
async def test_auth_refusals_and_validation(api):
    code, body = await api.call("GET", "/api/me")
    assert (code, body["error"]["code"]) == (401, "unauthorized")
    code, body = await api.call("GET", "/api/me", token="not.a.jwt")
    assert (code, body["error"]["code"]) == (401, "token_invalid")
    code, body = await api.call("POST", "/api/auth/login", {"email": {"$gt": ""}, "password": "x"})
    assert (code, body["error"]["code"]) == (422, "invalid")
    assert body["error"]["message"].startswith("email:")
    code, body = await api.call(
        "POST", "/api/auth/signup", {"email": "a@b.co", "password": "short", "name": "A"}
    )
    assert (code, body["error"]["code"]) == (422, "invalid")


@pytest.mark.gen_test(timeout=60)
async def test_login_rate_limit(api, services):
    await api.host("rate@example.com")
    codes = []
    for _ in range(services.settings.login_rate + 1):
        code, _ = await api.call(
            "POST", "/api/auth/login", {"email": "rate@example.com", "password": "wrong pw!"}
        )
        codes.append(code)
    assert codes[-1] == 429 and set(codes[:-1]) == {401}


@pytest.fixture
def closed_app(make_settings, io_loop):
    from server import make_app, open_services

    svc = io_loop.run_sync(lambda: open_services(make_settings(SIGNUP_OPEN="false")))
    yield make_app(svc)
    io_loop.run_sync(svc.close)


@pytest.mark.gen_test
async def test_signup_can_be_closed(http_client, make_settings):
    import tornado.httpserver
    from tornado.testing import bind_unused_port

    from server import make_app, open_services

    svc = await open_services(make_settings(SIGNUP_OPEN="false"))
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(make_app(svc))
    server.add_sockets([sock])
    try:
        api = Api(http_client, f"http://127.0.0.1:{port}")
        code, body = await api.call(
            "POST", "/api/auth/signup", {"email": "x@example.com", "password": "long enough", "name": "X"}
        )
        assert (code, body["error"]["code"]) == (403, "signup_closed")
    finally:
        server.stop()
        await svc.close()


@pytest.mark.gen_test
async def test_logout_ends_live_connections_of_that_token_and_refuses_it_on_the_websocket(
    api, base_url, services
):
    from tests.wsclient import WsClient

    ws = base_url.replace("http://", "ws://") + "/ws"
    host = await api.host()
    token = host["access_token"]
    other_session = (
        await api.call(
            "POST", "/api/auth/login", {"email": host["user"]["email"], "password": "correct horse battery"}
        )
    )[1]
    live = await WsClient.connect(ws, token)
    elsewhere = await WsClient.connect(ws, other_session["access_token"])
    code, _ = await api.call("POST", "/api/auth/logout", None, token)
    assert code == 204
    assert (await live.closed()).code == 4003
    await elsewhere.send({"type": "ping"})
    await elsewhere.expect("pong")  # another session of the same host is untouched
    again = await WsClient.connect(ws)
    await again.send({"type": "auth", "token": token})
    assert (await again.expect("error"))["code"] == "token_revoked"
    assert (await again.closed()).code == 4001
    elsewhere.close()


async def assert_revoked(api, base_url, token):
    """``token`` is refused by REST, the WebSocket's ``auth`` and the SSE ticket endpoint."""
    code, body = await api.call("GET", "/api/me", token=token)
    assert (code, body["error"]["code"]) == (401, "token_revoked")
    code, body = await api.call("POST", "/api/realtime/tickets", token=token)
    assert (code, body["error"]["code"]) == (401, "token_revoked")
    again = await WsClient.connect(base_url)
    await again.send({"type": "auth", "token": token})
    assert (await again.expect("error"))["code"] == "token_revoked"
    assert (await again.closed()).code == 4001


@pytest.mark.gen_test(timeout=30)
async def test_logout_revokes_an_attendee_join_token(api, base_url):
    host, guest, w = await api.live_webinar()
    live = await WsClient.connect(base_url, guest)
    assert (await live.subscribe(f"room:{w['id']}"))["type"] == "subscribed"
    code, _ = await api.call("POST", "/api/auth/logout", None, guest)
    assert code == 204
    assert (await live.closed()).code == 4003
    await assert_revoked(api, base_url, guest)
    code, _ = await api.call("GET", "/api/me", token=host)  # the host is not affected
    assert code == 200


@pytest.mark.parametrize("jti", [None, "crm-token-1"])
@pytest.mark.gen_test(timeout=30)
async def test_logout_revokes_an_integrator_token_with_or_without_jti(api, base_url, jti):
    host, _, w = await api.live_webinar()
    ivy = integrator_token(w["id"], **({"jti": jti} if jti else {}))
    other = integrator_token(w["id"], name="Ivy again", **({"jti": "crm-token-2"} if jti else {}))
    live = await WsClient.connect(base_url, ivy)
    code, _ = await api.call("POST", "/api/auth/logout", None, ivy)
    assert code == 204
    assert (await live.closed()).code == 4003
    await assert_revoked(api, base_url, ivy)
    code, me = await api.call("GET", "/api/me", token=other)  # another token of the same user works
    assert code == 200 and me["id"] == "ext:crm-42"


@pytest.mark.gen_test(timeout=30)
async def test_a_ticket_issued_before_logout_is_refused_after_it(api, http_client, base_url):
    host = await api.host()
    token = host["access_token"]
    ticket = await ticket_for(http_client, base_url, token)
    code, _ = await api.call("POST", "/api/auth/logout", None, token)
    assert code == 204
    refused = await EventStream().open(base_url, ticket, [f"user:{host['user']['id']}"])
    assert (refused.status, refused.error["code"]) == (401, "token_revoked")
    await refused.close()
