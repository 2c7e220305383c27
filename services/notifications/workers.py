"""Background work besides the consumers: webhook deliveries, push sends and digests, each supervised.

Every worker claims its due rows with FOR UPDATE SKIP LOCKED and a lease, so replicas share the work,
a crash loses nothing (the lease expires and the row is due again) and nothing is sent twice by two
replicas at once.
"""

from fastapi import FastAPI

from services.notifications.config import Settings
from services.notifications.digests.messages import run_worker as run_message_emails
from services.notifications.digests.service import run_worker as run_digests
from services.notifications.push.service import run_worker as run_push
from services.notifications.webhooks.service import run_worker as run_webhooks


def install(settings: Settings):
    async def hook(app: FastAPI) -> None:
        if not settings.run_background:
            return
        sessionmaker = app.state.sessionmaker
        app.state.supervisor.add("notifications.webhook-deliveries",
                                 lambda stop: run_webhooks(sessionmaker, settings, stop))
        app.state.supervisor.add("notifications.push", lambda stop: run_push(sessionmaker, settings, stop))
        if settings.smtp_host:
            app.state.supervisor.add("notifications.digests", lambda stop: run_digests(sessionmaker, settings, stop))
            app.state.supervisor.add("notifications.message-emails",
                                     lambda stop: run_message_emails(sessionmaker, settings, stop))
    return hook
