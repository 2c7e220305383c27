"""Metrics answers are reused only while the rollups have not changed."""

from services.analytics.ingest.service import bump_version
from services.analytics.metrics.cache import ResultCache
from shared.db import make_sessionmaker


def counting():
    calls = []

    async def compute():
        calls.append(1)
        return len(calls)

    return compute


async def test_an_answer_is_reused_until_a_committed_change_bumps_the_version(engine):
    # Real commits (not the savepoint sessions): the cache only trusts what other transactions committed.
    maker = make_sessionmaker(engine, service="analytics")
    cache, compute = ResultCache(), counting()
    async with maker() as session:
        assert await cache.get(session, ("overview", 1), compute) == 1
    async with maker() as session:
        assert await cache.get(session, ("overview", 1), compute) == 1  # nothing changed: reused
        assert await cache.get(session, ("overview", 2), compute) == 2  # another window is its own answer
    async with maker() as session, session.begin():
        await bump_version(session)
    async with maker() as session:
        assert await cache.get(session, ("overview", 1), compute) == 3  # the rollups changed: recomputed
        assert await cache.get(session, ("overview", 1), compute) == 3


async def test_a_transaction_that_changed_rollups_itself_never_reads_the_cache(engine):
    maker = make_sessionmaker(engine, service="analytics")
    cache, compute = ResultCache(), counting()
    async with maker() as session:
        assert await cache.get(session, ("segments",), compute) == 1
    async with maker() as session:
        await bump_version(session)  # uncommitted: other sessions still see the old version
        assert await cache.get(session, ("segments",), compute) == 2
        assert await cache.get(session, ("segments",), compute) == 3
        await session.rollback()
    async with maker() as session:
        assert await cache.get(session, ("segments",), compute) == 1


async def test_the_least_recently_used_answer_goes_first(engine):
    maker = make_sessionmaker(engine, service="analytics")
    cache, compute = ResultCache(size=2), counting()
    async with maker() as session:
        for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
            await cache.get(session, (key,), compute)
        assert await cache.get(session, ("a",), compute) == 1
        assert await cache.get(session, ("b",), compute) == 4


async def test_a_person_deactivated_on_people_v1_drops_the_cached_answers(engine, settings):
    """Both consumers of people.v1 (the directory read model and the event log) bump the version: the members
    count of a cached overview never outlives a deactivation, whichever applies it first."""
    from types import SimpleNamespace

    from uuid6 import uuid7

    from services.analytics.ingest.consumers import directory_consumer, event_log_consumer
    from services.analytics.metrics import service
    from services.analytics.metrics.cache import RESULTS
    from services.analytics.metrics.window import Window
    from sqlalchemy import text
    from tests.analytics.factories import at, person

    maker = make_sessionmaker(engine, service="analytics")
    directory, log = directory_consumer(settings), event_log_consumer(settings)
    window = Window(at("2020-01-01T00:00").date(), at("2020-01-29T00:00").date())  # far from every other test's data
    ids = [uuid7(), uuid7()]
    created = [person(i, time=at("2019-12-01T00:00"), department="Far") for i in ids]
    gone = person(ids[0], time=at("2020-01-10T00:00"), kind="deactivated", department="Far", active=False)

    async def deliver(envelope):
        await directory.apply(maker, envelope, envelope.payload(), directory.handlers[envelope.type])
        assert await log._apply_batch([SimpleNamespace(value=envelope.to_bytes())] * 2, maker)  # batch mode, decoded fast

    async def members():
        async with maker() as session:
            return (await service.overview(session, window))["members"]

    try:
        for envelope in created:
            await deliver(envelope)
        before = await members()
        assert await members() == before  # cached
        misses = RESULTS.misses
        await directory.apply(maker, gone, gone.payload(), directory.handlers[gone.type])
        await members()
        assert RESULTS.misses == misses + 1  # the directory's change alone dropped the answer
        assert await log._apply_batch([SimpleNamespace(value=gone.to_bytes())] * 2, maker)
        assert await members() == before - 1
    finally:
        async with maker() as session, session.begin():
            every = [e.id for e in (*created, gone)]
            await session.execute(text("DELETE FROM people WHERE id = ANY(:ids)"), {"ids": ids})
            await session.execute(text("DELETE FROM directory_people WHERE id = ANY(:ids)"), {"ids": ids})
            await session.execute(text("DELETE FROM event_log WHERE event_id = ANY(:ids)"), {"ids": every})
            await session.execute(text("DELETE FROM processed_events WHERE event_id = ANY(:ids)"), {"ids": every})
