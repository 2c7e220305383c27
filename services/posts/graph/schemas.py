from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from services.posts.people.api import PersonSummary


class FollowState(BaseModel):
    state: Literal["following", "requested"]
    request_id: UUID | None = None


class FollowRequestPublic(BaseModel):
    id: UUID
    follower: PersonSummary
    created_at: datetime
