from datetime import datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.preferences.defaults import DEFAULTS, Channels
from services.notifications.preferences.models import Mute, NotificationPreference, PersonSettings
from services.notifications.preferences.schemas import SettingsUpdate


async def get_settings(session: AsyncSession, person_id: UUID) -> PersonSettings:
    """The person's settings, or the defaults (not stored until changed)."""
    return await session.get(PersonSettings, person_id) or PersonSettings(person_id=person_id)


async def get_channels(session: AsyncSession, person_id: UUID) -> dict[str, Channels]:
    rows = await session.scalars(select(NotificationPreference).where(NotificationPreference.person_id == person_id))
    overrides = {r.kind: Channels(r.in_app, r.push, r.email) for r in rows}
    return {kind: overrides.get(kind, default) for kind, default in DEFAULTS.items()}


async def set_channels(session: AsyncSession, *, person_id: UUID, kind: str, channels: Channels) -> None:
    values = dict(person_id=person_id, kind=kind, **channels._asdict())
    stmt = insert(NotificationPreference).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[NotificationPreference.person_id, NotificationPreference.kind], set_=channels._asdict()))


async def update_settings(session: AsyncSession, *, person_id: UUID, data: SettingsUpdate) -> PersonSettings:
    values = data.model_dump(exclude_unset=True)
    stmt = insert(PersonSettings).values(person_id=person_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[PersonSettings.person_id], set_=values)
                          if values else stmt.on_conflict_do_nothing())
    return await session.get(PersonSettings, person_id, populate_existing=True)


async def get_mutes(session: AsyncSession, person_id: UUID) -> list[Mute]:
    return list(await session.scalars(select(Mute).where(Mute.person_id == person_id)
                                      .order_by(Mute.target_type, Mute.target_id)))


async def mute(session: AsyncSession, *, person_id: UUID, target_type: str, target_id: UUID) -> None:
    await session.execute(insert(Mute).values(person_id=person_id, target_type=target_type, target_id=target_id)
                          .on_conflict_do_nothing())


async def unmute(session: AsyncSession, *, person_id: UUID, target_type: str, target_id: UUID) -> None:
    await session.execute(delete(Mute).where(Mute.person_id == person_id, Mute.target_type == target_type,
                                             Mute.target_id == target_id))


def quiet_until(settings: PersonSettings, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if `now` falls inside them (in their time zone); else None."""
    if settings.quiet_start is None or settings.quiet_end is None or settings.quiet_start == settings.quiet_end:
        return None
    local = now.astimezone(ZoneInfo(settings.time_zone or "UTC"))
    start, end, clock = settings.quiet_start, settings.quiet_end, local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)  # wraps midnight
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end if isinstance(end, time) else time(), tzinfo=local.tzinfo)
