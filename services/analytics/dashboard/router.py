"""The live dashboard: a static page, the chart library it needs, and the event stream feeding it."""

import asyncio
import json
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, StreamingResponse

from services.analytics.metrics import service as metrics
from services.analytics.metrics.window import WindowDep
from shared.auth import require_roles, require_scope
from shared.errors import NotFound

STATIC = Path(__file__).parent / "static"
FILES = {"chart.umd.min.js": "text/javascript", "dashboard.js": "text/javascript"}
TICK_SECONDS = 2.0  # the page shows activity within 5 s: the consumer applies events in milliseconds

pages = APIRouter(tags=["analytics"], include_in_schema=False)
live = APIRouter(prefix="/api/v1/analytics", tags=["analytics"],
                 dependencies=[require_roles("communications"), require_scope("analytics:read")])


@pages.get("/analytics/dashboard")
async def dashboard_page():
    """The page itself holds no data: it reads the live stream with the viewer's token."""
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@pages.get("/analytics/static/{name}")
async def static_file(name: str):
    if name not in FILES:
        raise NotFound("No such file.")
    return FileResponse(STATIC / name, media_type=FILES[name], headers={"Cache-Control": "max-age=3600"})


async def snapshot(sessionmaker, window, by: str) -> str:
    async with sessionmaker() as session:
        data = {"overview": await metrics.overview(session, window),
                "segments": await metrics.segments(session, window, by)}
    return json.dumps(jsonable_encoder(data), separators=(",", ":"))


@live.get("/live", responses={200: {"content": {"text/event-stream": {}}}})
async def live_stream(request: Request, window: WindowDep,
                      by: Literal["department", "location", "manager", "leader", "tenure", "client"] = "department"):
    """Server-sent events: the overview and a segment cut now, then again whenever they change (checked every 2 s)."""
    sessionmaker = request.app.state.sessionmaker

    async def frames():
        previous, idle = None, 0
        while not await request.is_disconnected():
            current = await snapshot(sessionmaker, window, by)
            if current != previous:
                yield f"event: metrics\ndata: {current}\n\n"
                previous, idle = current, 0
            else:
                idle += 1
                if idle % 10 == 0:
                    yield ": keep-alive\n\n"  # proxies close silent connections
            await asyncio.sleep(TICK_SECONDS)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
