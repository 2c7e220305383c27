"""/metrics stays internal; with HEARTH_METRICS_TOKEN it also wants that bearer token."""

from services.posts.main import create_app
from shared.testing import client_for


async def test_metrics_want_the_configured_bearer_token(settings, sessionmaker):
    app = create_app(settings.model_copy(update={"metrics_token": "scrape-" + "s" * 30}))
    async with client_for(app, sessionmaker) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "s" * 30})
        assert allowed.status_code == 200 and "http_request" in allowed.text


async def test_metrics_are_open_without_a_token_setting(client):
    assert (await client.get("/metrics")).status_code == 200
