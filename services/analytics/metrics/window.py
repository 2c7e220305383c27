"""The analysis window W = [start, end) in UTC days (DESIGN §6), from `?from=&to=` query parameters."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, Query

from shared.db import utcnow
from shared.errors import InvalidInput

DEFAULT_DAYS = 28
MAX_DAYS = 366


class InvalidWindow(InvalidInput):
    code, title = "invalid-window", "Invalid window"


@dataclass(frozen=True)
class Window:
    start: date  # inclusive
    end: date  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def lo(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def hi(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    def previous(self) -> "Window":
        return Window(self.start - timedelta(days=self.days), self.start)

    @classmethod
    def last(cls, days: int = DEFAULT_DAYS, *, end: date | None = None) -> "Window":
        """The last `days` UTC days, today included."""
        end = end or utcnow().date() + timedelta(days=1)
        return cls(end - timedelta(days=days), end)


def window_params(start: Annotated[date | None, Query(alias="from", description="First UTC day (inclusive)")] = None,
                  end: Annotated[date | None, Query(alias="to", description="UTC day after the last (exclusive)")] = None,
                  days: Annotated[int | None, Query(ge=1, le=MAX_DAYS,
                                                    description="Instead of from/to: the last N days, today included")] = None,
                  ) -> Window:
    """`from`/`to` UTC dates (or `days`); the default is the last 28 days, today included."""
    if days is not None and start is None and end is None:
        return Window.last(days)
    if end is None:
        end = (start + timedelta(days=DEFAULT_DAYS)) if start else utcnow().date() + timedelta(days=1)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS)
    if end <= start:
        raise InvalidWindow("`to` must be after `from` (the window is [from, to) in UTC days).")
    if (end - start).days > MAX_DAYS:
        raise InvalidWindow(f"A window is at most {MAX_DAYS} days.")
    return Window(start, end)


WindowDep = Annotated[Window, Depends(window_params)]
