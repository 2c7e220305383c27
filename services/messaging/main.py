"""The messaging service: conversations and messages over REST, and the chat socket with resume."""

from fastapi import FastAPI

from services.messaging.attachments.router import router as attachments_router
from services.messaging.config import Settings
from services.messaging.conversations.router import router as conversations_router
from services.messaging.messages.router import router as messages_router
from services.messaging.people.service import people_and_handles_consumer
from services.messaging.realtime import runtime
from services.messaging.realtime.router import router as realtime_router
from shared.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = create_service_app(
        settings=settings, title="Hearth messaging", description="Direct and group conversations.",
        # messages first: its fixed paths (/messages/search, /direct/...) must win over /{conversation_id}
        routers=[messages_router, attachments_router, conversations_router, realtime_router],
        consumers=[people_and_handles_consumer(settings)], on_startup=[runtime.startup(settings)])
    runtime.install(app, settings)
    return app


def __getattr__(name: str):
    # `uvicorn services.messaging.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
