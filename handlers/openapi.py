"""Serves the OpenAPI document at /api/openapi.json and a readable page at /api/docs."""

from __future__ import annotations

import html
from typing import Any

import tornado.web

from handlers.base import JsonHandler


class OpenApiHandler(JsonHandler):
    def initialize(self, document: dict[str, Any]) -> None:
        self.document = document

    def get(self) -> None:
        self.send(self.document)


class DocsHandler(tornado.web.RequestHandler):
    """A plain HTML listing of every operation (no external scripts), linking the JSON document."""

    def initialize(self, document: dict[str, Any]) -> None:
        self.document = document

    def get(self) -> None:
        rows = []
        for path, ops in self.document["paths"].items():
            for method, op in ops.items():
                body = (
                    op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                )
                body_name = body.get("$ref", "").rsplit("/", 1)[-1]
                who = op.get("description", "Public")
                cells = [f"<code>{method.upper()}</code>", f"<code>{html.escape(path)}</code>"]
                cells += [html.escape(op["summary"]), html.escape(who), html.escape(body_name)]
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        info = self.document["info"]
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(
            "<!doctype html><html><head><meta charset=utf-8><title>API</title><style>"
            "body{font:15px system-ui;margin:2em}td{padding:4px 10px;border-bottom:1px solid #ddd}"
            f"</style></head><body><h1>{html.escape(info['title'])}</h1><p>{html.escape(info['description'])}</p>"
            '<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1). '
            "Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>"
            "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th><th>Body</th></tr>"
            + "".join(rows)
            + "</table></body></html>"
        )
