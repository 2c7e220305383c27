from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.metrics.models import DailyCount, EventLog
from services.analytics.metrics.schemas import DayCount, Overview
from shared.db import utcnow
from shared.events import Envelope, EventData

# Which counter an event type bumps; other events are only logged.
COUNTERS = {"hearth.post.created": "posts"}


async def record_event(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    """Consumer of every topic: log the event and bump its daily counter (exactly once, by dedupe)."""
    logged = await session.scalar(
        insert(EventLog).values(event_id=envelope.id, type=envelope.type, time=envelope.time, actor_id=envelope.actor,
                                client=envelope.client, subject=envelope.subject, data=envelope.data)
        .on_conflict_do_nothing().returning(EventLog.event_id))
    metric = COUNTERS.get(envelope.type)
    if logged is None or metric is None:
        return
    day = envelope.time.date()
    stmt = insert(DailyCount).values(day=day, metric=metric, count=1)
    await session.execute(stmt.on_conflict_do_update(index_elements=["day", "metric"],
                                                     set_={"count": DailyCount.count + 1}))


async def overview(session: AsyncSession, *, days: int, end: date | None = None) -> Overview:
    """Posts per UTC day over [end - days, end), zero-filled."""
    end = end or utcnow().date() + timedelta(days=1)
    start = end - timedelta(days=days)
    rows = await session.execute(select(DailyCount.day, DailyCount.count)
                                 .where(DailyCount.metric == "posts", DailyCount.day >= start, DailyCount.day < end))
    counts = dict(rows.all())
    series = [DayCount(day=start + timedelta(days=i), count=counts.get(start + timedelta(days=i), 0))
              for i in range(days)]
    return Overview(start=start, end=end, posts=sum(d.count for d in series), posts_per_day=series)
