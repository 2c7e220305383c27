"""What becomes a notification: one handler per social.v1 event (idempotent; the loop dedupes by event id)."""

from uuid import UUID

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.audience import service as audience
from services.notifications.audience.models import KnownPost
from services.notifications.config import Settings
from services.notifications.inbox.models import Notification
from services.notifications.inbox.service import EVERYONE, GROUP_MEMBERS, Source, notify, remove_where, upsert_grouped
from services.notifications.preferences.models import Mute
from shared.db import utcnow
from shared.events import Envelope
from shared.kafka import EventConsumer


async def _post_group(session: AsyncSession, post_id: UUID) -> UUID | None:
    post = await session.get(KnownPost, post_id)
    return post.group_id if post else None


async def on_post_created(session: AsyncSession, envelope: Envelope, post) -> None:
    """Mentions; an announcement notifies its whole audience (group members or everyone).

    Only a must-read one gets past mutes (and is `announcement`, with reminders and acknowledgement);
    a plain one is an ordinary `plain_announcement` that mutes and preferences silence."""
    await audience.remember_post(session, post_id=post.post_id, author_id=post.author_id, kind=post.kind,
                                 audience=post.audience, group_id=post.group_id, excerpt=post.excerpt,
                                 created_at=post.created_at)
    base = dict(actor_id=post.author_id, subject_type="post", subject_id=post.post_id, excerpt=post.excerpt,
                post_id=post.post_id, group_id=post.group_id)
    # posts already kept out mentioned people who cannot read the post
    await notify(session, envelope, Source(kind="mention", **base), recipients=post.mentions)
    if post.kind == "announcement":
        source = (Source(kind="announcement", must_read=True, **base) if post.must_read
                  else Source(kind="plain_announcement", **base))
        await _announce(session, envelope, source, post.audience, post.group_id)


async def _announce(session: AsyncSession, envelope: Envelope, source: Source, audience_kind: str,
                    group_id: UUID | None) -> None:
    group = await audience.get_group(session, group_id)
    if audience_kind == "company" or (group is not None and group.all_company):
        await notify(session, envelope, source, candidates=EVERYONE)
    elif group_id is not None:
        await notify(session, envelope, source, candidates=GROUP_MEMBERS, audience_group=group_id)
    # followers-only announcements: no follower read model here; the author's followers see it in their feed


async def on_post_updated(session: AsyncSession, envelope: Envelope, post) -> None:
    """An edit that asks everyone to acknowledge a must-read announcement again notifies its audience again."""
    if not post.requires_acknowledgement:
        return
    known = await session.get(KnownPost, post.post_id)
    if known is None:
        return
    source = Source(kind="announcement", actor_id=post.editor_id, subject_type="post", subject_id=post.post_id,
                    excerpt=post.excerpt, post_id=post.post_id, group_id=known.group_id, must_read=True)
    await _announce(session, envelope, source, known.audience, known.group_id)


async def on_post_deleted(session: AsyncSession, envelope: Envelope, post) -> None:
    await remove_where(session, Notification.post_id == post.post_id)
    await audience.forget_post(session, post.post_id)


async def on_comment_created(session: AsyncSession, envelope: Envelope, comment) -> None:
    """The parent's author gets a reply, the post's author a comment, mentioned readers a mention: one each."""
    await audience.count_comment(session, comment.post_id, +1)
    base = dict(actor_id=comment.author_id, subject_type="comment", subject_id=comment.comment_id,
                excerpt=comment.excerpt, post_id=comment.post_id, comment_id=comment.comment_id,
                group_id=await _post_group(session, comment.post_id))
    told: set[UUID] = {comment.author_id}
    if comment.parent_author_id is not None and comment.parent_author_id not in told:
        await notify(session, envelope, Source(kind="reply", **base), recipients=[comment.parent_author_id])
        told.add(comment.parent_author_id)
    if comment.post_author_id not in told:
        await notify(session, envelope, Source(kind="comment", **base), recipients=[comment.post_author_id])
        told.add(comment.post_author_id)
    mentioned = [m for m in comment.mentions if m not in told]
    await notify(session, envelope, Source(kind="mention", **base), recipients=mentioned)


async def on_comment_deleted(session: AsyncSession, envelope: Envelope, comment) -> None:
    await remove_where(session, Notification.comment_id == comment.comment_id)
    await audience.forget_comment(session, comment.comment_id)
    await audience.count_comment(session, comment.post_id, -1)


async def _reaction(session: AsyncSession, envelope: Envelope, reaction, *, present: bool, new: bool) -> None:
    if reaction.person_id == reaction.post_author_id:
        return
    count, newest = await audience.set_reaction(session, post_id=reaction.post_id, person_id=reaction.person_id,
                                                present=present)
    known = await session.get(KnownPost, reaction.post_id)
    source = Source(kind="reaction", actor_id=newest[0] if newest else reaction.person_id, subject_type="post",
                    subject_id=reaction.post_id, excerpt=known.excerpt if known else "", post_id=reaction.post_id,
                    group_id=known.group_id if known else None)
    await upsert_grouped(session, envelope, source, recipient=reaction.post_author_id,
                         group_key=f"reaction:{reaction.post_id}", actor_count=count, actor_ids=newest,
                         bump=present and new)


