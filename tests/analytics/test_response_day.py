"""response_day (the overview's median time to first response) against a recount done here in Python from the
events themselves: any arrival order, duplicates, posts that come after their responses, late days, recompute."""

import random
import statistics
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from uuid6 import uuid7

from services.analytics.ingest.recompute import recompute
from tests.analytics import factories as f
from tests.analytics.factories import at

START, END = date(2026, 11, 2), date(2026, 11, 9)
WINDOWS = [(START, END), (START, START + timedelta(days=1)), (date(2026, 11, 1), date(2026, 11, 11)),
           (date(2026, 11, 5), date(2026, 11, 7)), (date(2026, 12, 1), date(2026, 12, 8))]


def scenario(seed: int):
    """People, posts over 10 days around W (some at 23:59) and their responses: comments and reactions by
    others (sometimes past 24 h), by the author (never a response), repeated, in any order."""
    rng = random.Random(seed)
    people = [uuid7() for _ in range(6)]
    events = [f.person(p, time=at("2026-10-01T00:00"), department="Eng") for p in people]
    first = {}  # post -> (created, author, earliest response by someone else)
    activity = []
    for _ in range(60):
        author, post_id = rng.choice(people), uuid7()
        created = at("2026-11-01T00:00") + timedelta(days=rng.randrange(10), seconds=rng.choice(
            [rng.randrange(86400), 86399, 0]), microseconds=rng.randrange(1_000_000))
        activity.append(f.post(author, post_id, time=created))
        earliest = None
        for _ in range(rng.randrange(4)):
            who = rng.choice(people)
            when = created + timedelta(seconds=rng.choice([rng.randrange(3 * 86400), 86400, 86401, 1]),
                                       microseconds=rng.randrange(1_000_000))
            activity.append((f.comment if rng.random() < 0.5 else f.reaction)(who, post_id, time=when))
            if who != author:
                earliest = when if earliest is None else min(earliest, when)
        first[post_id] = (created, earliest)
    rng.shuffle(activity)
    return events, activity, first


def expected_days(first) -> dict[date, list[float]]:
    days = {}
    for created, response in first.values():
        if response is not None and response - created <= timedelta(hours=24):
            days.setdefault(created.date(), []).append((response - created).total_seconds())
    return {day: sorted(values) for day, values in days.items()}


def expected_median(days, start, end):
    values = [s for day, seconds in days.items() if start <= day < end for s in seconds]
    return round(statistics.median(values), 1) if values else None


@pytest.fixture
def staff(keys):
    return keys.headers(uuid7(), roles=["communications"])


async def kept_days(sessionmaker):
    async with sessionmaker() as session:
        rows = (await session.execute(text("SELECT day, seconds FROM response_day ORDER BY day"))).all()
    return {day: sorted(seconds) for day, seconds in rows if seconds}


async def medians(client, staff):
    out = []
    for start, end in WINDOWS:
        response = await client.get(f"/api/v1/analytics/overview?from={start}&to={end}", headers=staff)
        assert response.status_code == 200, response.text
        out.append(response.json()["median_time_to_first_response_seconds"])
    return out


@pytest.mark.parametrize("seed", [1, 2])
async def test_response_day_and_median_match_a_recount_whatever_the_order_duplicates_and_recompute(
        seed, deliver, sessionmaker, client, staff):
    people, activity, first = scenario(seed)
    await deliver(*people)
    await deliver(*activity[:40], *activity[:40])  # one by one, the first ones twice
    await deliver(*activity[20:], batch=True)  # the rest in one batch, with redeliveries
    days = expected_days(first)
    assert sum(len(v) for v in days.values()) >= 10  # the scenario has something to measure
    assert await kept_days(sessionmaker) == days
    assert await medians(client, staff) == [expected_median(days, s, e) for s, e in WINDOWS]
    # The same values from the posts analytics knows (the query the median used before response_day).
    async with sessionmaker() as session:
        for start, end in WINDOWS:
            from_posts = await session.scalar(text("""
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - created_at))
                FROM posts WHERE created_at >= :lo AND created_at < :hi AND first_response_at IS NOT NULL
                  AND first_response_at <= created_at + interval '24 hours'"""),
                {"lo": at(f"{start}T00:00"), "hi": at(f"{end}T00:00")})
            assert (round(float(from_posts), 1) if from_posts is not None else None) == expected_median(days, start, end)
        # Damage it, then rebuild a range from the log: the same rows.
        await session.execute(text("UPDATE response_day SET seconds = '{1, 2, 3}'"))
        await session.execute(text("DELETE FROM response_day WHERE day = '2026-11-04'"))
        await session.commit()
    async with sessionmaker() as session:
        await recompute(session, start=date(2026, 10, 25), end=date(2026, 11, 20))
        await session.commit()
    assert await kept_days(sessionmaker) == days
    # A recompute of part of the range (responses of its posts can lie outside it) changes nothing either.
    async with sessionmaker() as session:
        await recompute(session, start=date(2026, 11, 4), end=date(2026, 11, 6))
        await session.commit()
    assert await kept_days(sessionmaker) == days
    assert await medians(client, staff) == [expected_median(days, s, e) for s, e in WINDOWS]


async def test_merge_is_a_multiset_sum(sessionmaker):
    async with sessionmaker() as session:
        async def merge(current, seconds, n):
            return sorted(await session.scalar(text("SELECT response_day_merge(CAST(:c AS float8[]), "
                                                    "CAST(:s AS float8[]), CAST(:n AS int[]))"),
                                               {"c": current, "s": seconds, "n": n}))
        assert await merge([3.0, 1.0, 2.0], [2.0, 0.5], [2, 1]) == [0.5, 1.0, 2.0, 2.0, 2.0, 3.0]  # appended
        assert await merge([2.0, 1.0, 2.0, 3.0], [2.0, 4.0], [-1, 2]) == [1.0, 2.0, 3.0, 4.0, 4.0]  # one 2 less
        assert await merge([1.0], [1.0], [-1]) == []
        assert await merge([], [7.25], [1]) == [7.25]


async def test_an_earlier_first_response_arriving_late_replaces_the_value(deliver, sessionmaker, client, staff):
    author, other, post_id = uuid7(), uuid7(), uuid7()
    created = at("2026-11-03T10:00")
    await deliver(*(f.person(p, time=at("2026-10-01T00:00"), department="Eng") for p in (author, other)))
    await deliver(f.post(author, post_id, time=created))
    await deliver(f.comment(other, post_id, time=created + timedelta(hours=2)))
    assert await kept_days(sessionmaker) == {date(2026, 11, 3): [7200.0]}
    await deliver(f.reaction(other, post_id, time=created + timedelta(hours=1)))  # earlier, delivered later
    assert await kept_days(sessionmaker) == {date(2026, 11, 3): [3600.0]}
    await deliver(f.comment(author, post_id, time=created + timedelta(minutes=1)))  # the author's own: no response
    assert await kept_days(sessionmaker) == {date(2026, 11, 3): [3600.0]}
    assert (await medians(client, staff))[0] == 3600.0
