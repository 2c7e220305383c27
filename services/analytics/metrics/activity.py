"""Who was active on which day, for a window: the member list and day matrices built from person_bits."""

from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, timedelta
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.ingest.service import BITS_PER_PERIOD, EPOCH
from services.analytics.metrics.window import Window

LOOKBACK = 27  # MAU on the first day of W needs the 27 days before it
ENGAGED_DAYS, ENGAGED_SPAN = 10, 28


@dataclass
class Member:
    id: UUID
    display_name: str
    department: str | None
    location: str | None
    manager_id: UUID | None
    hire_date: date | None
    leader: bool
    official: bool


@dataclass
class Activity:
    """Members at the end of W and their active / contributing days over [start - 27, end)."""

    window: Window
    members: list[Member]
    active: np.ndarray  # bool [members, days]
    contrib: np.ndarray
    index: dict[UUID, int] = field(default_factory=dict)

    @property
    def first_day(self) -> date:
        return self.window.start - timedelta(days=LOOKBACK)

    def in_window(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[:, LOOKBACK:]

    # Computed once per Activity: a segment cut reads them for every segment.
    @cached_property
    def _active_in_w(self) -> np.ndarray:
        return self.in_window(self.active).any(axis=1)

    @cached_property
    def _contributors_in_w(self) -> np.ndarray:
        return self.in_window(self.contrib).any(axis=1)

    @cached_property
    def _engaged(self) -> np.ndarray:
        return self.active[:, -ENGAGED_SPAN:].sum(axis=1) >= ENGAGED_DAYS

    def active_in_w(self) -> np.ndarray:
        return self._active_in_w

    def contributors_in_w(self) -> np.ndarray:
        return self._contributors_in_w

    def engaged(self) -> np.ndarray:
        """Active on at least 10 distinct days of the last 28 days of W."""
        return self._engaged

    def series(self, rows: np.ndarray | None = None) -> dict[str, list[int]]:
        """DAU, WAU and MAU for each day of W (members active over 1, 7 and 28 days ending that day)."""
        matrix = self.active if rows is None else self.active[rows]
        sums = np.concatenate([np.zeros((matrix.shape[0], 1), dtype=np.int32),
                               np.cumsum(matrix, axis=1, dtype=np.int32)], axis=1)
        out = {}
        for name, span in (("dau", 1), ("wau", 7), ("mau", 28)):
            ends = np.arange(LOOKBACK + 1, matrix.shape[1] + 1)
            counts = sums[:, ends] - sums[:, ends - span]
            out[name] = (counts > 0).sum(axis=0).astype(int).tolist()
        return out


async def fetch(session: AsyncSession, sql: str, *args) -> list:
    """Rows straight from asyncpg (`$n` parameters): the wide reads here are tens of thousands of rows,
    where building SQLAlchemy Row objects would cost more than the query."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return await raw.driver_connection.fetch(sql, *args)


async def load_members(session: AsyncSession, window: Window) -> list[Member]:
    """A member: provisioned, and not deactivated, at the end of W."""
    rows = await fetch(session, """
        SELECT id, display_name, department, location, manager_id, hire_date, leader, official FROM people
        WHERE provisioned_at < $1 AND (deactivated_at IS NULL OR deactivated_at >= $1) ORDER BY id""", window.hi)
    return [Member(*r) for r in rows]


# Packed days travel as one bytea (no per-row Python objects; tens of thousands of rows otherwise):
# per row the member's index (members ordered by id), the period and the two 32-day masks.
BITS_BLOB = """
WITH m AS (SELECT id, (row_number() OVER (ORDER BY id) - 1)::int4 AS i FROM people
           WHERE provisioned_at < $1 AND (deactivated_at IS NULL OR deactivated_at >= $1))
SELECT (SELECT count(*) FROM m),
       coalesce(string_agg(int4send(m.i) || int4send(b.period) || int8send(b.active) || int8send(b.contrib), ''::bytea),
                ''::bytea)
FROM person_bits b JOIN m ON m.id = b.person_id WHERE b.period BETWEEN $2 AND $3"""
BLOB_ROW = np.dtype([("i", ">i4"), ("period", ">i4"), ("active", ">i8"), ("contrib", ">i8")])


async def load_activity(session: AsyncSession, window: Window, *, people: bool = True) -> Activity:
    """Members at the end of W and their day matrices; `people=False` skips the member details
    (the overview needs only who is who by position)."""
    first = window.start - timedelta(days=LOOKBACK)
    ndays = (window.end - first).days
    offset = (first - EPOCH).days
    p0, p1 = offset // BITS_PER_PERIOD, (offset + ndays - 1) // BITS_PER_PERIOD
    members: list[Member] = await load_members(session, window) if people else []
    [(count, blob)] = await fetch(session, BITS_BLOB, window.hi, p0, p1)
    rows = np.frombuffer(blob, dtype=BLOB_ROW)
    if people and count != len(members):  # someone was provisioned between the two reads: re-read both
        return await load_activity(session, window, people=people)
    nperiods = p1 - p0 + 1
    packed = np.zeros((count, nperiods, 2), dtype=np.int64)
    packed[rows["i"], rows["period"] - p0, 0] = rows["active"]
    packed[rows["i"], rows["period"] - p0, 1] = rows["contrib"]
    # Bit i of each mask is day i of its period: the low 4 bytes, little-endian, unpacked low bit first.
    # [members, periods, 2, 32] -> [members, 2, periods * 32], then cut to the window's days
    low = packed.astype("<i8").view(np.uint8).reshape(count, nperiods, 2, 8)[..., :BITS_PER_PERIOD // 8]
    unpacked = np.unpackbits(low, axis=-1, bitorder="little").view(bool).transpose(0, 2, 1, 3).reshape(
        count, 2, nperiods * BITS_PER_PERIOD)
    start = offset - p0 * BITS_PER_PERIOD
    days = unpacked[:, :, start:start + ndays]
    return Activity(window, members, days[:, 0, :], days[:, 1, :], {m.id: i for i, m in enumerate(members)})
