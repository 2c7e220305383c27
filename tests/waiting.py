"""Waiting on a condition with a deadline, for every test that waits on something asynchronous.

A test never sleeps a fixed time hoping the effect has happened: it polls the condition, and the
deadline only turns an effect that never comes into a failure (it is not an assertion about speed).
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


async def eventually(fetch: Callable[[], Any], predicate: Callable[[Any], bool] = bool, *, timeout: float = 30.0,
                     message: str, interval: float = 0.05) -> Any:
    """Poll `fetch` (sync or async) until `predicate(result)` holds and return that result; fail at the deadline."""
    deadline = time.monotonic() + timeout
    result = None
    while True:
        result = fetch()
        if inspect.isawaitable(result):
            result = await result
        if predicate(result):
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}; last result: {result!r}")
        await asyncio.sleep(interval)


async def until(condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 30.0, message: str,
                interval: float = 0.05) -> None:
    """Wait until `condition()` is true (sync or async); fail at the deadline."""
    await eventually(condition, timeout=timeout, message=message, interval=interval)
