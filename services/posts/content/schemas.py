from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PostKind = Literal["update", "question", "praise", "announcement", "poll", "article"]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"kind": "update", "body": "Shipped the new onboarding flow with @maria #launch",
                      "audience": "company"}]})

    kind: PostKind = "update"
    body: str = Field(min_length=1, max_length=20_000)
    # Omitted: "company", or "group" when `group_id` is given (a group post is for the group's readers).
    audience: Literal["company", "followers", "group"] | None = None
    group_id: UUID | None = None

    @field_validator("body")
    @classmethod
    def _not_blank(cls, body: str) -> str:
        if not body.strip():
            raise ValueError("must not be blank")
        return body

    @model_validator(mode="after")
    def _audience_matches_group(self):
        if self.group_id is not None and self.audience not in (None, "group"):
            raise ValueError("a group post's audience is the group")
        if self.group_id is None and self.audience == "group":
            raise ValueError("audience group needs a group_id")
        self.audience = self.audience or ("group" if self.group_id else "company")
        return self


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
