"""What becomes a notification, and what makes one disappear."""

import pytest
from sqlalchemy import func, select
from uuid6 import uuid7

from services.notifications.audience.models import CommentReaction
from services.notifications.inbox.consumers import SOCIAL_HANDLERS
from services.posts.content import engagement
from services.posts.content import service as posts
from services.posts.content.schemas import CommentCreate, PostCreate
from services.posts.people import service as people
from services.posts.people.schemas import PersonCreate
from shared.auth import CurrentUser
from shared.db import database_url, make_engine, utcnow
from shared.events import (AnnouncementAcknowledged, AnnouncementReminderDue, BestAnswerAccepted, CommentCreated,
                           CommentDeleted, CommentReactionAdded, CommentReactionRemoved, GroupCreated,
                           GroupJoinRequested, GroupMemberAdded, GroupMemberRemoved, GroupSnapshot, PostCreated,
                           PostDeleted, PraiseGiven, ReactionAdded, ReactionRemoved)
from shared.testing import outbox_events, savepoint_sessionmaker
from tests.conftest import TEST_PREFIX
from tests.notifications.builders import add_person, apply, inbox, send, wrap


def post(author, **fields):
    return PostCreated(**({"post_id": uuid7(), "author_id": author, "kind": "update", "audience": "company",
                           "excerpt": "Quarterly plan", "created_at": utcnow()} | fields))


def comment(post_event, author, **fields):
    return CommentCreated(**({"comment_id": uuid7(), "post_id": post_event.post_id,
                              "post_author_id": post_event.author_id, "author_id": author, "excerpt": "Nice",
                              "created_at": utcnow()} | fields))


async def group(settings, sessionmaker, members: dict, **fields):
    snapshot = GroupSnapshot(**({"id": uuid7(), "name": "Ops", "visibility": "private", "updated_at": utcnow()}
                                | fields))
    await send(settings, sessionmaker, GroupCreated(group=snapshot))
    for person, role in members.items():
        await send(settings, sessionmaker, GroupMemberAdded(group_id=snapshot.id, person_id=person, role=role,
                                                            via="added"))
    return snapshot.id


async def test_comment_reply_and_mention_each_notify_once(settings, sessionmaker, client, keys):
    author, ana, bob, cleo = uuid7(), uuid7(), uuid7(), uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    first = comment(p, ana)
    await send(settings, sessionmaker, first)
    # bob replies to ana, mentioning ana (already told by the reply), the author (told by the comment) and cleo
    await send(settings, sessionmaker, comment(p, bob, parent_id=first.comment_id, parent_author_id=ana,
                                               mentions=[ana, author, cleo]))
    assert [n["kind"] for n in await inbox(client, keys, author)] == ["comment", "comment"]
    assert [n["kind"] for n in await inbox(client, keys, ana)] == ["reply"]
    [mention] = await inbox(client, keys, cleo)
    assert mention["kind"] == "mention" and mention["post_id"] == str(p.post_id)


async def test_reactions_are_one_grouped_row_that_counts_people(settings, sessionmaker, client, keys):
    author = uuid7()
    ana = await add_person(settings, sessionmaker, display_name="Ana Lopez")
    others = [uuid7() for _ in range(4)]
    p = post(author)
    await send(settings, sessionmaker, p)
    for person in others + [ana]:
        await send(settings, sessionmaker, ReactionAdded(post_id=p.post_id, post_author_id=author, person_id=person,
                                                         kind="like"))
    await send(settings, sessionmaker, ReactionAdded(post_id=p.post_id, post_author_id=author, person_id=ana,
                                                     kind="love", previous_kind="like"))  # a change, not a new one
    [row] = await inbox(client, keys, author)
    assert row["kind"] == "reaction" and row["actor_count"] == 5
    assert row["title"] == "Ana Lopez and 4 others reacted to your post"
    for person in others:
        await send(settings, sessionmaker, ReactionRemoved(post_id=p.post_id, post_author_id=author,
                                                           person_id=person, kind="like"))
    [row] = await inbox(client, keys, author)
    assert row["actor_count"] == 1 and row["title"] == "Ana Lopez reacted to your post"
    await send(settings, sessionmaker, ReactionRemoved(post_id=p.post_id, post_author_id=author, person_id=ana,
                                                       kind="love"))
    assert await inbox(client, keys, author) == []


