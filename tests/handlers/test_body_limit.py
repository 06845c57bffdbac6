"""A body over MAX_BODY_BYTES is answered 413 in the JSON error shape (Tornado's own limit answers a
bare 400 and drops the connection), however the body arrives: with a declared length, after
``Expect: 100-continue``, or chunked; the connection serves the next request."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpserver
import tornado.web
from tornado.httpclient import HTTPRequest

from handlers.base import JsonHandler
from handlers.body_limit import BodyLimit

LIMIT = 1000


class Echo(JsonHandler):
    def post(self) -> None:
        self.send({"size": len(self.request.body)})


@pytest.fixture
def http_server(io_loop, _unused_port):
    # as server.py serves: Tornado's limit set to the same value, the application wrapped
    app = BodyLimit(tornado.web.Application([(r"/echo", Echo)]), LIMIT)
    server = tornado.httpserver.HTTPServer(app, max_body_size=LIMIT)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()


def too_large(resp) -> bool:
    body = json.loads(resp.body)
    return resp.code == 413 and body["error"]["code"] == "payload_too_large" and str(LIMIT) in str(body)


@pytest.mark.gen_test
async def test_a_declared_length_over_the_limit_is_413_json(http_client, http_server, base_url):
    resp = await http_client.fetch(base_url + "/echo", method="POST", body=b"x" * LIMIT, raise_error=False)
    assert (resp.code, json.loads(resp.body)) == (200, {"size": LIMIT})
    resp = await http_client.fetch(
        base_url + "/echo", method="POST", body=b"x" * (LIMIT + 1), raise_error=False
    )
    assert too_large(resp), resp.body
    assert resp.headers["Content-Type"].startswith("application/json")


@pytest.mark.gen_test
async def test_expect_100_continue_is_answered_before_the_body(http_client, http_server, base_url):
    request = HTTPRequest(
        base_url + "/echo", method="POST", body=b"x" * (50 * LIMIT), expect_100_continue=True
    )
    resp = await http_client.fetch(request, raise_error=False)
    assert too_large(resp), resp.body


@pytest.mark.gen_test
async def test_a_chunked_body_over_the_limit_is_413_json(http_client, http_server, base_url):
    async def produce(write):
        for _ in range(5):
            await write(b"y" * 300)

    async def small(write):
        await write(b"y" * 300)

    request = HTTPRequest(base_url + "/echo", method="POST", body_producer=produce)
    resp = await http_client.fetch(request, raise_error=False)
    assert too_large(resp), resp.body
    request = HTTPRequest(base_url + "/echo", method="POST", body_producer=small)
    resp = await http_client.fetch(request, raise_error=False)
    assert (resp.code, json.loads(resp.body)) == (200, {"size": 300})


@pytest.mark.gen_test
async def test_the_connection_serves_the_next_request_after_a_413(http_server, http_port):
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    big = b"z" * (3 * LIMIT)
    writer.write(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
        + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    )
    await writer.drain()
    answers = []
    for _ in range(2):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answers.append((head.split(b" ")[1], json.loads(await reader.readexactly(length))))
    writer.close()
    assert answers[0][0] == b"413" and answers[0][1]["error"]["code"] == "payload_too_large"
    assert answers[1] == (b"200", {"size": 2})
