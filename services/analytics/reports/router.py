import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from services.analytics.db import SessionDep
from services.analytics.reports import render
from services.analytics.reports.service import TABLES, build_report
from shared.auth import require_roles, require_scope

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"],
                   dependencies=[require_roles("communications"), require_scope("analytics:read")])


@router.get("/reports/{period}", responses={200: {"content": {"text/html": {}, "text/csv": {}, "image/png": {}}}})
async def read_report(period: Literal["weekly", "monthly"], session: SessionDep,
                      format: Literal["html", "csv", "png"] = "html",
                      table: Annotated[Literal[TABLES], Query(description="Which table, for CSV")] = "headline"):
    """The last complete week (7 days) or month (28 days) against the one before: headline numbers,
    DAU/WAU/MAU, active rate by department, content types, top groups, barriers and champions."""
    report = await build_report(session, period)
    filename = f"hearth-{period}-{report['start']}"
    if format == "csv":
        return Response(render.to_csv(report, table), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}-{table}.csv"'})
    png = await asyncio.to_thread(render.to_png, report)  # matplotlib is CPU-bound: never on the event loop
    if format == "png":
        return Response(png, media_type="image/png",
                        headers={"Content-Disposition": f'inline; filename="{filename}.png"'})
    return HTMLResponse(await asyncio.to_thread(render.to_html, report, png))
