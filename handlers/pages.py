"""The web pages: HTML from static/ at friendly paths, static assets under /static/, and the security
headers every page response carries (a Content-Security-Policy with no inline scripts at all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Scripts and styles only from this origin; video from anywhere over https (HLS streams, blob: for MSE);
# embeddable players (YouTube, Vimeo...) in https frames; the page itself is never framed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob: https:",
        "connect-src 'self' ws: wss: https:",
        "frame-src https:",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def set_security_headers(handler: tornado.web.RequestHandler) -> None:
    handler.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Permissions-Policy", "camera=(), microphone=(), geolocation=()")


class AssetHandler(tornado.web.StaticFileHandler):
    """``/static/...``: files with the security headers; revalidated so a deploy shows at once."""

    def set_extra_headers(self, path: str) -> None:
        set_security_headers(self)
        self.set_header("Cache-Control", "no-cache")

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        # The OS refuses some names outright (an embedded NUL byte: ValueError); no such file exists.
        try:
            return super().validate_absolute_path(root, absolute_path)
        except ValueError:
            raise tornado.web.HTTPError(404) from None


class PageHandler(tornado.web.RequestHandler):
    """One HTML page from static/; path arguments (webinar ids) are read by the page's script."""

    def initialize(self, page: str, static_dir: Path = STATIC_DIR) -> None:
        self.file = static_dir / page

    def set_default_headers(self) -> None:
        set_security_headers(self)
        self.set_header("Cache-Control", "no-cache")

    def get(self, *args: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.file.read_bytes())

    def head(self, *args: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish()


def routes(static_dir: Path = STATIC_DIR) -> list[tuple[str, type, dict[str, Any]]]:
    """The page and asset routes; ``/join/<id>`` carries the attendee token in the URL fragment."""
    webinar = r"([A-Za-z0-9_-]{1,64})"
    pages: list[tuple[str, str]] = [
        (r"/", "index.html"),
        (r"/host", "host.html"),
        (r"/webinars/" + webinar + r"/register", "register.html"),
        # The webinar's public page, where notifications link: its details and registration.
        (r"/webinars/" + webinar, "register.html"),
        (r"/join/" + webinar, "room.html"),
        # The registrant's cancel page: their join link's token in the fragment, as on /join/<id>.
        (r"/cancel/" + webinar, "cancel.html"),
        (r"/reset-password", "reset-password.html"),
    ]
    out: list[tuple[str, type, dict[str, Any]]] = [
        (pattern, PageHandler, {"page": page, "static_dir": static_dir}) for pattern, page in pages
    ]
    out.append((r"/static/(.*)", AssetHandler, {"path": str(static_dir)}))
    out.append((r"/(favicon\.ico)", AssetHandler, {"path": str(static_dir)}))  # browsers ask for it
    return out
