"""The messaging service: conversations and messages over REST and WebSocket (the spine keeps its people read model)."""

from fastapi import FastAPI

from services.messaging.config import Settings
from shared.app import create_service_app
from shared.directory import people_consumer


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings=settings, title="Hearth messaging", description="Direct and group conversations.",
        routers=[], consumers=[people_consumer(settings)])


def __getattr__(name: str):
    # `uvicorn services.messaging.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
