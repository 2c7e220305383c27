"""The base of every event payload and the registry of event types built from its subclasses."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

# type -> payload model; filled as payload classes are defined (every module of shared/events is
# imported by the package, so the registry is complete once `shared.events` is imported).
EVENT_TYPES: dict[str, type["EventData"]] = {}


class EventData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    TOPIC: ClassVar[str]  # logical topic: people | social | activity | messaging | notifications
    VERSION: ClassVar[int] = 1
    type: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        event_type = cls.model_fields["type"].default
        if isinstance(event_type, str):
            if event_type in EVENT_TYPES:
                raise TypeError(f"event type {event_type} is defined twice")
            EVENT_TYPES[event_type] = cls
