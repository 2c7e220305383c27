"""Daily partitions of the event log, created ahead (and on demand for late or replayed days)."""

import weakref
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import utcnow

SCHEMA = "event_log_partitions"
PARTITION_LOCK = 0x4E415254  # advisory lock key for creating partitions
AHEAD_DAYS = 7  # created at start-up and daily: this many days ahead of today, and as many back


def partition_name(day: date) -> str:
    return f"event_log_{day:%Y%m%d}"


async def existing_partitions(session: AsyncSession) -> set[date]:
    rows = await session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'event_log'"))
    days = set()
    for (name,) in rows:
        suffix = name.removeprefix("event_log_")
        if suffix.isdigit() and len(suffix) == 8:
            days.add(date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:])))
    return days


class Partitions:
    """Remembers which days have a partition, so the hot path asks PostgreSQL only for a new day.

    The memory is per bind (the engine in a service; a test's connection, whose partitions roll
    back with it)."""

    def __init__(self):
        self._known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def ensure(self, session: AsyncSession, days: set[date]) -> None:
        bind = session.sync_session.get_bind()
        known = self._known.setdefault(bind, set())
        missing = days - known
        if not missing:
            return
        # Concurrent writers (consumer replicas, the benchmark's workers) would race on the catalog:
        # one creates, the others wait, then see it. Taken before this transaction touches event_log.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})
        known |= await existing_partitions(session)
        for day in sorted(missing - known):
            await session.execute(text(
                f'CREATE TABLE IF NOT EXISTS {SCHEMA}."{partition_name(day)}" PARTITION OF public.event_log '
                f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"))
            known.add(day)

    async def create_ahead(self, session: AsyncSession, today: date | None = None) -> None:
        today = today or utcnow().date()
        await self.ensure(session, {today + timedelta(days=i) for i in range(-AHEAD_DAYS, AHEAD_DAYS + 1)})


# One per process: partitions are never dropped while the service runs.
PARTITIONS = Partitions()
