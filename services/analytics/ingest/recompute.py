"""Rebuild the rollups of a date range from the event log (same numbers as incremental ingest)."""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.ingest.classify import Event
from services.analytics.ingest.service import (BITS_PER_PERIOD, EPOCH, GROUP_EVENTS, PERSON_EVENTS, apply,
                                               bump_version, refresh_posts)
from services.analytics.metrics.service import RESPONDED

BATCH = 5000
DAY_TABLES = ("person_day", "person_client_day", "group_person_day", "post_day", "search_day")
FIRST_TABLES = ("post_viewers", "post_responders", "post_acks")


STATE_EVENTS = sorted(PERSON_EVENTS | GROUP_EVENTS)


async def count_events(session: AsyncSession, start: date, end: date) -> int:
    """How many events a recompute of [start, end) replays (for its progress bar)."""
    return await session.scalar(text("SELECT count(*) FROM event_log WHERE day >= :s AND day < :e "
                                     "AND NOT (type = ANY(:skip))"), {"s": start, "e": end, "skip": STATE_EVENTS})


async def recompute(session: AsyncSession, *, start: date, end: date,
                    progress: Callable[[int], None] = lambda n: None) -> int:
    """Clear the rollups of [start, end) and replay that range of the log in time order.

    People and group membership are state, not rollups: they are left as they are (replaying an old
    `member_added` after a later `member_removed` outside the range would be wrong)."""
    lo = datetime.combine(start, time(), UTC)
    hi = datetime.combine(end, time(), UTC)
    touched = set()
    for table in DAY_TABLES:
        await session.execute(text(f"DELETE FROM {table} WHERE day >= :s AND day < :e"), {"s": start, "e": end})
    for table in FIRST_TABLES:
        rows = await session.execute(text(f"DELETE FROM {table} WHERE first_at >= :lo AND first_at < :hi "
                                          "RETURNING post_id"), {"lo": lo, "hi": hi})
        touched |= set(rows.scalars())
    await session.execute(text("DELETE FROM comments WHERE created_at >= :lo AND created_at < :hi"),
                          {"lo": lo, "hi": hi})
    rows = await session.execute(text("DELETE FROM posts WHERE created_at >= :lo AND created_at < :hi "
                                      "RETURNING post_id"), {"lo": lo, "hi": hi})
    touched |= set(rows.scalars())
    done = 0
    after = (lo - timedelta(microseconds=1), UUID(int=0))
    while True:
        # Keyset over (time, event_id): the replay order is the order things happened.
        rows = (await session.execute(text("""
            SELECT event_id, type, time, actor_id, client, subject, data FROM event_log
            WHERE day >= :s AND day < :e AND (time, event_id) > (:t, :i)
              AND NOT (type = ANY(:skip))
            ORDER BY time, event_id LIMIT :n"""),
            {"s": start, "e": end, "t": after[0], "i": after[1], "n": BATCH,
             "skip": STATE_EVENTS})).all()
        if not rows:
            break
        events = [Event.from_row(*r) for r in rows]
        await apply(session, events)
        touched |= {p for e in events for p in e.post_ids()}
        after = (rows[-1][2], rows[-1][0])
        done += len(rows)
        progress(len(rows))
    await refresh_posts(session, reach_of=touched, responses_of=touched)
    await rebuild_bits(session, start, end)
    await rebuild_author_day(session, start, end)
    await rebuild_content_day(session, start, end)
    await rebuild_response_day(session, start, end)
    await bump_version(session)
    return done


