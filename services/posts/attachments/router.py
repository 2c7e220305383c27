from functools import lru_cache
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, UploadFile, status

from services.posts.attachments import service
from services.posts.content.schemas import AttachmentSummary
from services.posts.db import SessionDep
from shared.auth import CurrentUser, require_scope
from shared.idempotency import IdempotentRoute
from shared.storage import Storage, storage_from_url
from shared.uploads import RequestFiles, request_files, upload_route

router = APIRouter(prefix="/api/v1/posts/attachments", tags=["posts"], route_class=IdempotentRoute)

Reader = Annotated[CurrentUser, require_scope("posts:read")]
Writer = Annotated[CurrentUser, require_scope("posts:write")]


@lru_cache(maxsize=8)
def _storage(url: str) -> Storage:
    return storage_from_url(url)


def storage(request: Request) -> Storage:
    return _storage(request.app.state.settings.storage_url)


StorageDep = Annotated[Storage, Depends(storage)]
# What an upload stores is removed again if its request fails (a route error or a failed commit).
UploadFilesDep = Annotated[RequestFiles, request_files(storage)]


@router.post("", response_model=AttachmentSummary, status_code=status.HTTP_201_CREATED,
             responses={413: {"description": "The file is larger than `attachment_max_bytes` (attachment-too-large), "
                                             "or the whole body larger than that and its multipart envelope "
                                             "(payload-too-large)."}})
@upload_route  # the body may be as large as the attachment limit, not the app's small body limit
async def upload(file: UploadFile, request: Request, files: UploadFilesDep, session: SessionDep, user: Writer):
    """Upload a file (multipart field `file`) to attach to a post with `attachment_ids` or `cover_attachment_id`."""
    limit = request.app.state.settings.attachment_max_bytes
    data = await file.read(limit + 1)
    return await service.upload(session, storage=files, user=user, data=data, filename=file.filename,
                                content_type=file.content_type or "", max_bytes=limit)


@router.get("/{attachment_id}/meta", response_model=AttachmentSummary)
async def describe(attachment_id: UUID, session: SessionDep, user: Reader):
    """An attachment's type, size and image dimensions."""
    return await service.get_readable(session, attachment_id=attachment_id, user=user)


@router.get("/{attachment_id}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}})
async def download(attachment_id: UUID, session: SessionDep, user: Reader, files: StorageDep):
    """The file, for those who may read the post it is attached to (and its uploader)."""
    attachment, data = await service.read(session, storage=files, attachment_id=attachment_id, user=user)
    disposition = "inline" if attachment.content_type.startswith("image/") else "attachment"
    return Response(data, media_type=attachment.content_type, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{_quote(attachment.filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"})


def _quote(name: str) -> str:
    from urllib.parse import quote
    return quote(name, safe="")
