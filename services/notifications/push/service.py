"""Devices, and the push worker: due jobs -> provider -> sent / device removed / retried later / failed."""

import asyncio
from collections import defaultdict
from datetime import timedelta
from uuid import UUID

import httpx
import structlog
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid6 import uuid7

from services.notifications.config import Settings
from services.notifications.preferences.models import PersonSettings
from services.notifications.preferences.service import quiet_until
from services.notifications.push.models import Device, PushJob
from services.notifications.push.providers import Outcome, make_providers
from services.notifications.push.schemas import DeviceCreate
from services.notifications.webhooks.service import check_target
from shared.db import utcnow
from shared.errors import NotFound
from shared.events import NotificationsDelivered
from shared.outbox import add_event

log = structlog.get_logger("hearth.notifications.push")


class DeviceNotFound(NotFound):
    code, title = "device-not-found", "Device not found"


async def register(session: AsyncSession, *, person_id: UUID, data: DeviceCreate, settings: Settings) -> Device:
    """Register (or take over: a phone that changed hands) a device token for the caller."""
    if data.platform == "web":  # the subscription endpoint is a URL this server will POST to
        await check_target(data.token, allow_private=settings.webhook_allow_private_targets)
    values = dict(person_id=person_id, platform=data.platform, token=data.token,
                  p256dh=data.keys.p256dh if data.keys else None, auth=data.keys.auth if data.keys else None)
    stmt = insert(Device).values(id=uuid7(), created_at=utcnow(), **values)
    stmt = stmt.on_conflict_do_update(index_elements=[Device.platform, Device.token], set_=values)
    device_id = await session.scalar(stmt.returning(Device.id))
    return await session.get(Device, device_id, populate_existing=True)


async def get_all(session: AsyncSession, *, person_id: UUID) -> list[Device]:
    return list(await session.scalars(select(Device).where(Device.person_id == person_id).order_by(Device.created_at)))


async def remove(session: AsyncSession, *, device_id: UUID, person_id: UUID) -> None:
    device = await session.get(Device, device_id)
    if device is None or device.person_id != person_id:
        raise DeviceNotFound()
    await session.delete(device)


async def claim_due(session: AsyncSession, *, limit: int, lease: timedelta) -> list[tuple[PushJob, Device]]:
    rows = (await session.execute(
        select(PushJob, Device).join(Device, Device.id == PushJob.device_id)
        .where(PushJob.status == "pending", PushJob.next_attempt_at <= utcnow())
        .order_by(PushJob.next_attempt_at).limit(limit).with_for_update(of=PushJob, skip_locked=True))).all()
    for job, _ in rows:
        job.next_attempt_at = utcnow() + lease
    # The worker owns this session (no request): the lease must be committed before the provider calls.
    await session.commit()
    return [(j, d) for j, d in rows]


async def _quiet(session: AsyncSession, person_ids: set[UUID]) -> dict[UUID, object]:
    """Who is in quiet hours now, and until when."""
    rows = await session.scalars(select(PersonSettings).where(PersonSettings.person_id.in_(person_ids),
                                                              PersonSettings.quiet_start.is_not(None)))
    now = utcnow()
    return {r.person_id: until for r in rows if (until := quiet_until(r, now)) is not None}


async def send_due(sessionmaker: async_sessionmaker, providers: dict, settings: Settings) -> int:
    """One pass: claim due jobs, hold back those in quiet hours, send the rest, record outcomes."""
    async with sessionmaker() as session:
        claimed = await claim_due(session, limit=settings.worker_batch,
                                  lease=timedelta(seconds=settings.push_timeout_seconds * 3))
        if not claimed:
            return 0
        quiet = await _quiet(session, {job.person_id for job, _ in claimed})
    sendable = [(j, d) for j, d in claimed if j.person_id not in quiet and d.platform in providers]
    outcomes = await asyncio.gather(*(providers[d.platform].send(d, {"title": j.title, "body": j.body, "data": j.data})
                                      for j, d in sendable))
    results = dict(zip((j.id for j, _ in sendable), outcomes))
    async with sessionmaker() as session:
        sent: dict[str, list[UUID]] = defaultdict(list)
        for job, device in claimed:
            fresh = await session.get(PushJob, job.id, with_for_update=True)
            if fresh is None:
                continue  # the device went away meanwhile (cascade)
            if job.id not in results:  # quiet hours or no provider configured: wait, without counting an attempt
                fresh.next_attempt_at = quiet.get(job.person_id) or utcnow() + timedelta(minutes=5)
                continue
            outcome = results[job.id]
            if outcome is Outcome.SENT:
                fresh.status, fresh.attempts = "sent", fresh.attempts + 1
                sent[job.data.get("kind", "")].append(job.person_id)
            elif outcome is Outcome.GONE:
                await session.execute(delete(Device).where(Device.id == device.id))  # its jobs go with it
                log.info("push token removed: the provider says it is gone", platform=device.platform)
            else:
                fresh.attempts += 1
                fresh.last_error = outcome.value
                if outcome is Outcome.FAILED or fresh.attempts >= settings.push_max_attempts:
                    fresh.status = "failed"
                else:
                    fresh.next_attempt_at = utcnow() + timedelta(
                        seconds=settings.push_retry_base_seconds * 2 ** (fresh.attempts - 1))
        for kind, people in sent.items():
            await add_event(session, NotificationsDelivered(kind=kind, channel="push", recipients=people),
                            subject=people[0])
        await session.commit()  # the worker's own session: outcomes and their delivery events together
    return len(claimed)


async def run_worker(sessionmaker: async_sessionmaker, settings: Settings, stop: asyncio.Event) -> None:
    """Supervised; claims with SKIP LOCKED and a lease, so replicas share the work and a crash loses nothing."""
    async with httpx.AsyncClient() as client:
        providers = make_providers(settings, client)
        while not stop.is_set():
            if await send_due(sessionmaker, providers, settings):
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.worker_poll_seconds)
            except TimeoutError:
                pass
