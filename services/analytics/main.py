"""The analytics service: the event log, rollups, adoption metrics, reports and the live dashboard."""

from fastapi import FastAPI

from services.analytics.config import Settings
from services.analytics.ingest.consumers import directory_consumer, event_log_consumer
from services.analytics.ingest.partitions import PARTITIONS
from services.analytics.metrics.router import router as metrics_router
from services.analytics.metrics.router import scoped as scoped_metrics_router
from services.analytics.dashboard.router import live as live_router
from services.analytics.dashboard.router import pages as dashboard_pages
from services.analytics.reports.router import router as reports_router
from shared.app import create_service_app


async def create_partitions_ahead(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await PARTITIONS.create_ahead(session)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings=settings, title="Hearth analytics", description="Adoption and engagement metrics.",
        routers=[metrics_router, scoped_metrics_router, reports_router, live_router, dashboard_pages],
        on_startup=[create_partitions_ahead],
        consumers=[directory_consumer(settings), event_log_consumer(settings)])


def __getattr__(name: str):
    # `uvicorn services.analytics.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
