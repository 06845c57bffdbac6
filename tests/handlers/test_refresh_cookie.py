"""A browser's session cookie: the refresh token in an HttpOnly cookie for /api/auth/refresh only,
rotated on use, guarded by the CSRF header, revoked and cleared by DELETE."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any

import pytest

from tests.api import Api


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


class Browser:
    """A tiny cookie jar over the test's HTTP client: what a same-site browser would send."""

    def __init__(self, http_client: Any, base_url: str) -> None:
        self.http, self.base = http_client, base_url
        self.jar: dict[str, Any] = {}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: str | None = "cookie",
        origin: str | None = None,
    ) -> tuple[int, Any, Any]:
        headers = {"Content-Type": "application/json"}
        cookies = [f"{name}={m.value}" for name, m in self.jar.items() if path.startswith(m["path"] or "/")]
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        if csrf == "cookie" and "host_csrf" in self.jar:
            headers["X-CSRF-Token"] = self.jar["host_csrf"].value
        elif csrf not in (None, "cookie"):
            headers["X-CSRF-Token"] = csrf
        if origin is not None:
            headers["Origin"] = origin
        payload = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        resp = await self.http.fetch(
            self.base + path,
            method=method,
            body=payload,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        set_cookies = SimpleCookie()
        for line in resp.headers.get_list("Set-Cookie"):
            set_cookies.load(line)
        for name, morsel in set_cookies.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.jar.pop(name, None)
            else:
                self.jar[name] = morsel
        return resp.code, json.loads(resp.body) if resp.body else None, set_cookies


@pytest.fixture
def browser(http_client, base_url):
    return Browser(http_client, base_url)


async def signed_in(api: Api, browser: Browser) -> dict[str, Any]:
    host = await api.host()
    code, body, cookies = await browser.call(
        "POST",
        "/api/auth/login",
        {"email": host["user"]["email"], "password": "correct horse battery", "cookie": True},
    )
    assert code == 200, body
    return {"body": body, "cookies": cookies}


@pytest.mark.gen_test
async def test_login_sets_an_httponly_strict_cookie_for_the_refresh_path_only(api, browser):
    login = await signed_in(api, browser)
    assert "refresh_token" not in login["body"] and login["body"]["access_token"]
    refresh = login["cookies"]["host_refresh"]
    assert refresh["httponly"] and refresh["samesite"] == "Strict" and refresh["path"] == "/api/auth/refresh"
    assert not refresh["secure"]  # plain HTTP here; Secure when the request came over TLS
    csrf = login["cookies"]["host_csrf"]
    assert not csrf["httponly"] and csrf["samesite"] == "Strict" and csrf["path"] == "/"


@pytest.mark.gen_test
async def test_refresh_rotates_the_cookie_and_the_old_one_is_refused(api, browser):
    await signed_in(api, browser)
    first = browser.jar["host_refresh"].value
    code, body, _ = await browser.call("POST", "/api/auth/refresh")
    assert code == 200 and "refresh_token" not in body, body
    assert browser.jar["host_refresh"].value != first
    code, me = await api.call("GET", "/api/me", token=body["access_token"])
    assert code == 200 and me["role"] == "host"
    code, body, _ = await browser.call("POST", "/api/auth/refresh")  # the browser moves on
    assert code == 200
    # the replayed old cookie, after its successor was used, is reuse: the whole family ends
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": first})
    assert (code, body["error"]["code"]) == (401, "refresh_reused")
    code, body, _ = await browser.call("POST", "/api/auth/refresh")
    assert (code, body["error"]["code"]) == (401, "refresh_invalid")


@pytest.mark.gen_test
async def test_refresh_without_the_csrf_header_or_from_another_origin_is_refused(api, browser):
    await signed_in(api, browser)
    for kwargs in ({"csrf": None}, {"csrf": "forged"}, {"origin": "https://evil.example"}):
        code, body, _ = await browser.call("POST", "/api/auth/refresh", **kwargs)
        assert (code, body["error"]["code"]) == (403, "csrf_failed"), kwargs
    code, body, _ = await browser.call("POST", "/api/auth/refresh", origin=browser.base)
    assert code == 200, body


@pytest.mark.gen_test
async def test_refresh_without_a_cookie_is_401(browser):
    browser.jar["host_csrf"] = SimpleCookie("host_csrf=abc; Path=/")["host_csrf"]
    code, body, _ = await browser.call("POST", "/api/auth/refresh")
    assert (code, body["error"]["code"]) == (401, "refresh_invalid")


@pytest.mark.gen_test
async def test_delete_revokes_and_clears_the_cookies(api, browser):
    await signed_in(api, browser)
    token = browser.jar["host_refresh"].value
    code, body, _ = await browser.call("DELETE", "/api/auth/refresh", csrf=None)
    assert (code, body["error"]["code"]) == (403, "csrf_failed")
    code, _, cookies = await browser.call("DELETE", "/api/auth/refresh")
    assert code == 204
    assert cookies["host_refresh"].value == "" and cookies["host_csrf"].value == ""
    assert "host_refresh" not in browser.jar
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": token})
    assert (code, body["error"]["code"]) == (401, "refresh_invalid")


@pytest.mark.gen_test
async def test_api_clients_keep_the_refresh_token_in_the_answer(api):
    host = await api.host()
    code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": host["refresh_token"]})
    assert code == 200 and body["refresh_token"], body
