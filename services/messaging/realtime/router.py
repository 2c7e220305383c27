"""The chat socket `/api/v1/messaging/ws` (protocol: shared/realtime.py) and what clients may send on it."""

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.messaging.conversations import service as conversations
from services.messaging.messages import service as messages
from services.messaging.attachments.models import MAX_PER_MESSAGE
from services.messaging.messages.models import BODY_MAX
from services.messaging.messages.schemas import ClientMsgId
from shared.types import SafeText
from services.messaging.realtime import presence
from shared.auth import MissingScope
from shared.db import unit_of_work
from shared.events import Envelope
from shared.events.messaging import TypingChanged
from shared.realtime import Connection, FrameError, serve

router = APIRouter(tags=["realtime"])


@router.websocket("/api/v1/messaging/ws")
async def messaging_socket(websocket: WebSocket):
    """Messages, receipts, typing and presence in real time, with resume (see shared/realtime.py)."""
    await serve(websocket, hub=websocket.app.state.hub, handler=handle_frame)


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | int | None = None


class SendFrame(_Frame):
    type: Literal["message.send"]
    conversation_id: UUID | None = None
    to_person_id: UUID | None = None  # a direct message; the first one creates the conversation
    body: SafeText(BODY_MAX) = ""
    client_msg_id: ClientMsgId | None = None
    reply_to_id: UUID | None = None
    attachment_ids: list[UUID] = Field(default=[], max_length=MAX_PER_MESSAGE)

    @model_validator(mode="after")
    def _something_to_send(self):
        if not self.body.strip() and not self.attachment_ids:
            raise ValueError("a message has a body or attachments")
        return self


class TypingFrame(_Frame):
    type: Literal["typing"]
    conversation_id: UUID
    typing: bool = True


class ReadFrame(_Frame):
    type: Literal["read"]
    conversation_id: UUID
    message_id: UUID


class PresenceFrame(_Frame):
    type: Literal["presence"]
    status: Literal["online", "away"]


class SubscribeFrame(_Frame):
    type: Literal["presence.subscribe"]
    person_ids: list[UUID] = Field(max_length=500)


WRITES = {"message.send", "typing", "read", "presence"}  # an API token needs messages:write for these
FRAMES = {"message.send": SendFrame, "typing": TypingFrame, "read": ReadFrame, "presence": PresenceFrame,
          "presence.subscribe": SubscribeFrame}


async def handle_frame(conn: Connection, raw: dict) -> dict | None:
    model = FRAMES.get(raw["type"])
    if model is None:
        raise FrameError(f"Unknown frame type {raw['type'][:64]!r}.", known=sorted(FRAMES))
    try:
        frame = model.model_validate(raw)
    except ValidationError as exc:
        raise FrameError("The frame has invalid fields.",
                         errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()])
    if frame.type in WRITES and conn.user.scopes is not None and "messages:write" not in conn.user.scopes:
        raise MissingScope("This API token lacks the scope messages:write.", required_scope="messages:write")
    app = conn.websocket.app
    if frame.type == "message.send" and frame.conversation_id is not None and frame.to_person_id is None \
            and messages.can_send_plain(body=frame.body, reply_to_id=frame.reply_to_id, attachment_ids=frame.attachment_ids):
        # The common case, without the ORM (its own unit of work too); what it does not write (not a
        # member, a retried client_msg_id) the general path below answers.
        sent = await messages.send_plain(app.state.send_pool, service=app.state.settings.service_name,
                                         conversation_id=frame.conversation_id, sender_id=conn.person_id,
                                         body=frame.body, client_msg_id=frame.client_msg_id)
        if sent is not None:
            return {"type": "message.sent", "data": sent | {"created": True}}
    # A frame has no request session: it is its own unit of work, committed before the answer goes out
    # (a handler that raises commits nothing).
    async with unit_of_work(getattr(app.state, "socket_sessionmaker", None) or app.state.sessionmaker) as session:
        return await HANDLERS[frame.type](conn, frame, session, app)


async def _send(conn, frame: SendFrame, session, app) -> dict:
    if (frame.conversation_id is None) == (frame.to_person_id is None):
        raise FrameError("Give exactly one of conversation_id and to_person_id.")
    if frame.conversation_id:
        message, created = await messages.send(session, conversation_id=frame.conversation_id, sender_id=conn.person_id,
                                               body=frame.body, client_msg_id=frame.client_msg_id,
                                               reply_to_id=frame.reply_to_id, attachment_ids=frame.attachment_ids)
    else:
        message, created = await messages.send_direct(session, sender_id=conn.person_id, recipient_id=frame.to_person_id,
                                                      body=frame.body, client_msg_id=frame.client_msg_id,
                                                      reply_to_id=frame.reply_to_id,
                                                      attachment_ids=frame.attachment_ids)
    return {"type": "message.sent", "data": messages.frame_data(message) | {"created": created}}


async def _typing(conn, frame: TypingFrame, session, app) -> None:
    members = await conversations.member_ids(session, frame.conversation_id)  # one query checks and addresses
    if conn.person_id not in members:
        raise conversations.ConversationNotFound()
    others = [p for p in members if p != conn.person_id]
    event = TypingChanged(conversation_id=frame.conversation_id, person_id=conn.person_id, typing=frame.typing,
                          recipients=others)
    # Ephemeral: straight to the topic (never stored); every replica's fan-out reader delivers it.
    envelope = Envelope.wrap(event, source="messaging", subject=frame.conversation_id, actor=conn.person_id)
    producer = getattr(app.state, "ephemeral_producer", None)
    if producer is not None:
        await producer.send(app.state.settings.topic_messaging, value=envelope.to_bytes(),
                            key=str(frame.conversation_id).encode())
    return None


async def _read(conn, frame: ReadFrame, session, app) -> dict:
    member = await conversations.mark_read(session, conversation_id=frame.conversation_id, person_id=conn.person_id,
                                           message_id=frame.message_id,
                                           policy=app.state.settings.messaging_receipts_policy)
    return {"type": "read.ok", "data": {"conversation_id": str(frame.conversation_id),
                                        "last_read_message_id": str(member.last_read_message_id)}}


async def _presence(conn, frame: PresenceFrame, session, app) -> dict:
    conn.state["status"] = frame.status
    app.state.presence.mark(conn.person_id)
    return {"type": "presence.ok", "data": {"status": frame.status}}


async def _subscribe(conn, frame: SubscribeFrame, session, app) -> dict:
    watchers: dict = app.state.presence_watchers
    for person_id in conn.state.get("watching", set()):
        watchers.get(person_id, set()).discard(conn)
    conn.state["watching"] = set(frame.person_ids)
    for person_id in frame.person_ids:
        watchers.setdefault(person_id, set()).add(conn)
    current = await presence.statuses(session, frame.person_ids)
    return {"type": "presence.snapshot", "data": {str(k): v for k, v in current.items()}}


HANDLERS = {"message.send": _send, "typing": _typing, "read": _read, "presence": _presence,
            "presence.subscribe": _subscribe}