async def test_a_new_reaction_makes_a_read_group_unread_again(settings, sessionmaker, client, keys):
    author = uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    await send(settings, sessionmaker, ReactionAdded(post_id=p.post_id, post_author_id=author, person_id=uuid7(),
                                                     kind="like"))
    await client.post("/api/v1/notifications/read-all", headers=keys.headers(author))
    await send(settings, sessionmaker, ReactionAdded(post_id=p.post_id, post_author_id=author, person_id=uuid7(),
                                                     kind="like"))
    [row] = await inbox(client, keys, author, "?unread=true")
    assert row["actor_count"] == 2


async def test_deleted_post_and_comment_take_their_notifications_away(settings, sessionmaker, client, keys):
    author, ana, cleo = uuid7(), uuid7(), uuid7()
    p = post(author, mentions=[cleo])
    await send(settings, sessionmaker, p)
    c = comment(p, ana, mentions=[cleo])
    await send(settings, sessionmaker, c)
    assert len(await inbox(client, keys, cleo)) == 2
    await send(settings, sessionmaker, CommentDeleted(comment_id=c.comment_id, post_id=p.post_id, author_id=ana,
                                                      deleted_by=ana))
    assert [n["subject_type"] for n in await inbox(client, keys, cleo)] == ["post"]
    assert await inbox(client, keys, author) == []
    await send(settings, sessionmaker, PostDeleted(post_id=p.post_id, author_id=author, deleted_by=author))
    assert await inbox(client, keys, cleo) == []


async def test_join_request_goes_to_group_admins_and_leaves_when_approved(settings, sessionmaker, client, keys):
    owner, admin, member, asker = uuid7(), uuid7(), uuid7(), uuid7()
    group_id = await group(settings, sessionmaker, {owner: "owner", admin: "admin", member: "member"})
    await send(settings, sessionmaker, GroupJoinRequested(request_id=uuid7(), group_id=group_id, person_id=asker))
    for person in (owner, admin):
        assert [n["kind"] for n in await inbox(client, keys, person)] == ["join_request"]
    assert await inbox(client, keys, member) == []
    await send(settings, sessionmaker, GroupMemberAdded(group_id=group_id, person_id=asker, role="member",
                                                        via="request_approved"), actor=admin)
    assert await inbox(client, keys, owner) == [] and await inbox(client, keys, admin) == []
    [approved] = await inbox(client, keys, asker)
    assert approved["kind"] == "join_approved" and approved["actor_id"] == str(admin)


async def test_must_read_announcement_reaches_every_member_in_bulk_events(settings, sessionmaker, client, keys,
                                                                          session):
    author = uuid7()
    members = {uuid7(): "member" for _ in range(2500)}
    gone = await add_person(settings, sessionmaker, active=False)
    members[gone] = "member"
    group_id = await group(settings, sessionmaker, members)
    some = next(iter(members))
    await client.put(f"/api/v1/notifications/mutes/group/{group_id}", headers=keys.headers(some))
    await send(settings, sessionmaker, post(author, kind="announcement", audience="group", group_id=group_id,
                                            must_read=True))
    [row] = await inbox(client, keys, some)  # a muted group does not silence a must-read
    assert row["kind"] == "announcement"
    delivered = await outbox_events(session, type="hearth.notification.delivered")
    recipients = [r for e in delivered for r in e.data["recipients"]]
    assert len(delivered) == 3 and len(recipients) == len(set(recipients)) == 2500
    assert str(gone) not in recipients  # deactivated: not notified


