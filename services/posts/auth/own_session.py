"""A short session beside the request's, for the few writes that must stand even when the request fails."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession


@asynccontextmanager
async def own_session(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A session of its own on the request session's engine, committed when the block ends.

    The request's unit of work commits once, and not at all when the route raises; a failed-login
    counter or a spent sign-in state must not be undone by that. It runs on another connection, so it
    must not wait for rows the request's session has locked. Under test both share the test's
    connection (savepoints): use it before the request's session writes, or a failure rolls it back too.
    """
    async with AsyncSession(bind=session.bind, info=dict(session.info), expire_on_commit=False,
                            join_transaction_mode="create_savepoint") as own:
        yield own
        await own.commit()
