from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status

from services.posts.content import announcements, engagement, service
from services.posts.content.schemas import (AckPerson, AckState, AckSummary, BestAnswer, CommentCreate,
                                            CommentEditPublic, CommentPublic, CommentUpdate, PostCreate,
                                            PostEditPublic, PostPublic, PostUpdate, ReactionSet, ReminderSent,
                                            ViewBatch, ViewsRecorded, VoteCreate)
from services.posts.db import SessionDep
from shared.auth import CurrentUser, require_scope
from shared.idempotency import IdempotentRoute
from shared.pagination import Page, PageDep

# Every POST honours Idempotency-Key: a retried create returns the first result.
router = APIRouter(prefix="/api/v1/posts", tags=["posts"], route_class=IdempotentRoute)

Reader = Annotated[CurrentUser, require_scope("posts:read")]
Writer = Annotated[CurrentUser, require_scope("posts:write")]
NO_CONTENT = status.HTTP_204_NO_CONTENT


async def _shown(session, post, user) -> PostPublic:
    [public] = await service.present(session, posts=[post], user=user)
    return public


async def _shown_comment(session, comment, user) -> CommentPublic:
    [public] = await engagement.present_comments(session, comments=[comment], user=user)
    return public


@router.post("", response_model=PostPublic, status_code=status.HTTP_201_CREATED)
async def create_post(data: PostCreate, session: SessionDep, user: Writer):
    """Publish a post of any kind (update, article, question, poll, praise, announcement)."""
    return await _shown(session, await service.create(session, data=data, author=user), user)


@router.post("/views", response_model=ViewsRecorded)
async def record_views(data: ViewBatch, session: SessionDep, user: Writer):
    """Impressions from a client; each person counts once per post per day."""
    return ViewsRecorded(recorded=await engagement.record_views(session, post_ids=data.post_ids, user=user))


@router.get("/{post_id}", response_model=PostPublic)
async def read_post(post_id: UUID, session: SessionDep, user: Reader):
    """A post the caller may read."""
    return await _shown(session, await service.get_readable(session, post_id=post_id, user=user), user)


@router.patch("/{post_id}", response_model=PostPublic)
async def edit_post(post_id: UUID, data: PostUpdate, session: SessionDep, user: Writer):
    """Edit your post; the previous text stays in its history."""
    return await _shown(session, await service.edit(session, post_id=post_id, data=data, user=user), user)


@router.delete("/{post_id}", status_code=NO_CONTENT)
async def delete_post(post_id: UUID, session: SessionDep, user: Writer):
    """Delete your post (moderators delete anyone's)."""
    await service.delete(session, post_id=post_id, user=user)


@router.get("/{post_id}/edits", response_model=list[PostEditPublic])
async def post_history(post_id: UUID, session: SessionDep, user: Reader):
    """Earlier versions of the post, newest first."""
    return await service.history(session, post_id=post_id, user=user)


@router.post("/{post_id}/comments", response_model=CommentPublic, status_code=status.HTTP_201_CREATED)
async def create_comment(post_id: UUID, data: CommentCreate, session: SessionDep, user: Writer):
    """Comment on a post, or reply to a top-level comment."""
    return await _shown_comment(session, await engagement.create_comment(session, post_id=post_id, data=data,
                                                                         user=user), user)


@router.get("/{post_id}/comments", response_model=Page[CommentPublic])
async def list_comments(post_id: UUID, session: SessionDep, user: Reader, page: PageDep):
    """Comments and replies, oldest first."""
    items, cursor = await engagement.list_comments(session, post_id=post_id, user=user, page=page)
    return Page(items=items, next_cursor=cursor)


@router.patch("/{post_id}/comments/{comment_id}", response_model=CommentPublic)
async def edit_comment(post_id: UUID, comment_id: UUID, data: CommentUpdate, session: SessionDep, user: Writer):
    """Edit your comment; the previous text stays in its history."""
    comment = await engagement.edit_comment(session, post_id=post_id, comment_id=comment_id, data=data, user=user)
    return await _shown_comment(session, comment, user)


@router.get("/{post_id}/comments/{comment_id}/edits", response_model=list[CommentEditPublic])
async def comment_history(post_id: UUID, comment_id: UUID, session: SessionDep, user: Reader):
    """Earlier versions of the comment, newest first."""
    return await engagement.comment_history(session, post_id=post_id, comment_id=comment_id, user=user)


