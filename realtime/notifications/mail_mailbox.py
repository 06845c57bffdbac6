"""The development mailbox: with no ``SMTP_URL`` (and never with ``MODE=production``) mail is kept in
the database instead of sent, readable at ``/dev/mailbox``, and each message is logged with its link
there, so a newcomer can walk the whole loop (register, open the mail, click the link) with no mail
server installed."""

from __future__ import annotations

import logging

from realtime.notifications.mail import Outcome, Outgoing

log = logging.getLogger("realtime.notifications.mail")

MAILBOX_PATH = "/dev/mailbox"


class DevMailbox:
    name = "mailbox"
    queued = False

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def send(self, messages: list[Outgoing]) -> list[Outcome]:
        for m in messages[:20]:
            log.info(
                "mail to %s kept in the development mailbox: %s%s/%s", m.to, self.base_url, MAILBOX_PATH, m.id
            )
        if len(messages) > 20:
            log.info("%d more mails kept in the development mailbox", len(messages) - 20)
        return [Outcome("sent") for _ in messages]

    async def close(self) -> None:
        return None
