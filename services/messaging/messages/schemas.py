from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.messaging.attachments.models import MAX_PER_MESSAGE
from services.messaging.attachments.schemas import AttachmentPublic
from services.messaging.messages.models import BODY_MAX, CLIENT_MSG_ID_MAX, EMOJI_MAX
from shared.types import SafeText

Body = SafeText(BODY_MAX, min_length=1)
ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=CLIENT_MSG_ID_MAX, pattern=r"^[A-Za-z0-9._:-]+$")]
Emoji = Annotated[SafeText(EMOJI_MAX, min_length=1), StringConstraints(pattern=r"^\S+$")]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: SafeText(BODY_MAX) = ""
    client_msg_id: ClientMsgId | None = None
    reply_to_id: UUID | None = None
    attachment_ids: list[UUID] = Field(default=[], max_length=MAX_PER_MESSAGE)

    @model_validator(mode="after")
    def _something_to_send(self):
        if not self.body.strip() and not self.attachment_ids:
            raise ValueError("a message has a body or attachments")
        return self


class MessageUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: Body


class ReactionSummary(BaseModel):
    emoji: str
    count: int
    mine: bool


class MessagePublic(BaseModel):
    id: UUID
    conversation_id: UUID
    seq: int
    sender_id: UUID
    client_msg_id: str | None
    body: str
    body_html: str
    reply_to_id: UUID | None
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reactions: list[ReactionSummary] = []
    attachments: list[AttachmentPublic] = []


class MessagePage(BaseModel):
    items: list[MessagePublic] = Field(description="Oldest first.")
    next_cursor: str | None = None  # further in the direction asked for (older, or newer)
    prev_cursor: str | None = None  # the other direction (set for `around` and `newer` pages)


class EditPublic(BaseModel):
    body: str
    edited_at: datetime


class SearchHit(MessagePublic):
    conversation_title: str | None = None
