"""The AsyncAPI 3 catalogue of every event, generated from the payload models (`make events-doc`)."""

import json

from pydantic.json_schema import models_json_schema

from shared.config import HearthSettings
from shared.events.envelope import Envelope
from shared.events import EVENT_TYPES

TOPIC_SETTING = {"people": "topic_people", "social": "topic_social", "activity": "topic_activity",
                 "messaging": "topic_messaging", "notifications": "topic_notifications"}


def build_catalog() -> dict:
    settings = HearthSettings.model_construct()  # default topic names, whatever this shell exports
    models = [(Envelope, "validation")] + [(m, "validation") for m in EVENT_TYPES.values()]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    channels: dict[str, dict] = {}
    messages: dict[str, dict] = {}
    for event_type, model in sorted(EVENT_TYPES.items()):
        topic = getattr(settings, TOPIC_SETTING[model.TOPIC])
        channel = channels.setdefault(topic, {"address": topic, "messages": {}})
        channel["messages"][event_type] = {"$ref": f"#/components/messages/{event_type}"}
        messages[event_type] = {
            "name": event_type, "title": model.__name__, "summary": (model.__doc__ or "").strip().split("\n")[0],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/Envelope"},
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "x-dataschema": f"{event_type}/{model.VERSION}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Hearth events", "version": "1",
                 "description": "Every event travels in the Envelope (CloudEvents attribute names); its `data` is "
                                "the message payload. Key = aggregate id (the envelope subject)."},
        "channels": channels,
        "operations": {f"receive-{t}": {"action": "receive", "channel": {"$ref": f"#/channels/{t}"}} for t in channels},
        "components": {"messages": messages, "schemas": schemas["$defs"]},
    }


def render() -> str:
    return json.dumps(build_catalog(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
