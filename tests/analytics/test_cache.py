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