async def test_plain_announcement_is_an_ordinary_notification_that_mutes_silence(settings, sessionmaker, client,
                                                                                 keys):
    author, muted, other = uuid7(), uuid7(), uuid7()
    group_id = await group(settings, sessionmaker, {author: "owner", muted: "member", other: "member"})
    await client.put(f"/api/v1/notifications/mutes/group/{group_id}", headers=keys.headers(muted))
    await send(settings, sessionmaker, post(author, kind="announcement", audience="group", group_id=group_id))
    assert await inbox(client, keys, muted) == []
    [row] = await inbox(client, keys, other)
    assert row["kind"] == "plain_announcement" and row["title"] == "Someone published an announcement"
    # a must-read one reaches the muted member too, and is the kind acknowledgement reads
    await send(settings, sessionmaker, post(author, kind="announcement", audience="group", group_id=group_id,
                                            must_read=True))
    assert [n["kind"] for n in await inbox(client, keys, muted)] == ["announcement"]
    assert [n["kind"] for n in await inbox(client, keys, other)] == ["announcement", "plain_announcement"]


async def test_leaving_a_private_group_removes_its_notifications(settings, sessionmaker, client, keys):
    author, ana = uuid7(), uuid7()
    group_id = await group(settings, sessionmaker, {author: "owner", ana: "member"})
    await send(settings, sessionmaker, post(author, audience="group", group_id=group_id, mentions=[ana]))
    assert len(await inbox(client, keys, ana)) == 1
    await send(settings, sessionmaker, GroupMemberRemoved(group_id=group_id, person_id=ana, reason="left"))
    assert await inbox(client, keys, ana) == []


async def test_praise_best_answer_reminder_and_acknowledgement(settings, sessionmaker, client, keys):
    author, ana = uuid7(), uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    await send(settings, sessionmaker, PraiseGiven(post_id=p.post_id, author_id=author, recipients=[ana, author]))
    await send(settings, sessionmaker, BestAnswerAccepted(post_id=p.post_id, comment_id=uuid7(),
                                                          answer_author_id=ana, accepted_by=author))
    reminder = AnnouncementReminderDue(post_id=p.post_id, author_id=author, version=1, excerpt="Read me",
                                       person_ids=[ana])
    await send(settings, sessionmaker, reminder)
    assert sorted(n["kind"] for n in await inbox(client, keys, ana)) == ["announcement_reminder", "best_answer",
                                                                          "praise"]
    await send(settings, sessionmaker, AnnouncementAcknowledged(post_id=p.post_id, person_id=ana, version=1))
    unread = {n["kind"] for n in await inbox(client, keys, ana, "?unread=true")}
    assert unread == {"best_answer", "praise"}
    only = await inbox(client, keys, ana, "?kind=praise")
    assert [n["kind"] for n in only] == ["praise"]


async def test_muting_a_person_or_post_silences_them(settings, sessionmaker, client, keys):
    author, ana, loud = uuid7(), uuid7(), uuid7()
    p = post(author, mentions=[ana])
    await client.put(f"/api/v1/notifications/mutes/post/{p.post_id}", headers=keys.headers(ana))
    await client.put(f"/api/v1/notifications/mutes/person/{loud}", headers=keys.headers(ana))
    await send(settings, sessionmaker, p)
    await send(settings, sessionmaker, post(loud, mentions=[ana]))
    assert await inbox(client, keys, ana) == []
    await client.delete(f"/api/v1/notifications/mutes/person/{loud}", headers=keys.headers(ana))
    await send(settings, sessionmaker, post(loud, mentions=[ana]))
    assert len(await inbox(client, keys, ana)) == 1


def comment_reaction(c, person, *, removed=False, **fields):
    model = CommentReactionRemoved if removed else CommentReactionAdded
    return model(**({"comment_id": c.comment_id, "post_id": c.post_id, "comment_author_id": c.author_id,
                     "person_id": person, "kind": "like"} | fields))


