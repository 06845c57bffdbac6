"""The notification subsystem as one unit: job queue, worker, Web Push, notifier and triggers.

``open_notifications`` builds it inside the running loop and starts the worker;
``NotificationServices.close`` stops the worker (running jobs get a few seconds, then their leases
lapse and another process takes them) and closes the push HTTP session.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from realtime.jobs.worker import Worker
from realtime.notifications.notifier import FANOUT_JOB, Notifier, Publisher
from realtime.notifications.triggers import REMINDER_JOB, NotificationTriggers
from realtime.notifications.webpush import JOB_KIND as PUSH_JOB
from realtime.notifications.webpush import PushDelivery, PushSender, generate_vapid_key, load_vapid
from realtime.webinars.audience import RoomAudience
from storage import jobs, notifications, push_subscriptions
from storage.jobs import JobQueue
from storage.mongo import Database
from storage.push_subscriptions import PushSubscriptions

INDEX_CREATORS = [jobs.create_indexes, notifications.create_indexes, push_subscriptions.create_indexes]


@dataclass
class NotificationServices:
    jobs: JobQueue
    worker: Worker
    subscriptions: PushSubscriptions
    sender: PushSender
    notifier: Notifier
    triggers: NotificationTriggers

    async def close(self) -> None:
        await self.worker.close()
        await self.sender.close()


async def open_notifications(
    db: Database,
    settings: Settings,
    publisher: Publisher,
    audience: RoomAudience,
    *,
    start_worker: bool = True,
) -> NotificationServices:
    queue = JobQueue(db)
    subscriptions = PushSubscriptions(db)
    key = settings.vapid_private_key.reveal() or await subscriptions.shared_secret(
        "vapid_private_key", generate_vapid_key
    )
    sender = PushSender(load_vapid(key), settings.vapid_subject, concurrency=settings.push_concurrency)
    push = PushDelivery(subscriptions, sender, queue)
    notifier = Notifier(db, publisher, queue, push)
    triggers = NotificationTriggers(
        notifier, queue, audience, reminder_offsets=settings.reminder_offsets, base_url=settings.base_url
    )
    worker = Worker(
        queue, poll_interval=settings.worker_poll_interval, lease_seconds=settings.job_lease_seconds
    )
    worker.register(FANOUT_JOB, notifier.run_fanout)
    worker.register(REMINDER_JOB, triggers.run_reminder)
    worker.register(PUSH_JOB, push.run)
    queue.on_enqueue = worker.wake
    if start_worker:
        worker.start()
    return NotificationServices(queue, worker, subscriptions, sender, notifier, triggers)
