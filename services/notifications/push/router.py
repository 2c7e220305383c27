from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from services.notifications.db import SessionDep
from services.notifications.push import service
from services.notifications.push.schemas import DeviceCreate, DevicePublic
from shared.auth import CurrentUserDep

router = APIRouter(prefix="/api/v1/notifications/devices", tags=["push devices"])


@router.post("", response_model=DevicePublic, status_code=status.HTTP_201_CREATED)
async def register_device(data: DeviceCreate, request: Request, session: SessionDep, user: CurrentUserDep):
    """Register a device for push (ios, android, web); the same token registered again moves to the caller."""
    return await service.register(session, person_id=user.id, data=data, settings=request.app.state.settings)


@router.get("", response_model=list[DevicePublic])
async def list_devices(session: SessionDep, user: CurrentUserDep):
    """The caller's devices (tokens are not echoed)."""
    return await service.get_all(session, person_id=user.id)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_device(device_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Stop pushing to one of the caller's devices (sign-out on that device)."""
    await service.remove(session, device_id=device_id, person_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