@router.put("/{post_id}/comments/{comment_id}/reaction", response_model=CommentPublic)
async def react_to_comment(post_id: UUID, comment_id: UUID, data: ReactionSet, session: SessionDep, user: Writer):
    """Set your reaction to the comment (one per comment)."""
    comment = await engagement.react_to_comment(session, post_id=post_id, comment_id=comment_id, kind=data.kind,
                                                user=user)
    return await _shown_comment(session, comment, user)


@router.delete("/{post_id}/comments/{comment_id}/reaction", response_model=CommentPublic)
async def unreact_to_comment(post_id: UUID, comment_id: UUID, session: SessionDep, user: Writer):
    """Remove your reaction to the comment."""
    comment = await engagement.unreact_to_comment(session, post_id=post_id, comment_id=comment_id, user=user)
    return await _shown_comment(session, comment, user)


@router.delete("/{post_id}/comments/{comment_id}", status_code=NO_CONTENT)
async def delete_comment(post_id: UUID, comment_id: UUID, session: SessionDep, user: Writer):
    """Delete your comment (moderators delete anyone's)."""
    await engagement.delete_comment(session, post_id=post_id, comment_id=comment_id, user=user)


@router.put("/{post_id}/reaction", response_model=PostPublic)
async def react(post_id: UUID, data: ReactionSet, session: SessionDep, user: Writer):
    """Set your reaction to the post (one per post)."""
    await engagement.react(session, post_id=post_id, kind=data.kind, user=user)
    return await _shown(session, post_id, user)


@router.delete("/{post_id}/reaction", response_model=PostPublic)
async def unreact(post_id: UUID, session: SessionDep, user: Writer):
    """Remove your reaction."""
    await engagement.unreact(session, post_id=post_id, user=user)
    return await _shown(session, post_id, user)


@router.put("/{post_id}/bookmark", status_code=NO_CONTENT)
async def bookmark(post_id: UUID, session: SessionDep, user: Writer):
    """Bookmark the post (see /api/v1/feeds/bookmarks)."""
    await engagement.set_bookmark(session, post_id=post_id, user=user, on=True)


@router.delete("/{post_id}/bookmark", status_code=NO_CONTENT)
async def unbookmark(post_id: UUID, session: SessionDep, user: Writer):
    """Remove the bookmark."""
    await engagement.set_bookmark(session, post_id=post_id, user=user, on=False)


@router.post("/{post_id}/votes", response_model=PostPublic)
async def vote(post_id: UUID, data: VoteCreate, session: SessionDep, user: Writer):
    """Vote in a poll (voting again replaces your vote)."""
    return await _shown(session, await engagement.vote(session, post_id=post_id, option_ids=data.option_ids,
                                                       user=user), user)


@router.put("/{post_id}/best-answer", response_model=PostPublic)
async def accept_answer(post_id: UUID, data: BestAnswer, session: SessionDep, user: Writer):
    """Accept a comment as the question's answer (its author or the group's admins)."""
    return await _shown(session, await engagement.accept_answer(session, post_id=post_id, comment_id=data.comment_id,
                                                                user=user), user)


@router.post("/{post_id}/acknowledge", response_model=AckState)
async def acknowledge(post_id: UUID, session: SessionDep, user: Writer):
    """Acknowledge a must-read announcement (its current version)."""
    post = await announcements.acknowledge(session, post_id=post_id, user=user)
    return AckState(post_id=post.id, version=post.ack_version, acknowledged=True)


@router.get("/{post_id}/acknowledgements", response_model=Page[AckPerson])
async def acknowledgements(post_id: UUID, session: SessionDep, user: Reader, page: PageDep,
                           state: Annotated[Literal["acknowledged", "pending"], Query()] = "acknowledged"):
    """Who in the audience has (state=acknowledged) or has not (state=pending) acknowledged; author and comms."""
    items, cursor = await announcements.list_people(session, post_id=post_id, user=user, state=state, page=page)
    return Page(items=items, next_cursor=cursor)


@router.get("/{post_id}/acknowledgements/summary", response_model=AckSummary)
async def acknowledgement_summary(post_id: UUID, session: SessionDep, user: Reader):
    """Acknowledgement rate overall, by department and by location; author and comms."""
    return await announcements.summary(session, post_id=post_id, user=user)


@router.post("/{post_id}/reminders", response_model=ReminderSent)
async def remind(post_id: UUID, session: SessionDep, user: Writer):
    """Remind now everyone who has not acknowledged; author and comms."""
    return ReminderSent(reminded=await announcements.remind_now(session, post_id=post_id, user=user))
