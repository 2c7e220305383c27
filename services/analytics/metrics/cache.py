"""Answers kept per window until the rollups change: a dashboard polling every 2 s (and every other
viewer of the same window) costs one primary-key read instead of the whole computation.

Every transaction that changes the rollups bumps `rollup_state.version` as its last statement (see
ingest.service.bump_version), so an answer computed at version v holds exactly as long as the version
is still v: freshness is the consumer's, the cache adds nothing to it. The version is read before the
computation, whose later statements can only see as much or more: an answer is never filed under a
newer version than the data it saw.
"""

import functools
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MAX_ENTRIES = 256  # windows × dimensions a team looks at; each answer is a few kB

VERSION = text("SELECT (SELECT version FROM rollup_state WHERE id = 1), pg_current_xact_id_if_assigned() IS NOT NULL")


class ResultCache:
    """Per database (the bind): key -> (version, answer), least recently used dropped first."""

    def __init__(self, size: int = MAX_ENTRIES):
        self.size = size
        self.hits = self.misses = 0
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def get(self, session: AsyncSession, key: tuple, compute: Callable[[], Awaitable[Any]]) -> Any:
        version, own_writes = (await session.execute(VERSION)).one()
        if own_writes:  # this transaction sees its own uncommitted changes, which no version names
            return await compute()
        entries = self._entries.setdefault(session.sync_session.get_bind(), OrderedDict())
        hit = entries.get(key)
        if hit is not None and hit[0] == version:
            entries.move_to_end(key)
            self.hits += 1
            return hit[1]
        self.misses += 1
        answer = await compute()
        entries[key] = (version, answer)
        entries.move_to_end(key)
        while len(entries) > self.size:
            entries.popitem(last=False)
        return answer

    def clear(self) -> None:
        self._entries.clear()


# One per process, like the partitions memory: answers are shared by every request of every replica's worker.
RESULTS = ResultCache()


def cached(function):
    """Cache `function(session, *args)` by its name and (hashable) arguments; callers must not mutate the answer."""

    @functools.wraps(function)
    async def wrapper(session: AsyncSession, *args):
        return await RESULTS.get(session, (function.__name__, *args), lambda: function(session, *args))

    wrapper.uncached = function
    return wrapper
