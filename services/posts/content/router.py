from uuid import UUID

from fastapi import APIRouter, status

from services.posts.content import service
from services.posts.content.schemas import PostCreate, PostPublic
from services.posts.db import SessionDep
from shared.auth import CurrentUser, require_scope

router = APIRouter(prefix="/api/v1/posts", tags=["posts"])


@router.post("", response_model=PostPublic, status_code=status.HTTP_201_CREATED)
async def create_post(data: PostCreate, session: SessionDep, user: CurrentUser = require_scope("posts:write")):
    """Publish a post."""
    return await service.create(session, data=data, author=user)


@router.get("/{post_id}", response_model=PostPublic)
async def read_post(post_id: UUID, session: SessionDep, user: CurrentUser = require_scope("posts:read")):
    """A post the caller may read."""
    return await service.get_readable(session, post_id=post_id, user=user)
