from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from services.messaging.conversations import service
from services.messaging.conversations.schemas import (ConversationDetail, ConversationPublic, ConversationUpdate,
                                                      GroupCreate, MemberPublic, MembersAdd, MemberUpdate,
                                                      PreferencesPublic, ReadUpdate, UnreadTotal)
from services.messaging.db import SessionDep
from shared.auth import CurrentUserDep
from shared.idempotency import IdempotentRoute
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"], route_class=IdempotentRoute)


def _policy(request: Request) -> str:
    return request.app.state.settings.messaging_receipts_policy


@router.get("", response_model=Page[ConversationPublic])
async def list_conversations(request: Request, session: SessionDep, user: CurrentUserDep, page: PageDep):
    """My conversations, most recent activity first, with unread counts."""
    items, next_cursor = await service.get_all(session, person_id=user.id, page=page, policy=_policy(request))
    return Page(items=items, next_cursor=next_cursor)


@router.post("", response_model=ConversationDetail, status_code=status.HTTP_201_CREATED)
async def create_group(request: Request, body: GroupCreate, session: SessionDep, user: CurrentUserDep):
    """Start a group conversation (I am its admin); direct ones start with a first message."""
    conversation = await service.create_group(session, creator_id=user.id, title=body.title, member_ids=body.member_ids)
    return await service.get_detail(session, conversation_id=conversation.id, person_id=user.id, policy=_policy(request))


@router.get("/unread", response_model=UnreadTotal)
async def read_unread_total(session: SessionDep, user: CurrentUserDep):
    """Unread messages over all my conversations."""
    return await service.unread_total(session, person_id=user.id)


@router.get("/preferences", response_model=PreferencesPublic)
async def read_preferences(session: SessionDep, user: CurrentUserDep):
    """My messaging settings."""
    return await service.get_preferences(session, person_id=user.id)


@router.put("/preferences", response_model=PreferencesPublic)
async def update_preferences(body: PreferencesPublic, session: SessionDep, user: CurrentUserDep):
    """Whether others see my read receipts (when the organisation's policy is `user_choice`)."""
    return await service.set_preferences(session, person_id=user.id, read_receipts=body.read_receipts)


@router.get("/{conversation_id}", response_model=ConversationDetail)
async def read_conversation(request: Request, conversation_id: UUID, session: SessionDep, user: CurrentUserDep):
    """One of my conversations with its members."""
    return await service.get_detail(session, conversation_id=conversation_id, person_id=user.id,
                                    policy=_policy(request))


@router.patch("/{conversation_id}", response_model=ConversationDetail)
async def update_conversation(request: Request, conversation_id: UUID, body: ConversationUpdate, session: SessionDep,
                              user: CurrentUserDep):
    """Rename a group (admins)."""
    await service.update(session, conversation_id=conversation_id, actor_id=user.id, title=body.title)
    return await service.get_detail(session, conversation_id=conversation_id, person_id=user.id,
                                    policy=_policy(request))


@router.post("/{conversation_id}/members", response_model=ConversationDetail)
async def add_members(request: Request, conversation_id: UUID, body: MembersAdd, session: SessionDep,
                      user: CurrentUserDep):
    """Add active people to a group (admins; at most 250 members)."""
    await service.add_members(session, conversation_id=conversation_id, actor_id=user.id, person_ids=body.person_ids)
    return await service.get_detail(session, conversation_id=conversation_id, person_id=user.id,
                                    policy=_policy(request))


@router.patch("/{conversation_id}/members/{person_id}", response_model=MemberPublic)
async def update_member(conversation_id: UUID, person_id: UUID, body: MemberUpdate, session: SessionDep,
                        user: CurrentUserDep):
    """Make a member admin or not (admins)."""
    member = await service.set_role(session, conversation_id=conversation_id, actor_id=user.id, person_id=person_id,
                                    role=body.role)
    return MemberPublic(person_id=member.person_id, role=member.role, joined_at=member.joined_at)


@router.delete("/{conversation_id}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(conversation_id: UUID, person_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Remove a member (admins), or leave (my own id)."""
    await service.remove_member(session, conversation_id=conversation_id, actor_id=user.id, person_id=person_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{conversation_id}/read", response_model=ConversationPublic)
async def mark_read(request: Request, conversation_id: UUID, body: ReadUpdate, session: SessionDep,
                    user: CurrentUserDep):
    """Move my read marker to a message (never backwards)."""
    await service.mark_read(session, conversation_id=conversation_id, person_id=user.id, message_id=body.message_id,
                            policy=_policy(request))
    return await service.get_detail(session, conversation_id=conversation_id, person_id=user.id,
                                    policy=_policy(request))
