"""Attachments: upload to storage with size and type limits; read through the post's visibility.

An upload belongs to its uploader until a post uses it (`attachment_ids` or an article's cover); from
then on whoever may read the post may read the file (`content.service.readable_by`), and nobody else.
Image types are checked and measured by Pillow in a worker thread (decoding is CPU work).
Uploads no post took within `attachment_orphan_hours` are swept away by a background job; an upload
request that fails after storing its file removes the file again (the route's `shared.uploads.RequestFiles`).
An edit that leaves an attachment out of its post detaches it: an unused upload again, swept the same way.
"""

import asyncio
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.attachments.models import FILENAME_MAX, Attachment
from services.posts.content.models import Post
from services.posts.content.service import readable_by
from shared.auth import CurrentUser
from shared.db import utcnow
from shared.errors import NotFound
from shared.kafka import sleep_or_stop
from shared.storage import Storage
from shared.uploads import check_upload

ORPHAN_BATCH = 100

log = structlog.get_logger("hearth.attachments")


class AttachmentNotFound(NotFound):
    code, title = "attachment-not-found", "Attachment not found"


async def upload(session: AsyncSession, *, storage: Storage, user: CurrentUser, data: bytes, content_type: str,
                 filename: str | None, max_bytes: int) -> Attachment:
    checked = await check_upload(data, content_type=content_type, filename=filename, max_bytes=max_bytes,
                                 filename_max=FILENAME_MAX)
    attachment = Attachment(id=uuid7(), owner_id=user.id, filename=checked.filename, content_type=checked.content_type,
                            size=checked.size, width=checked.width, height=checked.height, storage_key="")
    attachment.storage_key = f"attachments/{attachment.id}"
    await storage.put(attachment.storage_key, data, content_type=checked.content_type)
    session.add(attachment)
    return attachment


async def get_readable(session: AsyncSession, *, attachment_id: UUID, user: CurrentUser) -> Attachment:
    """The attachment if it is the caller's own upload or on a post they may read; 404 otherwise."""
    on_readable_post = exists().where(Post.id == Attachment.post_id, readable_by(user.id))
    attachment = await session.scalar(select(Attachment).where(
        Attachment.id == attachment_id,
        or_(and_(Attachment.post_id.is_(None), Attachment.owner_id == user.id), on_readable_post)))
    if attachment is None:
        raise AttachmentNotFound()
    return attachment


async def read(session: AsyncSession, *, storage: Storage, attachment_id: UUID,
               user: CurrentUser) -> tuple[Attachment, bytes]:
    attachment = await get_readable(session, attachment_id=attachment_id, user=user)
    return attachment, await storage.get(attachment.storage_key)


async def sweep_orphans(sessionmaker, *, storage: Storage, older_than: datetime) -> int:
    """Delete uploads created before `older_than` that no post uses (a batch) with their files; returns how many.

    Each row stays, locked, until its file is gone: a post attaching one meanwhile waits on the lock and then
    finds it gone (422), and an upload whose file could not be deleted keeps its row for the next sweep."""
    stale = (select(Attachment.id, Attachment.storage_key)
             .where(Attachment.post_id.is_(None), Attachment.created_at < older_than)
             .order_by(Attachment.created_at).limit(ORPHAN_BATCH).with_for_update(skip_locked=True))
    async with sessionmaker() as session:  # a job owns its session
        rows = (await session.execute(stale)).all()
        outcomes = await asyncio.gather(*(storage.delete(key) for _, key in rows), return_exceptions=True)
        gone = []
        for (attachment_id, key), outcome in zip(rows, outcomes):
            if isinstance(outcome, BaseException):
                log.warning("attachment_file_delete_failed", key=key, error=repr(outcome))
            else:
                gone.append(attachment_id)
        if gone:
            await session.execute(delete(Attachment).where(Attachment.id.in_(gone)))
        await session.commit()
    return len(gone)


def orphan_sweeper(sessionmaker, *, storage: Storage, max_age: timedelta, interval: float = 600.0):
    """A background job (run by the service's supervisor): sweep unattached uploads older than `max_age`."""

    async def run(stop) -> None:
        while not stop.is_set():
            # A batch with a failed file delete ends the round: storage in trouble waits for the next one.
            while await sweep_orphans(sessionmaker, storage=storage, older_than=utcnow() - max_age) == ORPHAN_BATCH:
                pass
            await sleep_or_stop(stop, interval)

    return run