async def test_comment_reactions_are_one_grouped_row_for_the_comments_author(settings, sessionmaker, client, keys):
    author, commenter = uuid7(), uuid7()
    ana = await add_person(settings, sessionmaker, display_name="Ana Lopez")
    others = [uuid7() for _ in range(4)]
    p = post(author)
    await send(settings, sessionmaker, p)
    c = comment(p, commenter)
    await send(settings, sessionmaker, c)
    await send(settings, sessionmaker, comment_reaction(c, commenter))  # their own comment: nobody is told
    for person in others + [ana]:
        await send(settings, sessionmaker, comment_reaction(c, person))
    await send(settings, sessionmaker, comment_reaction(c, ana, kind="funny", previous_kind="like"))  # a change
    [row] = await inbox(client, keys, commenter)
    assert row["kind"] == "comment_reaction" and row["actor_count"] == 5 and row["actor_ids"][0] == str(ana)
    assert row["title"] == "Ana Lopez and 4 others reacted to your comment"
    assert (row["subject_type"], row["comment_id"], row["post_id"]) == ("comment", str(c.comment_id), str(p.post_id))
    assert [n["kind"] for n in await inbox(client, keys, author)] == ["comment"]  # the post's author: not this
    # a withdrawn reaction fixes the count quietly: the row stays read
    await client.post("/api/v1/notifications/read-all", headers=keys.headers(commenter))
    for person in others:
        await send(settings, sessionmaker, comment_reaction(c, person, removed=True))
    [row] = await inbox(client, keys, commenter)
    assert row["actor_count"] == 1 and row["read_at"] is not None
    assert row["title"] == "Ana Lopez reacted to your comment"
    await send(settings, sessionmaker, comment_reaction(c, others[0]))  # a new one: unread again
    [row] = await inbox(client, keys, commenter, "?unread=true")
    assert row["actor_count"] == 2 and row["actor_ids"][0] == str(others[0])
    for person in (others[0], ana):
        await send(settings, sessionmaker, comment_reaction(c, person, removed=True))
    assert await inbox(client, keys, commenter) == []


async def test_comment_reactions_show_the_comments_excerpt_and_accept_events_without_it(settings, sessionmaker,
                                                                                        client, keys):
    author, commenter = uuid7(), uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    c = comment(p, commenter)
    await send(settings, sessionmaker, c)
    older = wrap(comment_reaction(c, uuid7()))
    del older.data["excerpt"]  # as a producer from before the field sends it
    await apply(settings, sessionmaker, older)
    [row] = await inbox(client, keys, commenter)
    assert row["kind"] == "comment_reaction" and row["excerpt"] == ""
    await send(settings, sessionmaker, comment_reaction(c, uuid7(), excerpt="Ship it on Friday"))
    [row] = await inbox(client, keys, commenter)
    assert (row["actor_count"], row["excerpt"]) == (2, "Ship it on Friday")
    await send(settings, sessionmaker, comment_reaction(c, uuid7()))  # without one: the row keeps its text
    await send(settings, sessionmaker, comment_reaction(c, uuid7(), removed=True))
    [row] = await inbox(client, keys, commenter)
    assert (row["actor_count"], row["excerpt"]) == (3, "Ship it on Friday")
    await send(settings, sessionmaker, comment_reaction(c, uuid7(), excerpt="Ship it on Monday"))  # edited since
    [row] = await inbox(client, keys, commenter)
    assert (row["actor_count"], row["excerpt"]) == (4, "Ship it on Monday")


@pytest.fixture
async def posts_sessionmaker(migrated_server):
    """Sessions on the posts service's own database (rolled back afterwards), to run posts' code as it runs."""
    engine = make_engine(database_url(migrated_server, TEST_PREFIX + "posts"), pool_size=1)
    try:
        async with savepoint_sessionmaker(engine, service="posts") as maker:
            yield maker
    finally:
        await engine.dispose()


