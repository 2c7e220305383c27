from services.posts.people.models import Person
from shared.testing import outbox_events


async def test_person_edits_own_profile_and_event_says_what_changed(client, session, make_person, auth):
    ana = await make_person()
    response = await client.patch("/api/v1/people/me", headers=auth(ana), json={
        "title": "Staff Engineer", "skills": ["Python", "Kafka", "python "], "time_zone": "Europe/Lisbon",
        "avatar_url": "https://cdn.corp.local/a.png"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Staff Engineer" and body["skills"] == ["Python", "Kafka", "python"]
    [event] = await outbox_events(session, type="hearth.person.updated")
    assert event.payload().changed == ["avatar_url", "skills", "time_zone", "title"]


async def test_members_cannot_edit_admin_fields_on_themselves(client, session, make_person, auth):
    ana = await make_person()
    for field, value in {"department": "Finance", "roles": ["admin"], "leader": True, "email": "x@corp.local"}.items():
        response = await client.patch("/api/v1/people/me", headers=auth(ana), json={field: value})
        assert response.status_code == 422, field
    person = await session.get(Person, ana.id)
    await session.refresh(person)
    assert person.roles == ["member"] and person.department is None
    assert await outbox_events(session, type="hearth.person.updated") == []


async def test_admin_edits_anyone_and_members_cannot(client, session, make_person, auth):
    admin, ana, mallory = await make_person(roles=["admin"]), await make_person(), await make_person()
    denied = await client.patch(f"/api/v1/people/{ana.id}", headers=auth(mallory), json={"title": "Hacked"})
    assert denied.status_code == 403
    done = await client.patch(f"/api/v1/people/{ana.id}", headers=auth(admin),
                              json={"department": "Finance", "manager_id": str(admin.id), "roles": ["communications"]})
    assert done.status_code == 200
    assert done.json()["department"] == "Finance" and done.json()["roles"] == ["communications", "member"]


async def test_manager_cycles_are_refused(client, make_person, auth):
    admin = await make_person(roles=["admin"])
    boss = await make_person()
    report = await make_person(manager_id=boss.id)
    response = await client.patch(f"/api/v1/people/{boss.id}", headers=auth(admin), json={"manager_id": str(report.id)})
    assert response.status_code == 422 and response.json()["field"] == "manager_id"
    itself = await client.patch(f"/api/v1/people/{boss.id}", headers=auth(admin), json={"manager_id": str(boss.id)})
    assert itself.status_code == 422


async def test_org_chart_shows_chain_and_reports(client, make_person, auth):
    ceo = await make_person(display_name="Ceo")
    vp = await make_person(display_name="Vp", manager_id=ceo.id)
    eng = await make_person(display_name="Eng", manager_id=vp.id)
    chart = (await client.get(f"/api/v1/people/{vp.id}/org-chart", headers=auth(eng))).json()
    assert [m["id"] for m in chart["managers"]] == [str(ceo.id)]
    assert [r["id"] for r in chart["reports"]] == [str(eng.id)]
    top = (await client.get(f"/api/v1/people/{eng.id}/org-chart", headers=auth(eng))).json()
    assert [m["display_name"] for m in top["managers"]] == ["Vp", "Ceo"]


async def test_org_chart_reads_the_same_statements_however_deep_the_chain(client, make_person, auth, statements):
    manager, chain = None, []
    for level in range(7):
        manager = await make_person(display_name=f"Level {level}", manager_id=manager.id if manager else None)
        chain.append(manager)
    sent = []
    for person in (chain[2], chain[6]):  # 2 managers above, then 6
        with statements() as seen:
            chart = (await client.get(f"/api/v1/people/{person.id}/org-chart", headers=auth(person))).json()
        sent.append(len(seen))
        assert [m["id"] for m in chart["managers"]] == [str(m.id) for m in reversed(chain[:chain.index(person)])]
    assert sent[0] == sent[1]  # one recursive query, not one per level


async def test_directory_filters_by_department_location_and_skill(client, make_person, auth):
    viewer = await make_person()
    a = await make_person(display_name="Alma", department="Sales", location="Lisbon", skills=["Negotiation"])
    await make_person(display_name="Bela", department="Sales", location="Porto")
    await make_person(display_name="Cato", department="Eng", skills=["negotiation", "Go"])
    sales = (await client.get("/api/v1/people?department=sales", headers=auth(viewer))).json()["items"]
    assert [p["display_name"] for p in sales] == ["Alma", "Bela"]
    lisbon = (await client.get("/api/v1/people?department=Sales&location=lisbon", headers=auth(viewer))).json()
    assert [p["id"] for p in lisbon["items"]] == [str(a.id)]
    experts = (await client.get("/api/v1/people?skill=NEGOTIATION", headers=auth(viewer))).json()["items"]
    assert [p["display_name"] for p in experts] == ["Alma", "Cato"]
    assert (await client.get("/api/v1/people?skill=nego", headers=auth(viewer))).json()["items"] == []


async def test_directory_pages_alphabetically_and_hides_deactivated(client, session, make_person, auth):
    from services.posts.people import service as people
    viewer = await make_person(display_name="Zed")
    for name in ("Ana", "Bia", "Cid"):
        await make_person(display_name=name, department="Paging")
    gone = await make_person(display_name="Dan", department="Paging")
    await people.deactivate(session, person=await people.get(session, person_id=gone.id), actor=None)
    first = (await client.get("/api/v1/people?department=Paging&limit=2", headers=auth(viewer))).json()
    second = (await client.get(f"/api/v1/people?department=Paging&limit=2&cursor={first['next_cursor']}",
                               headers=auth(viewer))).json()
    assert [p["display_name"] for p in first["items"] + second["items"]] == ["Ana", "Bia", "Cid"]
    assert second["next_cursor"] is None


async def test_deactivation_publishes_and_ends_sessions(client, session, make_person):
    from services.posts.people import service as people
    ana = await make_person(email="leaving@corp.local")
    refresh = (await client.post("/auth/login", json={"email": "leaving@corp.local", "password": "correct-horse"})
               ).json()["refresh_token"]
    await people.deactivate(session, person=await people.get(session, person_id=ana.id), actor=None)
    assert (await client.post("/auth/refresh", json={"refresh_token": refresh})).status_code == 401
    [event] = await outbox_events(session, type="hearth.person.deactivated")
    assert event.payload().person.active is False
