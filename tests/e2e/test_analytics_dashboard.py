"""The live dashboard in a real headless Chromium against the running services: charts render, the
numbers on the page are the API's, and new activity reaches the page through the live stream."""

import tempfile
import time
from pathlib import Path

from tests.e2e.analytics_fixtures import browser  # noqa: F401  (fixture)
from tests.e2e.conftest import ADMIN, eventually, settled
from tests.e2e.test_event_path import login, new_person, post

NUMBERS = ("members", "active_members", "contributors", "organic_content", "active_rate")


async def api_overview(http, stack, headers) -> dict:
    response = await http.get(f"{stack.urls['analytics']}/api/v1/analytics/overview", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def page_numbers(page) -> dict:
    return await page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-metric]')]
        .map(el => [el.dataset.metric, el.dataset.raw === '' ? null : Number(el.dataset.raw)]))""")


async def test_dashboard_charts_show_the_api_numbers_and_update_live(http, stack, browser):  # noqa: F811
    admin = await login(http, stack, ADMIN["email"], ADMIN["password"])
    people = [await new_person(http, stack, admin) for _ in range(5)]
    for _, headers in people:
        await post(http, stack, headers, "Hello from the dashboard test")
    await eventually(lambda: api_overview(http, stack, admin), lambda o: o["contributors"] >= 5,
                     message="analytics to see five contributors")
    await settled(stack)  # nothing from earlier tests still on its way: the page and the API agree, counts are exact

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    token = admin["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{stack.urls['analytics']}/analytics/dashboard#token={token}")
    await page.wait_for_function("window.hearthDashboard && window.hearthDashboard.ready", timeout=30_000)

    # Charts are drawn by the vendored Chart.js (no network beyond the service itself).
    charts = await page.evaluate("""() => ['activity-chart', 'segments-chart'].map(id => {
        const c = Chart.getChart(id); return {points: c.data.datasets.map(d => d.data.length),
        labels: c.data.labels.length, width: c.width, height: c.height}; })""")
    assert charts[0]["points"] == [28, 28, 28] and charts[0]["width"] > 100 and charts[0]["height"] > 100
    assert charts[1]["labels"] >= 1  # the 5 new people without a department make a shown segment

    overview = await api_overview(http, stack, admin)
    shown = await page_numbers(page)
    assert {k: shown[k] for k in NUMBERS} == {k: overview[k] for k in NUMBERS}
    mau = await page.evaluate("Chart.getChart('activity-chart').data.datasets[2].data")
    assert mau == [r["mau"] for r in overview["series"]]

    # New activity reaches the open page through the live stream (no reload).
    before = shown["organic_content"]
    started = time.monotonic()
    await post(http, stack, people[0][1], "One more, live")
    await eventually(lambda: page_numbers(page), lambda n: n["organic_content"] == before + 1,
                     message="the dashboard to show the new post")
    print(f"\ndashboard showed the new post {time.monotonic() - started:.2f} s after it was created")

    # Filters: another segment dimension re-opens the stream.
    await page.select_option("#segment", "client")
    await page.wait_for_function("window.hearthDashboard.last.segments.by === 'client'", timeout=30_000)
    assert await page.evaluate("window.hearthDashboard.error") is None

    artifact = Path(tempfile.gettempdir()) / "analytics-dashboard-screenshot.png"  # the test's artifact; each run replaces it
    await page.screenshot(path=str(artifact), full_page=True)
    assert artifact.stat().st_size > 10_000
    print(f"dashboard screenshot: {artifact}")
