"""Weekly and monthly reports: headline numbers against the previous period, CSV per table, PNG, HTML."""

import csv
import io
from datetime import UTC, datetime, time, timedelta

import pytest
from uuid6 import uuid7

from shared.db import utcnow
from tests.analytics import factories as f


def day(offset: int, hour: int = 12) -> datetime:
    """`offset` days before today, at `hour` UTC."""
    return datetime.combine(utcnow().date() - timedelta(days=offset), time(hour), UTC)


@pytest.fixture
async def company(deliver):
    people = [uuid7() for _ in range(6)]
    events = [f.person(p, time=day(40), department="Eng", name=f"eng{i}") for i, p in enumerate(people)]
    events += [f.person(p, time=day(40), department="Ops") for p in (uuid7(), uuid7())]
    previous_post, post = uuid7(), uuid7()
    events.append(f.post(people[0], previous_post, time=day(10)))  # the week before: 1 active, 1 post
    events.append(f.post(people[1], post, time=day(3)))  # last week: 3 active, 1 post + 1 comment
    events.append(f.view(people[2], post, time=day(2)))
    events.append(f.comment(people[3], post, time=day(3, 14)))
    events.append(f.view(people[4], post, time=day(0)))  # today: not in the last complete week
    await deliver(*events)
    return people


@pytest.fixture
def staff(keys):
    return keys.headers(uuid7(), roles=["communications"])


async def test_weekly_csv_headline_compares_with_the_week_before(company, client, staff):
    response = await client.get("/api/v1/analytics/reports/weekly?format=csv", headers=staff)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert rows["Active members"]["value"] == "3" and rows["Active members"]["previous"] == "1"
    assert rows["Active members"]["change"] == "2" and rows["Active members"]["change_pct"] == "200.0"
    assert rows["Organic content"]["value"] == "2" and rows["Organic content"]["previous"] == "1"


async def test_every_table_has_a_csv(company, client, staff):
    for table in ("headline", "activity", "departments", "content_types", "top_groups", "barriers", "champions"):
        response = await client.get(f"/api/v1/analytics/reports/monthly?format=csv&table={table}", headers=staff)
        assert response.status_code == 200, (table, response.text)
    activity = list(csv.DictReader(io.StringIO(
        (await client.get("/api/v1/analytics/reports/monthly?format=csv&table=activity", headers=staff)).text)))
    assert len(activity) == 28 and activity[-1]["day"] == (utcnow().date() - timedelta(days=1)).isoformat()
    departments = (await client.get("/api/v1/analytics/reports/weekly?format=csv&table=departments",
                                    headers=staff)).text
    assert "Eng,6,3,0.5,False" in departments and "Ops,,,,True" in departments  # 2 members: suppressed


async def test_png_and_html_reports_render(company, client, staff):
    png = await client.get("/api/v1/analytics/reports/weekly?format=png", headers=staff)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 10_000
    html = await client.get("/api/v1/analytics/reports/monthly", headers=staff)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "data:image/png;base64," in html.text and "Active rate by department" not in html.text.split("<img")[0]
    assert "<h2>Champions" in html.text and "format=csv&amp;table=barriers" in html.text


async def test_reports_are_for_staff_and_periods_are_checked(client, keys, staff):
    member = await client.get("/api/v1/analytics/reports/weekly?format=csv", headers=keys.headers(uuid7()))
    assert member.status_code == 403
    for path in ("reports/daily", "reports/weekly?format=pdf", "reports/weekly?format=csv&table=nope"):
        response = await client.get(f"/api/v1/analytics/{path}", headers=staff)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json", path
