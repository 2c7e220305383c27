"""Attachments: uploaded into a conversation through the shared storage, attached by the next message,
readable by the conversation's members only. Images are checked and measured in a worker thread."""

from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.messaging.attachments.models import FILENAME_MAX, Attachment
from services.messaging.conversations.service import get_membership_or_raise
from shared.errors import InvalidInput, NotFound
from shared.storage import Storage
from shared.uploads import check_upload


class AttachmentNotFound(NotFound):
    code, title = "attachment-not-found", "Attachment not found"


class AttachmentNotUsable(InvalidInput):
    code, title = "attachment-not-usable", "Attachment not usable"


async def upload(session: AsyncSession, *, storage: Storage, conversation_id: UUID, uploader_id: UUID, data: bytes,
                 content_type: str, filename: str | None, max_bytes: int) -> Attachment:
    await get_membership_or_raise(session, conversation_id=conversation_id, person_id=uploader_id)
    checked = await check_upload(data, content_type=content_type, filename=filename, max_bytes=max_bytes,
                                 filename_max=FILENAME_MAX)
    attachment_id = uuid7()
    attachment = Attachment(id=attachment_id, conversation_id=conversation_id, uploader_id=uploader_id,
                            storage_key=f"messaging/{conversation_id}/{attachment_id}", filename=checked.filename,
                            content_type=checked.content_type, size=checked.size, width=checked.width,
                            height=checked.height)
    await storage.put(attachment.storage_key, data, content_type=checked.content_type)
    session.add(attachment)
    return attachment


async def attach(session: AsyncSession, *, attachment_ids: list[UUID], conversation_id: UUID, sender_id: UUID,
                 message_id: UUID) -> list[Attachment]:
    """Bind the sender's unused uploads of this conversation to a message (in the caller's transaction)."""
    if not attachment_ids:
        return []
    wanted = list(dict.fromkeys(attachment_ids))
    rows = list(await session.scalars(
        update(Attachment).where(Attachment.id.in_(wanted), Attachment.conversation_id == conversation_id,
                                 Attachment.uploader_id == sender_id, Attachment.message_id.is_(None))
        .values(message_id=message_id).returning(Attachment)))
    if len(rows) != len(wanted):
        raise AttachmentNotUsable("Attach only your own uploads to this conversation, each to one message.")
    return sorted(rows, key=lambda a: wanted.index(a.id))


async def of_messages(session: AsyncSession, message_ids: list[UUID]) -> dict[UUID, list[dict]]:
    if not message_ids:
        return {}
    out: dict[UUID, list[dict]] = {}
    for a in await session.scalars(select(Attachment).where(Attachment.message_id.in_(message_ids))
                                   .order_by(Attachment.id)):
        out.setdefault(a.message_id, []).append(public(a))
    return out


def public(a: Attachment) -> dict:
    return {"id": a.id, "conversation_id": a.conversation_id, "message_id": a.message_id, "filename": a.filename,
            "content_type": a.content_type, "size": a.size, "width": a.width, "height": a.height}


async def read(session: AsyncSession, *, storage: Storage, conversation_id: UUID, attachment_id: UUID,
               person_id: UUID) -> tuple[Attachment, bytes]:
    """The file, for members of its conversation (an unsent upload: its uploader only)."""
    await get_membership_or_raise(session, conversation_id=conversation_id, person_id=person_id)
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None or attachment.conversation_id != conversation_id or (
            attachment.message_id is None and attachment.uploader_id != person_id):
        raise AttachmentNotFound()
    return attachment, await storage.get(attachment.storage_key)
