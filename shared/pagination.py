"""Keyset pagination: `?limit=&cursor=` in, `{items, next_cursor}` out; cursors are opaque to clients."""

import base64
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import InvalidInput
from shared.types import check_text

T = TypeVar("T")
MAX_LIMIT = 100
MIN_CURSOR_YEAR, MAX_CURSOR_YEAR = 2, 9998


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
                      cursor: Annotated[str | None, Query(max_length=512)] = None) -> PageParams:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hand-off costlier than the function.
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def encode_cursor(values: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, UUID) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, columns) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise ValueError("shape")
        return [_typed(col, v) for col, v in zip(columns, raw)]
    except (ValueError, TypeError, NotImplementedError, AttributeError, OverflowError):
        # A cursor is client input: whatever it decodes to, a bad one is 422, never a 500.
        raise InvalidInput("The cursor is not valid.", field="cursor")


_INT64 = 2 ** 63


def _typed(column, value: Any) -> Any:
    python_type = column.type.python_type
    if python_type is datetime:
        if not isinstance(value, str):
            raise TypeError("cursor value type")
        moment = datetime.fromisoformat(value)
        moment.astimezone(UTC)  # OverflowError for dates PostgreSQL's timestamptz cannot hold near the edges
        if not MIN_CURSOR_YEAR <= moment.year <= MAX_CURSOR_YEAR:
            raise ValueError("cursor date out of range")
        return moment
    if python_type is UUID:
        if not isinstance(value, str):
            raise TypeError("cursor value type")
        return UUID(value)
    if python_type is int:
        if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
            raise ValueError("cursor value type")
        return value
    if python_type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError("cursor value type")
        return float(value)
    if not isinstance(value, str):  # text columns (SQLModel's AutoString reports `object`)
        raise ValueError("cursor value type")
    return check_text(value)


async def paginate(session: AsyncSession, stmt: Select, *, columns: list, page: PageParams,
                   descending: bool = True) -> tuple[list[Any], str | None]:
    """Rows of `stmt` ordered by `columns` (unique together), after `page.cursor`, plus the next cursor."""
    if page.cursor:
        after = tuple_(*columns)
        values = tuple_(*decode_cursor(page.cursor, columns))
        stmt = stmt.where(after < values if descending else after > values)
    stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in columns]).limit(page.limit + 1)
    rows = list((await session.execute(stmt)).scalars().all())
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, c.key) for c in columns])
