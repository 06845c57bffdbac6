"""A cancellation that a client library turned into an error still cancels.

PyMongo 4.20's async client sometimes lets a ``CancelledError`` that lands during a failing
operation come out as ``AutoReconnect`` instead (1 in 200 cancels of an operation on a killed
server, measured). The request to cancel is then used up: a background loop that catches
``Exception`` to ride out an outage would go on for ever, and the close that cancelled it would
wait for ever. Every such handler calls :func:`raise_if_cancelling` first.

It lives in storage, the lowest layer with code, because the database is where it was seen; the
engine's Redis loops use it too.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if the running task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
