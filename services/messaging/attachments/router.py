from functools import lru_cache
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, UploadFile, status

from services.messaging.attachments import service
from services.messaging.attachments.schemas import AttachmentPublic
from services.messaging.db import SessionDep
from shared.auth import CurrentUserDep
from shared.idempotency import IdempotentRoute
from shared.storage import Storage, storage_from_url
from shared.uploads import RequestFiles, request_files, upload_route

router = APIRouter(prefix="/api/v1/conversations", tags=["messages"], route_class=IdempotentRoute)


@lru_cache(maxsize=8)
def _storage(url: str) -> Storage:
    return storage_from_url(url)


def storage(request: Request) -> Storage:
    return _storage(request.app.state.settings.storage_url)


StorageDep = Annotated[Storage, Depends(storage)]
# What an upload stores is removed again if its request fails (named before the session: shared/uploads.py).
UploadFilesDep = Annotated[RequestFiles, request_files(storage)]


@router.post("/{conversation_id}/attachments", response_model=AttachmentPublic, status_code=status.HTTP_201_CREATED)
@upload_route  # the body may be as large as the attachment limit (shared/uploads.py)
async def upload(conversation_id: UUID, file: UploadFile, request: Request, files: UploadFilesDep, session: SessionDep,
                 user: CurrentUserDep):
    """Upload a file (multipart field `file`); send it with a message's `attachment_ids`."""
    limit = request.app.state.settings.attachment_max_bytes
    data = await file.read(limit + 1)
    attachment = await service.upload(session, storage=files, conversation_id=conversation_id, uploader_id=user.id,
                                      data=data, content_type=file.content_type or "", filename=file.filename,
                                      max_bytes=limit)
    return service.public(attachment)


@router.get("/{conversation_id}/attachments/{attachment_id}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}})
async def download(conversation_id: UUID, attachment_id: UUID, session: SessionDep, user: CurrentUserDep,
                   files: StorageDep):
    """The file, for the conversation's members."""
    attachment, data = await service.read(session, storage=files, conversation_id=conversation_id,
                                          attachment_id=attachment_id, person_id=user.id)
    disposition = "inline" if attachment.content_type.startswith("image/") else "attachment"
    return Response(data, media_type=attachment.content_type, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(attachment.filename, safe='')}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"})
