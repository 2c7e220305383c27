import re
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.content.models import Post
from services.posts.content.schemas import PostCreate
from services.posts.graph import service as graph
from services.posts.graph.models import Follow
from services.posts.groups import service as groups
from services.posts.groups.models import Group, GroupMember
from services.posts.people import service as people
from services.posts.people.models import Person
from shared.auth import CurrentUser
from shared.context import client_var
from shared.errors import Forbidden, NotFound
from shared.events import PostCreated
from shared.outbox import add_event

# A mention is @handle not preceded by a word character (so emails are not mentions).
MENTION = re.compile(r"(?<![\w@])@([a-z0-9][a-z0-9._-]{0,63})", re.IGNORECASE)
HASHTAG = re.compile(r"(?<![\w#&])#(\w{1,100})", re.UNICODE)
EXCERPT_CHARS = 280


class PostNotFound(NotFound):
    code, title = "post-not-found", "Post not found"


def parse_mentions(body: str) -> set[str]:
    return {m.rstrip("._-").lower() for m in MENTION.findall(body)}


def parse_hashtags(body: str) -> list[str]:
    return sorted({t.lower() for t in HASHTAG.findall(body)})


def excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


async def _restricted_to_followers(session: AsyncSession, post: Post) -> bool:
    """Followers-only posts, and every post of a protected account, are for approved followers."""
    if post.audience == "followers":
        return True
    author = await session.get(Person, post.author_id)
    return author is not None and author.protected


async def readers_among(session: AsyncSession, post: Post, people_ids: list[UUID]) -> list[UUID]:
    """Which of `people_ids` may read `post` (used to keep mentions from leaking a post)."""
    if post.group_id is not None:  # the group decides, whoever the author is
        group = await groups.get_or_raise(session, group_id=post.group_id)
        return await groups.content_readers(session, group=group, person_ids=list(people_ids))
    if not await _restricted_to_followers(session, post):
        return list(people_ids)
    followers = await graph.follower_ids(session, followee_id=post.author_id, among=people_ids)
    return [p for p in people_ids if p in followers or p == post.author_id]


async def can_read(session: AsyncSession, post: Post, user: CurrentUser) -> bool:
    if post.author_id == user.id:
        return True
    return bool(await readers_among(session, post, [user.id]))


def readable_by(user_id: UUID):
    """`can_read` as a SQL condition on posts, for queries over many posts (search): keep the two in step."""
    in_group = Post.group_id.in_(select(Group.id).where(Group.visibility == "public")
                                 .union_all(select(GroupMember.group_id).where(GroupMember.person_id == user_id)))
    protected = select(Person.id).where(Person.protected.is_(True))
    followed = select(Follow.followee_id).where(Follow.follower_id == user_id)
    return or_(Post.author_id == user_id,
               and_(Post.group_id.is_not(None), in_group),
               and_(Post.group_id.is_(None), Post.audience != "followers", Post.author_id.not_in(protected)),
               and_(Post.group_id.is_(None), Post.author_id.in_(followed)))


async def create(session: AsyncSession, *, data: PostCreate, author: CurrentUser) -> Post:
    """Publish a post; mentioned people who can read it will be notified (post.created on social.v1)."""
    if data.group_id is not None:
        await groups.ensure_can_post(session, group=await groups.get_or_raise(session, group_id=data.group_id),
                                     user=author)
    if data.kind == "announcement" and not author.has_role("communications"):
        raise Forbidden("Only communications staff and admins publish announcements.")
    mentioned = await people.resolve_handles(session, handles=parse_mentions(data.body))
    post = Post(author_id=author.id, kind=data.kind, body=data.body, audience=data.audience, group_id=data.group_id,
                mentions=[p.id for p in mentioned], hashtags=parse_hashtags(data.body), client=client_var.get())
    session.add(post)
    await session.flush()
    readers = [p for p in await readers_among(session, post, [p.id for p in mentioned]) if p != author.id]
    await add_event(session, PostCreated(post_id=post.id, author_id=author.id, kind=post.kind, audience=post.audience,
                                         group_id=post.group_id, excerpt=excerpt(post.body), mentions=readers,
                                         hashtags=post.hashtags, created_at=post.created_at),
                    subject=post.id, actor=author.id)
    await session.commit()
    return post


async def get_readable(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> Post:
    """The post if `user` may read it; 404 otherwise, so existence does not leak."""
    post = await session.get(Post, post_id)
    if post is None or not await can_read(session, post, user):
        raise PostNotFound()
    return post
