"""A small company with known answers: the events, and the expected numbers computed here from the
definitions in DESIGN §6 with plain sets (never with the service's rollup code)."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from uuid import UUID

from uuid6 import uuid7

from tests.analytics import factories as f
from tests.analytics.factories import at

START, END = date(2026, 11, 2), date(2026, 11, 9)  # W = [START, END), 7 UTC days
ACTIVITY = {"view", "post", "comment", "reaction", "ack", "search"}
CONTRIBUTION = {"post", "comment", "reaction"}


@dataclass
class Scenario:
    people: dict[str, UUID] = field(default_factory=dict)
    info: dict[UUID, dict] = field(default_factory=dict)
    events: list = field(default_factory=list)  # envelopes, in delivery order
    facts: list = field(default_factory=list)  # (person, time, kind, post)
    posts: dict[UUID, dict] = field(default_factory=dict)

    def person(self, name, *, department, time="2026-10-01T00:00", deactivated=None, official=False):
        pid = uuid7()
        self.people[name] = pid
        self.info[pid] = {"department": department, "provisioned": at(time), "deactivated": deactivated and at(deactivated),
                          "official": official}
        self.events.append(f.person(pid, time=at(time), department=department, official=official, name=name))
        if deactivated:
            self.events.append(f.person(pid, time=at(deactivated), kind="deactivated", department=department,
                                        active=False, name=name))
        return pid

    def act(self, kind, name, post=None, time="", envelope=None, **extra):
        pid = self.people[name]
        self.facts.append((pid, at(time), kind, post))
        self.events.append(envelope)

    def post(self, name, time, kind="update"):
        post_id = uuid7()
        self.posts[post_id] = {"author": self.people[name], "time": at(time), "kind": kind}
        self.act("post", name, post_id, time, f.post(self.people[name], post_id, time=at(time), kind=kind))
        return post_id

    def view(self, name, post_id, time):
        self.act("view", name, post_id, time, f.view(self.people[name], post_id, time=at(time)))

    def comment(self, name, post_id, time):
        self.act("comment", name, post_id, time, f.comment(self.people[name], post_id, time=at(time)))

    def react(self, name, post_id, time):
        self.act("reaction", name, post_id, time, f.reaction(self.people[name], post_id, time=at(time)))

    # ---- the expected numbers -------------------------------------------------------------------

    def members(self, end: date) -> set[UUID]:
        hi = at(end.isoformat() + "T00:00")
        return {p for p, i in self.info.items()
                if i["provisioned"] < hi and (i["deactivated"] is None or i["deactivated"] >= hi)}

    def active_days(self, person: UUID, lo: date, hi: date, kinds=ACTIVITY) -> set[date]:
        return {t.date() for p, t, k, _ in self.facts if p == person and k in kinds and lo <= t.date() < hi}

    def expected_overview(self, start=START, end=END) -> dict:
        members = self.members(end)
        active = {p for p in members if self.active_days(p, start, end)}
        contributors = {p for p in members if self.active_days(p, start, end, CONTRIBUTION)}
        engaged = {p for p in members if len(self.active_days(p, end - timedelta(days=28), end)) >= 10}
        series = []
        for i in range((end - start).days):
            d = start + timedelta(days=i)
            row = {"day": d.isoformat()}
            for name, span in (("dau", 1), ("wau", 7), ("mau", 28)):
                row[name] = len({p for p in members if self.active_days(p, d - timedelta(days=span - 1),
                                                                         d + timedelta(days=1))})
            series.append(row)
        in_w = {pid: p for pid, p in self.posts.items() if start <= p["time"].date() < end}
        reach = {pid: len({v for v, t, k, post in self.facts if k == "view" and post == pid and v in members
                           and v != p["author"]}) for pid, p in in_w.items()}
        first = {}
        for pid, p in in_w.items():
            times = [t for who, t, k, post in self.facts
                     if post == pid and k in ("comment", "reaction") and who != p["author"]]
            if times and min(times) - p["time"] <= timedelta(hours=24):
                first[pid] = (min(times) - p["time"]).total_seconds()
        organic = self.organic(start, end)
        previous = self.organic(start - (end - start), start)
        mau_end = series[-1]["mau"]
        return {"members": len(members), "active_members": len(active),
                "active_rate": round(len(active) / len(members), 4), "contributors": len(contributors),
                "contributor_rate": round(len(contributors) / len(members), 4), "engaged_members": len(engaged),
                "series": series, "organic_content": organic, "organic_content_previous": previous,
                "organic_content_growth": round((organic - previous) / previous, 4) if previous else None,
                "average_social_reach": round(sum(reach.values()) / len(in_w), 2) if in_w else None,
                "response_rate": round(len(first) / len(in_w), 4) if in_w else None,
                "median_time_to_first_response_seconds": sorted(first.values())[len(first) // 2] if len(first) % 2
                else (sum(sorted(first.values())[len(first) // 2 - 1:len(first) // 2 + 1]) / 2 if first else None),
                "stickiness": round(sum(r["dau"] for r in series) / len(series) / mau_end, 4) if mau_end else None}

    def organic(self, start: date, end: date) -> int:
        officials = {p for p, i in self.info.items() if i["official"]}
        n = 0
        for who, t, k, post in self.facts:
            if not start <= t.date() < end or who in officials:
                continue
            if k == "comment" or (k == "post" and self.posts[post]["kind"] != "announcement"):
                n += 1
        return n


def company() -> Scenario:
    """Eng has exactly 5 members (a sixth was deactivated in W, a seventh joins after W), Ops 4, Comms 1 (official)."""
    s = Scenario()
    for name in ("e1", "e2", "e3", "e4", "e5"):
        s.person(name, department="Eng")
    s.person("d1", department="Eng", deactivated="2026-11-05T10:00")
    s.person("late", department="Eng", time="2026-11-10T09:00")
    for name in ("o1", "o2", "o3", "o4"):
        s.person(name, department="Ops")
    s.person("news", department="Comms", official=True)

    old = s.post("e3", "2026-10-14T09:00")
    for day in range(15, 24):  # with their days in W: e1 active on 10 distinct days of the last 28, e2 on 9
        s.view("e1", old, f"2026-10-{day}T12:00")
        if day < 23:
            s.view("e2", old, f"2026-10-{day}T12:00")
    p0 = s.post("e5", "2026-11-01T23:59:59.999")  # previous window, its last instant
    p1 = s.post("e1", "2026-11-02T00:00")  # W's first instant
    s.view("e1", p1, "2026-11-02T01:00")  # the author's own view is not reach
    s.react("o1", p1, "2026-11-02T05:00")  # first response after 5 h
    s.view("d1", p1, "2026-11-03T08:00")  # deactivated before the end of W: not a member, not reach
    s.post("news", "2026-11-03T09:00", kind="announcement")
    s.post("news", "2026-11-03T10:00")  # an official account's update is not organic
    s.comment("o2", p1, "2026-11-04T09:00")
    p3 = s.post("e4", "2026-11-05T09:00", kind="question")
    s.comment("e4", p3, "2026-11-05T09:05")  # own comment: organic content, but not a response
    s.view("e5", p3, "2026-11-08T07:00")
    s.view("e2", p1, "2026-11-08T23:59:59.999")  # W's last instant
    s.view("e3", p1, "2026-11-09T00:00")  # after W: e3 is not active in W, but it is reach of p1
    s.view("e5", p3, "2026-11-06T12:00")  # late and out of order: delivered after the 11-08 view
    s.events.append(f.event("session.started", actor=s.people["o3"], time=at("2026-11-04T08:00")))  # sign-in only
    s.events.append(f.event("notification.delivered", actor=s.people["o3"], time=at("2026-11-04T08:00")))
    assert p0
    return s