async def test_a_reaction_on_a_comment_brings_the_comments_text_from_posts_to_the_inbox(
        settings, sessionmaker, client, keys, posts_sessionmaker):
    async with posts_sessionmaker() as s:
        author, commenter, fan = [await people.create(s, data=PersonCreate(
            email=f"{name}-{uuid7()}@corp.local", display_name=name.title(), password="correct-horse"), actor=None)
            for name in ("author", "commenter", "fan")]

        def as_user(person):
            return CurrentUser(id=person.id, roles=frozenset(), scopes=None)

        shared = await posts.create(s, data=PostCreate(body="Quarterly plan"), author=as_user(author))
        said = await engagement.create_comment(s, post_id=shared.id, data=CommentCreate(body="Ship  it\non Friday"),
                                               user=as_user(commenter))
        await engagement.react_to_comment(s, post_id=shared.id, comment_id=said.id, kind="like", user=as_user(fan))
        events = [e for e in await outbox_events(s) if e.type in SOCIAL_HANDLERS]
    assert [e.type for e in events] == ["hearth.post.created", "hearth.comment.created",
                                        "hearth.comment.reaction_added"]
    for envelope in events:  # what the relay publishes, through the consumer's handlers
        await apply(settings, sessionmaker, envelope)
    [row] = await inbox(client, keys, commenter.id, "?kind=comment_reaction")
    assert (row["comment_id"], row["excerpt"]) == (str(said.id), "Ship it on Friday")


async def test_reactions_on_two_comments_are_two_rows(settings, sessionmaker, client, keys):
    author, commenter = uuid7(), uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    first, second = comment(p, commenter), comment(p, commenter)
    for c in (first, second):
        await send(settings, sessionmaker, c)
        await send(settings, sessionmaker, comment_reaction(c, uuid7()))
    rows = await inbox(client, keys, commenter)
    assert sorted(n["comment_id"] for n in rows) == sorted([str(first.comment_id), str(second.comment_id)])


async def test_comment_reactions_respect_mutes_and_preferences(settings, sessionmaker, client, keys):
    author, commenter, muted_actor = uuid7(), uuid7(), uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    c = comment(p, commenter)
    await send(settings, sessionmaker, c)
    await client.put(f"/api/v1/notifications/mutes/person/{muted_actor}", headers=keys.headers(commenter))
    await send(settings, sessionmaker, comment_reaction(c, muted_actor))
    assert await inbox(client, keys, commenter) == []
    await client.put(f"/api/v1/notifications/mutes/post/{p.post_id}", headers=keys.headers(commenter))
    await send(settings, sessionmaker, comment_reaction(c, uuid7()))
    assert await inbox(client, keys, commenter) == []
    await client.delete(f"/api/v1/notifications/mutes/post/{p.post_id}", headers=keys.headers(commenter))
    response = await client.put("/api/v1/notifications/preferences/kinds/comment_reaction",
                                json={"in_app": False, "push": False, "email": False},
                                headers=keys.headers(commenter))
    assert response.status_code == 200, response.text
    await send(settings, sessionmaker, comment_reaction(c, uuid7()))
    assert await inbox(client, keys, commenter) == []


async def test_deleted_comment_or_post_takes_its_reaction_notification_away(settings, sessionmaker, client, keys):
    author, commenter = uuid7(), uuid7()
    p = post(author)
    await send(settings, sessionmaker, p)
    gone, kept = comment(p, commenter), comment(p, commenter)
    for c in (gone, kept):
        await send(settings, sessionmaker, c)
        await send(settings, sessionmaker, comment_reaction(c, uuid7()))
    await send(settings, sessionmaker, CommentDeleted(comment_id=gone.comment_id, post_id=p.post_id,
                                                      author_id=commenter, deleted_by=commenter))
    [row] = await inbox(client, keys, commenter)
    assert row["comment_id"] == str(kept.comment_id)
    assert await reactors(sessionmaker, CommentReaction.comment_id == gone.comment_id) == 0  # the read model too
    await send(settings, sessionmaker, PostDeleted(post_id=p.post_id, author_id=author, deleted_by=author))
    assert await inbox(client, keys, commenter) == []
    assert await reactors(sessionmaker, CommentReaction.post_id == p.post_id) == 0


async def reactors(sessionmaker, condition) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(CommentReaction).where(condition))