async def rebuild_bits(session: AsyncSession, start: date, end: date) -> None:
    """The packed days of every period overlapping the range, from person_day."""
    p0 = (start - EPOCH).days // BITS_PER_PERIOD
    p1 = ((end - timedelta(days=1)) - EPOCH).days // BITS_PER_PERIOD
    await session.execute(text("DELETE FROM person_bits WHERE period BETWEEN :p0 AND :p1"), {"p0": p0, "p1": p1})
    await session.execute(text("""
        INSERT INTO person_bits (person_id, period, active, contrib)
        SELECT person_id, (day - :epoch) / 32,
               bit_or(1::bigint << ((day - :epoch) % 32)),
               coalesce(bit_or(1::bigint << ((day - :epoch) % 32)) FILTER (WHERE contributions > 0), 0)
        FROM person_day WHERE day >= :d0 AND day < :d1 GROUP BY 1, 2"""),
        {"epoch": EPOCH, "d0": EPOCH + timedelta(days=p0 * BITS_PER_PERIOD),
         "d1": EPOCH + timedelta(days=(p1 + 1) * BITS_PER_PERIOD)})


async def rebuild_author_day(session: AsyncSession, start: date, end: date) -> None:
    """Content per author per day of the range, from the posts and comments created in it (the deltas the
    replay noted for those days are dropped: the rebuilt rows already hold them)."""
    await session.execute(text("SELECT author_day_deltas()"))
    await session.execute(text("DELETE FROM pg_temp.author_day_delta WHERE day >= :s AND day < :e"),
                          {"s": start, "e": end})
    await session.execute(text("DELETE FROM author_day WHERE day >= :s AND day < :e"), {"s": start, "e": end})
    await session.execute(text(f"""
        INSERT INTO author_day (day, author_id, posts, organic_posts, comments, reach, responded)
        SELECT day, author_id, sum(posts), sum(organic), sum(comments), sum(reach), sum(responded) FROM (
          SELECT (created_at AT TIME ZONE 'UTC')::date AS day, coalesce(author_id, :nil) AS author_id, 1 AS posts,
                 (kind IS DISTINCT FROM 'announcement')::int AS organic, 0 AS comments, reach::bigint AS reach,
                 ({RESPONDED})::int AS responded
          FROM posts WHERE created_at >= :lo AND created_at < :hi
          UNION ALL
          SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce(author_id, :nil), 0, 0, 1, 0, 0
          FROM comments WHERE created_at >= :lo AND created_at < :hi) t
        GROUP BY day, author_id ORDER BY day, author_id"""),
        {"nil": UUID(int=0), "lo": datetime.combine(start, time(), UTC), "hi": datetime.combine(end, time(), UTC)})


async def rebuild_content_day(session: AsyncSession, start: date, end: date) -> None:
    """The range's day totals from the rebuilt author_day rows."""
    await session.execute(text("DELETE FROM content_day WHERE day >= :s AND day < :e"), {"s": start, "e": end})
    await session.execute(text("""
        INSERT INTO content_day (day, posts, organic_posts, comments, reach, responded)
        SELECT day, sum(posts), sum(organic_posts), sum(comments), sum(reach), sum(responded) FROM author_day
        WHERE day >= :s AND day < :e GROUP BY day ORDER BY day"""), {"s": start, "e": end})


async def rebuild_response_day(session: AsyncSession, start: date, end: date) -> None:
    """The first-response times of the range's days from its posts (the replay's deltas for those days are
    dropped: the rebuilt rows already hold them; other days' deltas are flushed by bump_version)."""
    await session.execute(text("SELECT response_day_deltas()"))
    await session.execute(text("DELETE FROM pg_temp.response_day_delta WHERE day >= :s AND day < :e"),
                          {"s": start, "e": end})
    await session.execute(text("DELETE FROM response_day WHERE day >= :s AND day < :e"), {"s": start, "e": end})
    await session.execute(text(f"""
        INSERT INTO response_day (day, seconds)
        SELECT (created_at AT TIME ZONE 'UTC')::date, array_agg(seconds ORDER BY seconds)
        FROM (SELECT created_at, extract(epoch FROM first_response_at - created_at)::float8 AS seconds FROM posts
              WHERE created_at >= :lo AND created_at < :hi AND {RESPONDED}) p
        GROUP BY 1 ORDER BY 1"""),
        {"lo": datetime.combine(start, time(), UTC), "hi": datetime.combine(end, time(), UTC)})
