"""The posts service: people, sign-in, the social graph and content."""

from datetime import timedelta

from fastapi import FastAPI

from services.posts.attachments.router import router as attachments_router
from services.posts.attachments.service import orphan_sweeper
from services.posts.auth.api_tokens import check_api_token
from services.posts.auth.router import router as auth_router
from services.posts.auth.service import TokenIssuer, check_session_token, load_signing_key
from services.posts.config import Settings
from services.posts.content.announcements import reminder_worker
from services.posts.content.router import router as content_router
from services.posts.feeds.router import router as feeds_router
from services.posts.graph.router import router as graph_router
from services.posts.groups import service as groups
from services.posts.groups.router import router as groups_router
from services.posts.groups.scim_router import router as scim_groups_router
from services.posts.people import service as people
from services.posts.people.router import router as people_router
from services.posts.scim.router import router as scim_router
from services.posts.search.router import router as search_router
from shared.app import create_service_app
from shared.auth import TokenVerifier
from shared.storage import storage_from_url


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    issuer = TokenIssuer(key=load_signing_key(settings), settings=settings)
    # posts verifies its own tokens from the key it holds; no HTTP round trip to itself.
    verifier = TokenVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    verifier.load_jwks(issuer.jwks())

    async def bootstrap_admin(app: FastAPI) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            await people.ensure_admin(session, email=settings.admin_email, password=settings.admin_password,
                                      display_name=settings.admin_name)
        async with app.state.sessionmaker() as session, session.begin():
            await groups.ensure_all_company_group(session)

    async def schedule_jobs(app: FastAPI) -> None:
        app.state.supervisor.add("announcement-reminders", reminder_worker(app.state.sessionmaker))
        app.state.supervisor.add("attachment-orphans", orphan_sweeper(
            app.state.sessionmaker, storage=storage_from_url(settings.storage_url),
            max_age=timedelta(hours=settings.attachment_orphan_hours)))

    app = create_service_app(
        settings=settings, title="Hearth posts", verifier=verifier, on_startup=[bootstrap_admin, schedule_jobs],
        description="People, sign-in, follows, groups, posts, feeds and search. Protected accounts: their posts "
                    "outside groups are for approved followers only; a post in a group has the group as its audience.",
        routers=[auth_router, people_router, graph_router, groups_router, attachments_router, content_router,
                 feeds_router, scim_groups_router, scim_router,  # scim_router's catch-all last
                 search_router])
    app.state.token_issuer = issuer
    app.state.api_token_guard = check_api_token  # posts checks its own token rows, not a read model
    app.state.session_guard = check_session_token  # and its own people and revoked sessions
    return app


def __getattr__(name: str):
    # `uvicorn services.posts.main:app` builds the app on first access, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
