from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

PostKind = Literal["update", "question", "praise", "announcement", "poll", "article"]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"kind": "update", "body": "Shipped the new onboarding flow with @maria #launch",
                      "audience": "company"}]})

    kind: PostKind = "update"
    body: str = Field(min_length=1, max_length=20_000)
    audience: Literal["company", "followers"] = "company"
    group_id: UUID | None = None

    @field_validator("body")
    @classmethod
    def _not_blank(cls, body: str) -> str:
        if not body.strip():
            raise ValueError("must not be blank")
        return body


class PostPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    author_id: UUID
    kind: str
    body: str
    audience: str
    group_id: UUID | None
    mentions: list[UUID]
    hashtags: list[str]
    created_at: datetime
    updated_at: datetime
