from shared.events.envelope import Envelope, UnknownEventType
from shared.events.payloads import EVENT_TYPES, EventData, PersonCreated, PersonSnapshot, PersonUpdated, PostCreated

__all__ = ["EVENT_TYPES", "Envelope", "EventData", "PersonCreated", "PersonSnapshot", "PersonUpdated", "PostCreated",
           "UnknownEventType"]
