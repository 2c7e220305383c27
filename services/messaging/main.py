"""The messaging service: conversations and messages over REST, and the chat socket with resume."""

import gc

from fastapi import FastAPI

from services.messaging.attachments.router import router as attachments_router
from services.messaging.config import Settings
from services.messaging.conversations.router import router as conversations_router
from services.messaging.messages.router import router as messages_router
from services.messaging.people.service import people_and_handles_consumer
from services.messaging.realtime import runtime
from services.messaging.realtime.router import router as realtime_router
from shared.app import create_service_app


async def collect_less_often(app: FastAPI) -> None:
    """Full collections stalled every socket of the replica for tens to hundreds of ms (the chat latency's
    tail): what is alive once started (modules, the app) is frozen out of them, and young collections run
    every 10,000 allocations instead of 700, so far fewer of a message's short-lived objects (futures,
    frames in flight) are promoted to the old generation, whose growth is what sets off a full pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = create_service_app(
        settings=settings, title="Hearth messaging", description="Direct and group conversations.",
        # messages first: its fixed paths (/messages/search, /direct/...) must win over /{conversation_id}
        routers=[messages_router, attachments_router, conversations_router, realtime_router],
        consumers=[people_and_handles_consumer(settings)], on_startup=[runtime.startup(settings), collect_less_often])
    runtime.install(app, settings)
    return app


def __getattr__(name: str):
    # `uvicorn services.messaging.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
