from shared.events.base import EVENT_TYPES, EventData
from shared.events.envelope import Envelope, UnknownEventType
from shared.events.raw import RawEnvelope
from shared.events.payloads import *  # noqa: F403  (the payload models are the package's API)
from shared.events.content import *  # noqa: F403
from shared.events.activity import *  # noqa: F403
from shared.events.messaging import *  # noqa: F403
from shared.events.notifications import *  # noqa: F403

__all__ = ["EVENT_TYPES", "Envelope", "EventData", "RawEnvelope", "UnknownEventType"] + [m.__name__ for m in EVENT_TYPES.values()] + [
    "PersonSnapshot", "GroupSnapshot"]
