"""The analytics service: the event log, rollups and adoption metrics."""

from fastapi import FastAPI

from services.analytics.config import Settings
from services.analytics.metrics.consumers import event_log_consumer
from services.analytics.metrics.router import router as metrics_router
from shared.app import create_service_app
from shared.directory import people_consumer


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings=settings, title="Hearth analytics", description="Adoption and engagement metrics.",
        routers=[metrics_router], consumers=[people_consumer(settings), event_log_consumer(settings)])


def __getattr__(name: str):
    # `uvicorn services.analytics.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
