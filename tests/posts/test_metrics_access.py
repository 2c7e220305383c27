"""/metrics stays internal; with HEARTH_METRICS_TOKEN it also wants that bearer token."""

import re
from uuid import uuid4

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


async def test_metrics_count_requests_and_their_latency_by_handler_method_and_status(client, make_person, auth):
    me = await make_person()
    assert (await client.get("/api/v1/feeds/home", headers=auth(me))).status_code == 200
    assert (await client.get("/api/v1/feeds/home")).status_code == 401
    text = (await client.get("/metrics")).text
    for status in ("2xx", "4xx"):
        labels = f'handler="/api/v1/feeds/home",method="GET",status="{status}"'
        assert re.search(r"^http_requests_total\{" + re.escape(labels) + r"\} [1-9]", text, re.M), text
        bucket = labels.replace(",method", ',le="+Inf",method')
        assert re.search(r"^http_request_duration_seconds_bucket\{" + re.escape(bucket) + r"\} [1-9]", text, re.M), text
    assert 'handler="/metrics"' not in text and 'handler="/healthz"' not in text  # not instrumented


def _requests_total(text: str, labels: str) -> float:
    """The request counter's value for these labels (0 when absent)."""
    found = re.search(r"^http_requests_total\{" + labels + r"\} ([0-9.]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_metrics_name_the_route_template_for_each_method_and_path(client, make_person, auth):
    # The registry lives as long as the test process: earlier tests' requests are counted too, so deltas.
    counted = {"post": r'handler="/api/v1/posts/\{post_id\}",method="GET",status="4xx"',
               "views": r'handler="/api/v1/posts/views",method="POST",status="4xx"',
               "none": r'handler="none",method="GET",status="4xx"'}
    before = (await client.get("/metrics")).text
    me = await make_person()
    for _ in range(2):  # the second time from the middleware's cache of handlers: the same labels
        for post_id in (uuid4(), uuid4()):
            assert (await client.get(f"/api/v1/posts/{post_id}", headers=auth(me))).status_code == 404
        assert (await client.post("/api/v1/posts/views", headers=auth(me), json={"post_ids": []})).status_code == 422
        assert (await client.get("/no/such/route")).status_code == 404
    text = (await client.get("/metrics")).text
    grown = {name: _requests_total(text, labels) - _requests_total(before, labels) for name, labels in counted.items()}
    assert grown == {"post": 4.0, "views": 2.0, "none": 2.0}, text
