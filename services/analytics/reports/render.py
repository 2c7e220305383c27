"""Report rendering: CSV per table, a self-contained HTML page, PNG charts (matplotlib, off the event loop)."""

import base64
import csv
import io
from datetime import timedelta

from jinja2 import Environment, select_autoescape
from matplotlib.figure import Figure

from services.analytics.reports.service import TABLES


def to_csv(report: dict, table: str) -> str:
    rows = report["tables"][table]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def to_png(report: dict) -> bytes:
    """DAU/WAU/MAU over the period and the active rate by department (CPU-bound: call in a thread)."""
    fig = Figure(figsize=(11, 4.5), dpi=100)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[3, 2])
    activity = report["tables"]["activity"]
    days = [r["day"][5:] for r in activity]
    for key, label in (("dau", "DAU"), ("wau", "WAU"), ("mau", "MAU")):
        ax1.plot(days, [r[key] for r in activity], marker="o", markersize=3, label=label)
    ax1.set_title(f"Active members, {report['start']} – {report['end'] - timedelta(days=1)}")
    ax1.legend(loc="upper left")
    ax1.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax1.set_ylim(bottom=0)
    shown = [d for d in report["tables"]["departments"] if not d["suppressed"]]
    ax2.barh([d["department"] for d in shown], [(d["active_rate"] or 0) * 100 for d in shown], color="#4c78a8")
    if report["network_active_rate"] is not None:
        ax2.axvline(report["network_active_rate"] * 100, color="#e45756", linestyle="--", label="network")
        ax2.legend(loc="lower right")
    ax2.set_title("Active rate by department (%)")
    ax2.set_xlim(0, 100)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hearth {{ period }} report {{ start }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:0 0 2rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.up{color:#1a7f37}.down{color:#cf222e}</style></head><body>
<h1>Hearth adoption — {{ period }} report</h1>
<p>{{ start }} to {{ last }} (UTC), compared with the {{ days }} days before. Segments under 5 members are suppressed.</p>
<img alt="DAU, WAU and MAU; active rate by department" src="data:image/png;base64,{{ png }}" style="max-width:100%">
{% for name, rows in tables %}
<h2>{{ name.replace('_', ' ').capitalize() }} <small><a href="?format=csv&amp;table={{ name }}">CSV</a></small></h2>
{% if rows %}<table><tr>{% for k in rows[0] %}<th>{{ k.replace('_', ' ') }}</th>{% endfor %}</tr>
{% for r in rows %}<tr>{% for k, v in r.items() %}<td{% if k == 'change' and v %} class="{{ 'up' if v > 0 else 'down' }}"{% endif %}>{{ '' if v is none else v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% else %}<p>None.</p>{% endif %}
{% endfor %}</body></html>"""
_env = Environment(autoescape=select_autoescape(default=True))
_template = _env.from_string(TEMPLATE)


def to_html(report: dict, png: bytes) -> str:
    return _template.render(period=report["period"], start=report["start"],
                            last=report["end"] - timedelta(days=1), days=(report["end"] - report["start"]).days,
                            png=base64.b64encode(png).decode(), tables=[(t, report["tables"][t]) for t in TABLES])
