"""Attachments: upload to storage with size and type limits; read through the post's visibility.

An upload belongs to its uploader until a post uses it (`attachment_ids` or an article's cover); from
then on whoever may read the post may read the file (`content.service.readable_by`), and nobody else.
Image types are checked and measured by Pillow in a worker thread (decoding is CPU work).
"""

from uuid import UUID

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.attachments.models import FILENAME_MAX, Attachment
from services.posts.content.models import Post
from services.posts.content.service import readable_by
from shared.auth import CurrentUser
from shared.errors import NotFound
from shared.storage import Storage
from shared.uploads import check_upload


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
