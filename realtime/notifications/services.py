"""The notification subsystem as one unit: job queue, worker, Web Push, email, notifier and triggers.

Email goes by SMTP when ``SMTP_URL`` is set, else to the development mailbox, except with
``MODE=production``, where no ``SMTP_URL`` means no email (logged at start-up): the development
mailbox is never reachable in production.

``open_notifications`` builds it inside the running loop and starts the worker;
``NotificationServices.close`` stops the worker (running jobs get a few seconds, then their leases
lapse and another process takes them) and closes the push HTTP session.

Which jobs a process's worker takes is its ``role``: ``all`` of them in a process on its own;
with a mail process (``MAIL_PROCESS``, server.py) the mail's kinds (:data:`MAIL_KINDS`: composing,
sending, the link and password-reset mails) only there (``mail``) and the rest only in the server's
processes (``serving``), whose notifications hand their mail over as ``mail.compose`` jobs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from config import Settings
from realtime.auth.tokens import TokenService
from realtime.jobs.worker import Worker
from realtime.notifications.mail import JOB_KIND as MAIL_JOB
from realtime.notifications.mail import MailDelivery, MailTransport
from realtime.notifications.mail_compose import COMPOSE_JOB, MailComposer
from realtime.notifications.mail_mailbox import DevMailbox
from realtime.notifications.mail_smtp import SmtpTransport
from realtime.notifications.notifier import FANOUT_JOB, Notifier, Publisher
from realtime.notifications.password_reset import RESET_JOB, PasswordResetMail
from realtime.notifications.triggers import LINK_JOB, REMINDER_JOB, NotificationTriggers
from realtime.notifications.unsubscribe import UnsubscribeLinks
from realtime.notifications.webpush import JOB_KIND as PUSH_JOB
from realtime.notifications.webpush import PushDelivery, PushSender, generate_vapid_key, load_vapid
from realtime.webinars.audience import RoomAudience
from realtime.webinars.links import JoinLinks
from storage import jobs, mail, notifications, push_subscriptions
from storage.accounts import Accounts
from storage.jobs import JobQueue
from storage.mail import MailStore
from storage.mongo import Database
from storage.password_resets import PasswordResets
from storage.push_subscriptions import PushSubscriptions
from storage.registrations import Registrations
from storage.webinars import Webinars

log = logging.getLogger("realtime.notifications")

Role = Literal["all", "serving", "mail"]
MAIL_KINDS = frozenset({MAIL_JOB, COMPOSE_JOB, LINK_JOB, RESET_JOB})

INDEX_CREATORS = [
    jobs.create_indexes,
    notifications.create_indexes,
    push_subscriptions.create_indexes,
    mail.create_indexes,
]


def make_mail_transport(settings: Settings) -> MailTransport | None:
    """SMTP from ``SMTP_URL``; without it the development mailbox, or nothing in production."""
    url = settings.smtp_url.reveal()
    if url:
        return SmtpTransport(url, concurrency=settings.smtp_concurrency, timeout=settings.smtp_timeout)
    if settings.production:
        log.warning("SMTP_URL is not set: no email is sent (MODE=production has no development mailbox)")
        return None
    return DevMailbox(settings.base_url)


@dataclass
class NotificationServices:
    jobs: JobQueue
    worker: Worker
    subscriptions: PushSubscriptions
    sender: PushSender
    notifier: Notifier
    triggers: NotificationTriggers
    mail: MailStore
    mail_transport: MailTransport | None
    unsubscribe: UnsubscribeLinks
    password_resets: PasswordResetMail

    async def close(self) -> None:
        await self.worker.close()
        await self.sender.close()
        if self.mail_transport is not None:
            await self.mail_transport.close()


async def open_notifications(
    db: Database,
    settings: Settings,
    publisher: Publisher,
    audience: RoomAudience,
    tokens: TokenService,
    *,
    start_worker: bool = True,
    role: Role = "all",
) -> NotificationServices:
    queue = JobQueue(db)
    subscriptions = PushSubscriptions(db)
    key = settings.vapid_private_key.reveal() or await subscriptions.shared_secret(
        "vapid_private_key", generate_vapid_key
    )
    sender = PushSender(load_vapid(key), settings.vapid_subject, concurrency=settings.push_concurrency)
    push = PushDelivery(subscriptions, sender, queue)
    links = JoinLinks(tokens, settings.base_url)
    store = MailStore(db)
    unsubscribe = UnsubscribeLinks(settings)
    transport = make_mail_transport(settings)
    delivery = None
    if transport is not None:
        delivery = MailDelivery(store, transport, queue, lease_seconds=settings.job_lease_seconds)
    composer = None
    if delivery is not None:
        webinars = Webinars(db)
        composer = MailComposer(
            store,
            delivery,
            webinars,
            Registrations(db, webinars),
            links,
            unsubscribe,
            mail_from=settings.mail_from,
        )
    notifier = Notifier(db, publisher, queue, push, email=composer, links=links)
    triggers = NotificationTriggers(
        notifier, queue, audience, reminder_offsets=settings.reminder_offsets, base_url=settings.base_url
    )
    if composer is not None and role == "serving":
        composer.elsewhere = queue
    worker = Worker(
        queue,
        poll_interval=settings.worker_poll_interval,
        lease_seconds=settings.job_lease_seconds,
        kinds=MAIL_KINDS if role == "mail" else None,
        skip=MAIL_KINDS if role == "serving" else frozenset(),
    )
    worker.register(FANOUT_JOB, notifier.run_fanout)
    worker.register(REMINDER_JOB, triggers.run_reminder)
    worker.register(LINK_JOB, triggers.run_link)
    resets = PasswordResetMail(
        Accounts(db),
        PasswordResets(db),
        queue,
        composer,
        base_url=settings.base_url,
        ttl=settings.password_reset_ttl,
    )
    worker.register(RESET_JOB, resets.run)
    worker.register(PUSH_JOB, push.run)
    if delivery is not None:
        worker.register(MAIL_JOB, delivery.run)
    if composer is not None:
        worker.register(COMPOSE_JOB, composer.run)
    queue.on_enqueue = worker.wake
    if start_worker:
        worker.start()
    return NotificationServices(
        queue, worker, subscriptions, sender, notifier, triggers, store, transport, unsubscribe, resets
    )
