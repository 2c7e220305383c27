"""The notifications service: the inbox, unread counts and (later) push, email and webhooks."""

from fastapi import FastAPI

from services.notifications.config import Settings
from services.notifications.inbox.consumers import social_consumer
from services.notifications.inbox.messaging import messaging_consumer
from services.notifications.inbox.router import router as inbox_router
from services.notifications.preferences.router import router as preferences_router
from services.notifications.realtime import runtime
from services.notifications.realtime.router import router as realtime_router
from services.notifications import workers
from services.notifications.webhooks.consumers import webhook_consumer
from services.notifications.webhooks.router import router as webhooks_router
from services.notifications.push.router import router as push_router
from services.notifications.digests.router import router as digests_router
from shared.app import create_service_app
from shared.directory import people_consumer


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings=settings, title="Hearth notifications",
        description="Notification inbox, preferences, socket, push, email digests and webhooks.",
        routers=[preferences_router, webhooks_router, push_router, digests_router, inbox_router, realtime_router],
        consumers=[people_consumer(settings), social_consumer(settings), messaging_consumer(settings),
                   webhook_consumer(settings)],
        on_startup=[runtime.install(settings), workers.install(settings)])


def __getattr__(name: str):
    # `uvicorn services.notifications.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
