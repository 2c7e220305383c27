from shared.events.envelope import Envelope, UnknownEventType
from shared.events.payloads import *  # noqa: F403  (the payload models are the package's API)
from shared.events.payloads import EVENT_TYPES, EventData

__all__ = ["EVENT_TYPES", "Envelope", "EventData", "UnknownEventType"] + [m.__name__ for m in EVENT_TYPES.values()] + [
    "PersonSnapshot", "GroupSnapshot"]
