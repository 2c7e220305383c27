"""Failed-login throttling, counted in the database so every replica sees the same failures.

An account (the email as typed, existing or not) may fail `login_max_failures` times in a sliding
window of `login_failure_window_minutes`; after that every attempt, even with the right password, gets
429 until the oldest counted failure leaves the window. A success does not erase counted failures:
otherwise an attacker who also knows one valid password could reset another account's counter.
Refused (429) attempts are not counted, so the lock-out never outlasts the window.

Each attempt is counted before its password is verified (see begin_attempt), so a failure to record
it refuses the attempt instead of letting an uncounted guess through.
"""

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.auth.models import LoginFailure
from services.posts.config import Settings
from shared.db import utcnow
from shared.errors import TooManyRequests


class LoginThrottled(TooManyRequests):
    code, title = "login-throttled", "Too many failed sign-ins"


async def _nth_newest_failure(session: AsyncSession, column, value: str, n: int, since: datetime) -> datetime | None:
    """When the n-th newest failure in the window happened; None while fewer than n are in it."""
    return await session.scalar(select(LoginFailure.failed_at).where(column == value, LoginFailure.failed_at > since)
                                .order_by(LoginFailure.failed_at.desc()).offset(n - 1).limit(1))


async def check(session: AsyncSession, *, settings: Settings, email: str, ip: str | None) -> None:
    """Raise LoginThrottled when the account or the address is over its limit."""
    # Serialize sign-ins to one account (across replicas) so parallel guesses cannot all pass the count.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"hearth-login:{email}"})
    window = timedelta(minutes=settings.login_failure_window_minutes)
    now = utcnow()
    limits = [(LoginFailure.email, email, settings.login_max_failures)]
    if ip:
        limits.append((LoginFailure.ip, ip, settings.login_ip_max_failures))
    # The caller is free again once the failure that completes its limit leaves the window.
    frees_at = [at + window for column, value, limit in limits
                if (at := await _nth_newest_failure(session, column, value, limit, now - window)) is not None]
    if frees_at:
        retry_after = max(1, math.ceil((max(frees_at) - now).total_seconds()))
        raise LoginThrottled("Too many failed sign-ins; try again later.", retry_after=retry_after)


async def begin_attempt(session: AsyncSession, *, settings: Settings, email: str, ip: str | None) -> int:
    """Check the limits and count this attempt as a failure before the password is looked at.

    The caller commits this in a session of its own, before verifying the password. Counting first means
    an attempt that cannot be recorded is never verified (it fails closed), and attempts still hashing are
    already counted by parallel ones. A success forgives its own row only."""
    await check(session, settings=settings, email=email, ip=ip)
    window = timedelta(minutes=settings.login_failure_window_minutes)
    # The account's failures that left the window go at the same time (no purge job).
    await session.execute(delete(LoginFailure).where(LoginFailure.email == email,
                                                     LoginFailure.failed_at <= utcnow() - window))
    failure = LoginFailure(email=email, ip=ip)
    session.add(failure)
    await session.flush()
    return failure.id


async def forgive(session: AsyncSession, *, failure_id: int) -> None:
    """The attempt succeeded: it was not a failure after all (other counted failures stay)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.id == failure_id))
