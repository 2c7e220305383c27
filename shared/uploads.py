"""What every upload goes through before it reaches storage: type, size, name and, for images, a
real decode in a worker thread (Pillow is CPU work) that measures them and refuses decompression bombs."""

import asyncio
import io
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import structlog
from fastapi import Depends
from PIL import Image, UnidentifiedImageError

from shared.errors import InvalidInput
from shared.storage import Storage

log = structlog.get_logger("hearth.uploads")

IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
OTHER_TYPES = {"application/pdf", "text/plain"}
MAX_PIXELS = 50_000_000  # refuse decompression bombs well before Pillow's own limit
# What a multipart body adds around one file (boundaries, part headers, a long file name): an upload
# route's body may be this much larger than `attachment_max_bytes`.
MULTIPART_ENVELOPE_BYTES = 16_384


def upload_route(endpoint):
    """Mark a route whose body is a file: its body may be as large as `attachment_max_bytes` (plus the
    multipart envelope) instead of the app's small `max_body_bytes` (shared/app.py reads the mark)."""
    endpoint.hearth_upload = True
    return endpoint


class UnsupportedAttachment(InvalidInput):
    status, code, title = 415, "unsupported-attachment", "Unsupported attachment type"


class AttachmentTooLarge(InvalidInput):
    status, code, title = 413, "attachment-too-large", "Attachment too large"


class EmptyAttachment(InvalidInput):
    code, title = "empty-attachment", "Empty attachment"


@dataclass(frozen=True)
class CheckedUpload:
    content_type: str
    filename: str
    size: int
    width: int | None = None
    height: int | None = None


async def check_upload(data: bytes, *, content_type: str, filename: str | None, max_bytes: int,
                       filename_max: int) -> CheckedUpload:
    """The upload's facts, or a 4xx that says what is wrong with it."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES and content_type not in OTHER_TYPES:
        raise UnsupportedAttachment(f"Accepted types: {', '.join(sorted([*IMAGE_TYPES, *OTHER_TYPES]))}.")
    if not data:
        raise EmptyAttachment()
    if len(data) > max_bytes:
        raise AttachmentTooLarge(f"Attachments are at most {max_bytes} bytes.", max_bytes=max_bytes)
    width = height = None
    if content_type in IMAGE_TYPES:
        width, height = await asyncio.to_thread(_measure, data, IMAGE_TYPES[content_type])
    return CheckedUpload(content_type=content_type, filename=_filename(filename, filename_max), size=len(data),
                         width=width, height=height)


def _measure(data: bytes, expected: str) -> tuple[int, int]:
    """Width and height of an image whose bytes really are `expected` (a Pillow format name)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format != expected:
                    raise UnsupportedAttachment(f"The file is {image.format or 'not an image'}, not {expected}.")
                if image.width * image.height > MAX_PIXELS:
                    raise UnsupportedAttachment("The image has too many pixels.")
                image.verify()
                return image.width, image.height
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise UnsupportedAttachment("The file is not a readable image.")


def _filename(name: str | None, limit: int) -> str:
    """The last path part, printable characters only: a name to show, never a path to trust."""
    cleaned = "".join(c for c in (name or "file").replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
    return (cleaned or "file")[:limit]


class RequestFiles:
    """The storage as a request sees it: what the request puts is removed again if the request fails.

    A file is written before the row that names it commits (the request's unit of work commits when the
    route returns), so a route that raises, or a commit that fails, would leave a file no row refers to."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.stored: list[str] = []

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self.stored.append(key)  # before writing: a put that fails halfway may still have left something
        await self.storage.put(key, data, content_type=content_type)

    async def get(self, key: str) -> bytes:
        return await self.storage.get(key)

    async def delete(self, key: str) -> None:
        await self.storage.delete(key)

    async def discard(self) -> None:
        for key in self.stored:
            try:
                await self.storage.delete(key)
            except Exception as exc:  # the request's own error is the one to report
                log.warning("could not remove the file of a failed upload", key=key, error=repr(exc))


def request_files(storage: Callable[..., Storage]):
    """A dependency giving a route `RequestFiles` over `storage` (a dependency itself).

    Name it before the route's session: dependencies close in reverse order, so this one sees the
    session's commit fail as well as the route raise."""

    async def dependency(files: Storage = Depends(storage)) -> AsyncIterator[RequestFiles]:
        request = RequestFiles(files)
        try:
            yield request
        except BaseException:
            await asyncio.shield(request.discard())  # a cancelled request (client gone) cleans up too
            raise

    return Depends(dependency, scope="function")
