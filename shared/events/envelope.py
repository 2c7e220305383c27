"""The one envelope every event travels in (CloudEvents attribute names)."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field
from uuid6 import uuid7

from shared.context import client_var
from shared.db import utcnow
from shared.events.base import EVENT_TYPES, EventData


class UnknownEventType(ValueError):
    pass


class Envelope(BaseModel):
    specversion: Literal["1.0"] = "1.0"
    id: UUID = Field(default_factory=uuid7)
    type: str
    source: str
    time: datetime = Field(default_factory=utcnow)
    subject: str
    actor: UUID | None = None
    client: str | None = None
    dataschema: str
    data: dict[str, Any]

    @classmethod
    def wrap(cls, payload: EventData, *, source: str, subject: Any, actor: UUID | None = None,
             client: str | None = None) -> "Envelope":
        """Envelope a payload; `client` defaults to the current request's X-Hearth-Client."""
        return cls(type=payload.type, source=source, subject=str(subject), actor=actor,
                   client=client if client is not None else client_var.get(),
                   dataschema=f"{payload.type}/{payload.VERSION}", data=payload.model_dump(mode="json"))

    def payload(self) -> EventData:
        """The typed payload; raises UnknownEventType for a type this code does not know."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)
