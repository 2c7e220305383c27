"""Attachments: upload to storage with size and type limits; read through the post's visibility.

An upload belongs to its uploader until a post uses it (`attachment_ids` or an article's cover); from
then on whoever may read the post may read the file (`content.service.readable_by`), and nobody else.
Image types are checked and measured by Pillow in a worker thread (decoding is CPU work).
"""

import asyncio
import io
import warnings
from uuid import UUID

from PIL import Image, UnidentifiedImageError
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.attachments.models import FILENAME_MAX, Attachment
from services.posts.content.models import Post
from services.posts.content.service import readable_by
from shared.auth import CurrentUser
from shared.errors import InvalidInput, NotFound
from shared.storage import Storage

IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
OTHER_TYPES = {"application/pdf", "text/plain"}
MAX_PIXELS = 50_000_000  # refuse decompression bombs well before Pillow's own limit


class AttachmentNotFound(NotFound):
    code, title = "attachment-not-found", "Attachment not found"


class UnsupportedAttachment(InvalidInput):
    status, code, title = 415, "unsupported-attachment", "Unsupported attachment type"


class AttachmentTooLarge(InvalidInput):
    status, code, title = 413, "attachment-too-large", "Attachment too large"


class EmptyAttachment(InvalidInput):
    code, title = "empty-attachment", "Empty attachment"


def _measure(data: bytes, expected: str) -> tuple[int, int]:
    """Width and height of an image whose bytes really are `expected` (a Pillow format name)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format != expected:
                    raise UnsupportedAttachment(f"The file is {image.format or 'not an image'}, not {expected}.")
                if image.width * image.height > MAX_PIXELS:
                    raise UnsupportedAttachment("The image has too many pixels.")
                image.verify()
                return image.width, image.height
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise UnsupportedAttachment("The file is not a readable image.")


def _filename(name: str | None) -> str:
    cleaned = "".join(c for c in (name or "file").replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
    return (cleaned or "file")[:FILENAME_MAX]


async def upload(session: AsyncSession, *, storage: Storage, user: CurrentUser, data: bytes, content_type: str,
                 filename: str | None, max_bytes: int) -> Attachment:
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES and content_type not in OTHER_TYPES:
        raise UnsupportedAttachment(f"Accepted types: {', '.join(sorted([*IMAGE_TYPES, *OTHER_TYPES]))}.")
    if not data:
        raise EmptyAttachment()
    if len(data) > max_bytes:
        raise AttachmentTooLarge(f"Attachments are at most {max_bytes} bytes.", max_bytes=max_bytes)
    width = height = None
    if content_type in IMAGE_TYPES:
        width, height = await asyncio.to_thread(_measure, data, IMAGE_TYPES[content_type])
    attachment = Attachment(id=uuid7(), owner_id=user.id, filename=_filename(filename), content_type=content_type,
                            size=len(data), width=width, height=height, storage_key="")
    attachment.storage_key = f"attachments/{attachment.id}"
    await storage.put(attachment.storage_key, data, content_type=content_type)
    session.add(attachment)
    await session.commit()
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
