"""A report for a meeting: headline numbers against the previous period and the tables behind them."""

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.metrics import service as metrics
from services.analytics.metrics.window import Window
from shared.db import utcnow

PERIOD_DAYS = {"weekly": 7, "monthly": 28}
HEADLINE = (("members", "Members"), ("active_members", "Active members"), ("active_rate", "Active rate"),
            ("engaged_members", "Engaged members"), ("contributors", "Contributors"),
            ("contributor_rate", "Contributor rate"), ("stickiness", "Stickiness (DAU/MAU)"),
            ("organic_content", "Organic content"), ("average_social_reach", "Average social reach"),
            ("response_rate", "Response rate"),
            ("median_time_to_first_response_seconds", "Median time to first response (s)"))
TABLES = ("headline", "activity", "departments", "content_types", "top_groups", "barriers", "champions")


def report_window(period: str, today: date | None = None) -> Window:
    """The last complete period: `weekly` the 7 UTC days before today, `monthly` the 28 before."""
    end = today or utcnow().date()
    return Window(end - timedelta(days=PERIOD_DAYS[period]), end)


def change(now, before) -> dict:
    if now is None or before is None:
        return {"change": None, "change_pct": None}
    return {"change": round(now - before, 4), "change_pct": round((now - before) / before * 100, 1) if before else None}


async def build_report(session: AsyncSession, period: str, today: date | None = None) -> dict:
    window = report_window(period, today)
    current = await metrics.overview(session, window)
    previous = await metrics.overview(session, window.previous())
    departments = await metrics.segments(session, window, "department")
    tables = {
        "headline": [{"metric": label, "value": current[key], "previous": previous[key],
                      **change(current[key], previous[key])} for key, label in HEADLINE],
        "activity": [{"day": r["day"].isoformat(), "dau": r["dau"], "wau": r["wau"], "mau": r["mau"]}
                     for r in current["series"]],
        "departments": [{"department": s["segment"], "members": s.get("members"), "active_members": s.get("active_members"),
                         "active_rate": s.get("active_rate"), "suppressed": s["suppressed"]}
                        for s in departments["items"]],
        "content_types": (await metrics.content_types(session, window))["items"],
        "top_groups": [{k: g[k] for k in ("name", "active_people", "posts", "contributions", "activity")}
                       for g in (await metrics.top_groups(session, window, 10))["items"]],
        "barriers": [{"department": s["segment"], "members": s["members"], "active_rate": s["active_rate"]}
                     for s in (await metrics.barriers(session, window, "department"))["items"]],
        "champions": [{"department": s["segment"], "name": c["display_name"],
                       "engagement_received": c["engagement_received"]}
                      for s in (await metrics.champions(session, window, "department", 3))["items"]
                      for c in s["champions"]],
    }
    return {"period": period, "start": window.start, "end": window.end, "network_active_rate": current["active_rate"],
            "tables": tables}
