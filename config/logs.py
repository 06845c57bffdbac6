"""Logging set-up: one line per event, text for people or JSON for log pipelines."""

from __future__ import annotations

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        for key in (
            "request_id",
            "status",
            "method",
            "path",
            "duration_ms",
            "remote_ip",
            "conn_id",
        ):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def setup_logging(level: str, fmt: str, worker: int | None = None) -> None:
    """Log to stderr; a supervised worker's lines carry its index (``worker`` in JSON, ``[wN]``)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        tag = "" if worker is None else f" [w{worker}]"
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s{tag} %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Tornado's own access log is replaced by handlers.base.log_request.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
