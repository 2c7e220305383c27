from uuid import UUID

from fastapi import APIRouter, Response, status

from services.notifications.db import SessionDep
from services.notifications.preferences import service
from services.notifications.preferences.defaults import Channels, Kind
from services.notifications.preferences.schemas import (ChannelsIn, MutePublic, MuteTarget, PreferencesPublic,
                                                         SettingsUpdate)
from shared.auth import CurrentUserDep

router = APIRouter(prefix="/api/v1/notifications", tags=["notification preferences"])


async def _public(session, person_id: UUID) -> PreferencesPublic:
    settings = await service.get_settings(session, person_id)
    channels = await service.get_channels(session, person_id)
    return PreferencesPublic(kinds={k: ChannelsIn(**c._asdict()) for k, c in channels.items()},
                             time_zone=settings.time_zone, quiet_start=settings.quiet_start,
                             quiet_end=settings.quiet_end, digest=settings.digest)


@router.get("/preferences", response_model=PreferencesPublic)
async def read_preferences(session: SessionDep, user: CurrentUserDep):
    """Channels per kind (defaults filled in), time zone, quiet hours and digest frequency."""
    return await _public(session, user.id)


@router.patch("/preferences", response_model=PreferencesPublic)
async def update_preferences(data: SettingsUpdate, session: SessionDep, user: CurrentUserDep):
    """Change the time zone, quiet hours (both or neither; null clears) or digest frequency."""
    await service.update_settings(session, person_id=user.id, data=data)
    return await _public(session, user.id)


@router.put("/preferences/kinds/{kind}", response_model=PreferencesPublic)
async def set_kind_channels(kind: Kind, data: ChannelsIn, session: SessionDep, user: CurrentUserDep):
    """Which channels one kind of notification uses."""
    await service.set_channels(session, person_id=user.id, kind=kind, channels=Channels(**data.model_dump()))
    return await _public(session, user.id)


@router.get("/mutes", response_model=list[MutePublic])
async def list_mutes(session: SessionDep, user: CurrentUserDep):
    """What the caller muted."""
    return await service.get_mutes(session, user.id)


@router.put("/mutes/{target_type}/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
async def mute(target_type: MuteTarget, target_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Mute a group, a post's thread, a conversation or a person (must-read announcements still arrive)."""
    await service.mute(session, person_id=user.id, target_type=target_type, target_id=target_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/mutes/{target_type}/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unmute(target_type: MuteTarget, target_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Unmute."""
    await service.unmute(session, person_id=user.id, target_type=target_type, target_id=target_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