async def on_reaction_added(session: AsyncSession, envelope: Envelope, reaction) -> None:
    """Reactions on a post are one notification for its author, updated: "Ana and 4 others"."""
    await _reaction(session, envelope, reaction, present=True, new=reaction.previous_kind is None)


async def on_reaction_removed(session: AsyncSession, envelope: Envelope, reaction) -> None:
    await _reaction(session, envelope, reaction, present=False, new=False)


async def _comment_reaction(session: AsyncSession, envelope: Envelope, reaction, *, present: bool,
                            new: bool, excerpt: str = "") -> None:
    if reaction.person_id == reaction.comment_author_id:
        return
    count, newest = await audience.set_comment_reaction(session, comment_id=reaction.comment_id,
                                                        post_id=reaction.post_id, person_id=reaction.person_id,
                                                        present=present)
    # The comment's text travels in the reaction event (this service keeps none); "" from older producers.
    source = Source(kind="comment_reaction", actor_id=newest[0] if newest else reaction.person_id,
                    subject_type="comment", subject_id=reaction.comment_id, excerpt=excerpt,
                    post_id=reaction.post_id, comment_id=reaction.comment_id,
                    group_id=await _post_group(session, reaction.post_id))
    await upsert_grouped(session, envelope, source, recipient=reaction.comment_author_id,
                         group_key=f"comment_reaction:{reaction.comment_id}", actor_count=count, actor_ids=newest,
                         bump=present and new)


async def on_comment_reaction_added(session: AsyncSession, envelope: Envelope, reaction) -> None:
    """Reactions on a comment are one notification for its author, updated like a post's."""
    await _comment_reaction(session, envelope, reaction, present=True, new=reaction.previous_kind is None,
                            excerpt=reaction.excerpt or "")


async def on_comment_reaction_removed(session: AsyncSession, envelope: Envelope, reaction) -> None:
    await _comment_reaction(session, envelope, reaction, present=False, new=False)


async def on_answer_accepted(session: AsyncSession, envelope: Envelope, answer) -> None:
    source = Source(kind="best_answer", actor_id=answer.accepted_by, subject_type="comment",
                    subject_id=answer.comment_id, post_id=answer.post_id, comment_id=answer.comment_id,
                    group_id=await _post_group(session, answer.post_id))
    await notify(session, envelope, source, recipients=[answer.answer_author_id])


async def on_praise(session: AsyncSession, envelope: Envelope, praise) -> None:
    known = await session.get(KnownPost, praise.post_id)
    source = Source(kind="praise", actor_id=praise.author_id, subject_type="post", subject_id=praise.post_id,
                    excerpt=known.excerpt if known else "", post_id=praise.post_id,
                    group_id=known.group_id if known else None)
    await notify(session, envelope, source, recipients=praise.recipients)


async def on_reminder_due(session: AsyncSession, envelope: Envelope, reminder) -> None:
    source = Source(kind="announcement_reminder", actor_id=reminder.author_id, subject_type="post",
                    subject_id=reminder.post_id, excerpt=reminder.excerpt, post_id=reminder.post_id,
                    group_id=await _post_group(session, reminder.post_id), must_read=True)
    await notify(session, envelope, source, recipients=reminder.person_ids)


async def on_acknowledged(session: AsyncSession, envelope: Envelope, ack) -> None:
    """Acknowledging an announcement reads its notifications (the announcement and its reminders)."""
    await session.execute(update(Notification).where(
        Notification.recipient_id == ack.person_id, Notification.post_id == ack.post_id,
        Notification.kind.in_(("announcement", "announcement_reminder")), Notification.read_at.is_(None))
        .values(read_at=utcnow()))


async def on_follow(session: AsyncSession, envelope: Envelope, follow) -> None:
    """A new follower; when a request was approved, the follower also learns it."""
    person = dict(subject_type="person")
    if follow.quiet and not follow.via_request:
        return  # a follow repeated within a day (follow/unfollow flapping) notifies once, not every time
    await notify(session, envelope, Source(kind="follow", actor_id=follow.follower_id, subject_id=follow.follower_id,
                                           **person), recipients=[follow.followee_id])
    if follow.via_request:
        approved = Source(kind="follow_approved", actor_id=follow.followee_id, subject_id=follow.followee_id, **person)
        await notify(session, envelope, approved, recipients=[follow.follower_id])
        await _drop_follow_request(session, follow)


async def on_follow_removed(session: AsyncSession, envelope: Envelope, follow) -> None:
    await remove_where(session, Notification.recipient_id == follow.followee_id, Notification.kind == "follow",
                       Notification.actor_id == follow.follower_id)


