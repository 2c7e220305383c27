"""The envelope decoded without its payload: for consumers that read only the envelope (analytics logs
every event as it came), where building the payload's Python objects is most of the cost of a record.

`RawEnvelope.from_bytes` takes the same JSON as `Envelope.from_bytes` and gives the same field values,
with `data` left as the payload's JSON bytes. It is strict where the pydantic model is lenient (a
missing id or time, a date without a time, a number for a string): it refuses such a record, and the
consumer then takes the careful path for it (`Envelope.from_bytes`), so nothing `Envelope` accepts
is lost and nothing it refuses gets through.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec


class RawEnvelope(msgspec.Struct, frozen=True, gc=False):
    """The envelope's attributes as `Envelope` has them; `data` is the payload object's JSON text."""

    id: UUID
    type: str
    source: str
    time: datetime
    subject: str
    dataschema: str
    data: msgspec.Raw
    specversion: Literal["1.0"] = "1.0"
    actor: UUID | None = None
    client: str | None = None

    @classmethod
    def from_bytes(cls, raw: bytes) -> "RawEnvelope":
        """Raises ValueError (msgspec's errors are ValueErrors) for anything `Envelope` might read differently."""
        envelope = _DECODER.decode(raw)
        if bytes(envelope.data)[:1] != b"{":  # `Envelope.data` is a JSON object
            raise msgspec.ValidationError("Expected `object` at `$.data`")
        return envelope

    @property
    def data_json(self) -> bytes:
        return bytes(self.data)


_DECODER = msgspec.json.Decoder(RawEnvelope)
