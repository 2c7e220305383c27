from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from services.messaging.db import SessionDep
from services.messaging.messages import service
from services.messaging.messages.schemas import (EditPublic, Emoji, MessageCreate, MessagePage, MessagePublic,
                                                 MessageUpdate, ReactionSummary, SearchHit)
from shared.auth import CurrentUserDep
from shared.idempotency import IdempotentRoute
from shared.pagination import MAX_LIMIT, Page
from shared.types import SafeText

router = APIRouter(prefix="/api/v1/conversations", tags=["messages"], route_class=IdempotentRoute)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]


@router.get("/messages/search", response_model=Page[SearchHit])
async def search_messages(session: SessionDep, user: CurrentUserDep, q: Annotated[SafeText(200, blank=False), Query()],
                          limit: Limit = 20, cursor: Cursor = None):
    """Full-text search in my own conversations, newest first."""
    items, next_cursor = await service.search(session, person_id=user.id, q=q, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/direct/{person_id}/messages", response_model=MessagePublic, status_code=status.HTTP_201_CREATED)
async def send_direct(person_id: UUID, body: MessageCreate, session: SessionDep, user: CurrentUserDep,
                      response: Response):
    """Message someone directly; the first message creates our conversation (200 for a retried client_msg_id)."""
    message, created = await service.send_direct(session, sender_id=user.id, recipient_id=person_id, body=body.body,
                                                 client_msg_id=body.client_msg_id, reply_to_id=body.reply_to_id,
                                                 attachment_ids=body.attachment_ids)
    if not created:
        response.status_code = status.HTTP_200_OK
    return await service.full(session, message, user.id)


@router.post("/{conversation_id}/messages", response_model=MessagePublic, status_code=status.HTTP_201_CREATED)
async def send_message(conversation_id: UUID, body: MessageCreate, session: SessionDep, user: CurrentUserDep,
                       response: Response):
    """Send a message (200 with the first one when the client_msg_id was already used)."""
    message, created = await service.send(session, conversation_id=conversation_id, sender_id=user.id, body=body.body,
                                          client_msg_id=body.client_msg_id, reply_to_id=body.reply_to_id,
                                          attachment_ids=body.attachment_ids)
    if not created:
        response.status_code = status.HTTP_200_OK
    return await service.full(session, message, user.id)


@router.get("/{conversation_id}/messages", response_model=MessagePage)
async def list_messages(conversation_id: UUID, session: SessionDep, user: CurrentUserDep, limit: Limit = 50,
                        cursor: Cursor = None, around: Annotated[str | None, Query(max_length=64)] = None):
    """History, oldest first: the newest page, `cursor` to page older/newer, `around=unread|<message id>`."""
    return await service.history(session, conversation_id=conversation_id, person_id=user.id, limit=limit,
                                 cursor=cursor, around=around)


@router.patch("/{conversation_id}/messages/{message_id}", response_model=MessagePublic)
async def edit_message(conversation_id: UUID, message_id: UUID, body: MessageUpdate, session: SessionDep,
                       user: CurrentUserDep):
    """Edit my message (the previous text is kept in its history)."""
    await _in(session, conversation_id, message_id, user.id)
    message = await service.edit(session, message_id=message_id, editor_id=user.id, body=body.body)
    return await service.full(session, message, user.id)


@router.delete("/{conversation_id}/messages/{message_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_message(conversation_id: UUID, message_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Delete my message: a tombstone keeps its place."""
    await _in(session, conversation_id, message_id, user.id)
    await service.delete(session, message_id=message_id, person_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{conversation_id}/messages/{message_id}/edits", response_model=list[EditPublic])
async def list_edits(conversation_id: UUID, message_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Earlier texts of a message, oldest first."""
    await _in(session, conversation_id, message_id, user.id)
    return [EditPublic(body=e.body, edited_at=e.edited_at)
            for e in await service.edits(session, message_id=message_id, person_id=user.id)]


@router.put("/{conversation_id}/messages/{message_id}/reactions/{emoji}", response_model=list[ReactionSummary])
async def add_reaction(conversation_id: UUID, message_id: UUID, emoji: Emoji, session: SessionDep,
                       user: CurrentUserDep):
    """React to a message (idempotent)."""
    await _in(session, conversation_id, message_id, user.id)
    return await service.react(session, message_id=message_id, person_id=user.id, emoji=emoji, add=True)


@router.delete("/{conversation_id}/messages/{message_id}/reactions/{emoji}", response_model=list[ReactionSummary])
async def remove_reaction(conversation_id: UUID, message_id: UUID, emoji: Emoji, session: SessionDep,
                          user: CurrentUserDep):
    """Take my reaction back (idempotent)."""
    await _in(session, conversation_id, message_id, user.id)
    return await service.react(session, message_id=message_id, person_id=user.id, emoji=emoji, add=False)


async def _in(session, conversation_id: UUID, message_id: UUID, person_id: UUID) -> None:
    message = await service.get_for_member(session, message_id=message_id, person_id=person_id)
    if message.conversation_id != conversation_id:
        raise service.MessageNotFound()