async def on_follow_requested(session: AsyncSession, envelope: Envelope, request) -> None:
    await notify(session, envelope, Source(kind="follow_request", actor_id=request.follower_id, subject_type="person",
                                           subject_id=request.follower_id), recipients=[request.followee_id])


async def _drop_follow_request(session: AsyncSession, request) -> None:
    await remove_where(session, Notification.recipient_id == request.followee_id,
                       Notification.kind == "follow_request", Notification.actor_id == request.follower_id)


async def on_follow_request_closed(session: AsyncSession, envelope: Envelope, request) -> None:
    """Denied or cancelled: the request to decide is gone from the owner's inbox."""
    await _drop_follow_request(session, request)


async def on_group(session: AsyncSession, envelope: Envelope, event) -> None:
    await audience.upsert_group(session, event.group)


async def on_member_added(session: AsyncSession, envelope: Envelope, member) -> None:
    await audience.set_member(session, group_id=member.group_id, person_id=member.person_id, role=member.role)
    # the request is decided: it leaves the admins' inboxes
    await remove_where(session, Notification.kind == "join_request", Notification.group_id == member.group_id,
                       Notification.actor_id == member.person_id)
    if member.via == "request_approved":
        await notify(session, envelope, Source(kind="join_approved", actor_id=envelope.actor, subject_type="group",
                                               subject_id=member.group_id, group_id=member.group_id),
                     recipients=[member.person_id])


async def on_member_removed(session: AsyncSession, envelope: Envelope, member) -> None:
    """Leaving a private or secret group takes away what it showed: its notifications go too."""
    await audience.remove_member(session, group_id=member.group_id, person_id=member.person_id)
    group = await audience.get_group(session, member.group_id)
    if group is None or group.visibility != "public":
        await remove_where(session, Notification.recipient_id == member.person_id,
                           Notification.group_id == member.group_id)


async def on_role_changed(session: AsyncSession, envelope: Envelope, member) -> None:
    await audience.set_member(session, group_id=member.group_id, person_id=member.person_id, role=member.role)


async def on_join_requested(session: AsyncSession, envelope: Envelope, request) -> None:
    """To the group's owners and admins."""
    admins = await audience.group_admins(session, request.group_id)
    await notify(session, envelope, Source(kind="join_request", actor_id=request.person_id, subject_type="group",
                                           subject_id=request.group_id, group_id=request.group_id), recipients=admins)


async def on_group_invited(session: AsyncSession, envelope: Envelope, invite) -> None:
    await notify(session, envelope, Source(kind="group_invite", actor_id=invite.inviter_id, subject_type="group",
                                           subject_id=invite.group_id, group_id=invite.group_id),
                 recipients=[invite.person_id])


async def on_group_muted(session: AsyncSession, envelope: Envelope, mute) -> None:
    """A group muted in posts is muted here too (and the other way round)."""
    if mute.muted:
        await session.execute(insert(Mute).values(person_id=mute.person_id, target_type="group",
                                                  target_id=mute.group_id).on_conflict_do_nothing())
    else:
        await session.execute(Mute.__table__.delete().where(Mute.person_id == mute.person_id,
                                                            Mute.target_type == "group",
                                                            Mute.target_id == mute.group_id))


SOCIAL_HANDLERS = {
    "hearth.post.created": on_post_created,
    "hearth.post.updated": on_post_updated,
    "hearth.post.deleted": on_post_deleted,
    "hearth.comment.created": on_comment_created,
    "hearth.comment.deleted": on_comment_deleted,
    "hearth.reaction.added": on_reaction_added,
    "hearth.reaction.removed": on_reaction_removed,
    "hearth.comment.reaction_added": on_comment_reaction_added,
    "hearth.comment.reaction_removed": on_comment_reaction_removed,
    "hearth.question.answer_accepted": on_answer_accepted,
    "hearth.praise.given": on_praise,
    "hearth.announcement.reminder_due": on_reminder_due,
    "hearth.announcement.acknowledged": on_acknowledged,
    "hearth.follow.created": on_follow,
    "hearth.follow.removed": on_follow_removed,
    "hearth.follow.requested": on_follow_requested,
    "hearth.follow_request.closed": on_follow_request_closed,
    "hearth.group.created": on_group,
    "hearth.group.updated": on_group,
    "hearth.group.member_added": on_member_added,
    "hearth.group.member_removed": on_member_removed,
    "hearth.group.member_role_changed": on_role_changed,
    "hearth.group.join_requested": on_join_requested,
    "hearth.group.invited": on_group_invited,
    "hearth.group.muted": on_group_muted,
}


def social_consumer(settings: Settings) -> EventConsumer:
    return EventConsumer(name="notifications.social", topics=[settings.topic_social], handlers=SOCIAL_HANDLERS,
                         max_attempts=settings.consumer_max_attempts)
