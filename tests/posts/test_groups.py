from sqlalchemy import func, select

from services.posts.groups import service as groups
from services.posts.groups.models import Group, GroupInvite, GroupJoinRequest, GroupMember
from services.posts.groups.schemas import GroupCreate
from services.posts.people import service as people
from shared.testing import outbox_events

API = "/api/v1/groups"
UNKNOWN = "0190a000-0000-7000-8000-000000000000"


async def count(session, model, *where) -> int:
    return await session.scalar(select(func.count()).select_from(model).where(*where))


async def roles(session, group_id) -> dict:
    rows = await session.execute(select(GroupMember.person_id, GroupMember.role)
                                 .where(GroupMember.group_id == group_id))
    return dict(rows.all())


async def make_group(client, auth, owner, **fields) -> dict:
    response = await client.post(API, headers=auth(owner), json={"name": "Platform guild"} | fields)
    assert response.status_code == 201, response.text
    return response.json()


async def join(client, auth, person, group) -> dict:
    response = await client.post(f"{API}/{group['id']}/join", headers=auth(person))
    assert response.status_code in (201, 202), response.text
    return response.json()


async def invite(client, auth, admin, group, person) -> dict:
    response = await client.post(f"{API}/{group['id']}/invites", headers=auth(admin),
                                 json={"person_id": str(person.id)})
    assert response.status_code == 201, response.text
    return response.json()


# --- create, read, list, settings ---------------------------------------------------------------------

async def test_creator_owns_the_new_group_and_both_events_are_queued(client, session, make_person, auth):
    ana = await make_person()
    group = await make_group(client, auth, ana, description="Infra talk", visibility="private")
    assert group["visibility"] == "private" and group["my_role"] == "owner" and group["archived"] is False
    assert await roles(session, group["id"]) == {ana.id: "owner"}
    [created] = await outbox_events(session, type="hearth.group.created")
    assert created.subject == group["id"] and created.actor == ana.id
    assert created.payload().group.name == "Platform guild"
    [added] = await outbox_events(session, type="hearth.group.member_added")
    assert added.payload().role == "owner" and added.payload().via == "created"


async def test_anonymous_requests_are_401(client, make_person, auth):
    group = await make_group(client, auth, await make_person())
    for method, path in [("post", API), ("get", API), ("get", f"{API}/{group['id']}"),
                         ("post", f"{API}/{group['id']}/join"), ("get", f"{API}/invites")]:
        response = await client.request(method.upper(), path, json={"name": "x"} if method == "post" else None)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_bad_input_is_problem_json_and_creates_nothing(client, session, make_person, auth):
    ana = await make_person()
    before = await count(session, Group)
    for body in [{"name": "   "}, {"name": "x", "visibility": "hidden"}, {"name": "x" * 201}, {"name": "x", "extra": 1},
                 {"name": "x", "official_kind": "company"}, {}]:
        response = await client.post(API, headers=auth(ana), json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "validation-failed"
    assert (await client.get(f"{API}/not-a-uuid", headers=auth(ana))).status_code == 422
    assert (await client.get(f"{API}/{UNKNOWN}", headers=auth(ana))).json()["code"] == "group-not-found"
    assert await count(session, Group) == before


async def test_only_company_admins_create_official_groups(client, session, make_person, auth):
    member, admin = await make_person(), await make_person(roles=["admin"])
    denied = await client.post(API, headers=auth(member), json={"name": "Sales", "official": True})
    assert denied.status_code == 403 and denied.json()["code"] == "official-group-needs-admin"
    assert await count(session, Group) == 0
    group = await make_group(client, auth, admin, name="Sales", official=True, official_kind="department")
    assert group["official"] is True and group["official_kind"] == "department"


async def test_list_shows_public_and_private_but_only_my_secret_groups(client, make_person, auth):
    ana, bo = await make_person(), await make_person()
    public = await make_group(client, auth, ana, name="A public")
    private = await make_group(client, auth, ana, name="B private", visibility="private")
    secret = await make_group(client, auth, ana, name="C secret", visibility="secret")
    seen_by_bo = (await client.get(API, headers=auth(bo))).json()["items"]
    assert [g["id"] for g in seen_by_bo] == [public["id"], private["id"]]
    seen_by_ana = (await client.get(API, headers=auth(ana))).json()["items"]
    assert [g["id"] for g in seen_by_ana] == [public["id"], private["id"], secret["id"]]
    await join(client, auth, bo, public)
    mine = (await client.get(API, headers=auth(bo), params={"member": "true"})).json()["items"]
    assert [(g["id"], g["my_role"]) for g in mine] == [(public["id"], "member")]
    found = (await client.get(API, headers=auth(ana), params={"q": "SECR"})).json()["items"]
    assert [g["id"] for g in found] == [secret["id"]]
    assert (await client.get(API, headers=auth(bo), params={"q": "secret"})).json()["items"] == []


async def test_list_is_paginated_by_name(client, make_person, auth):
    ana = await make_person()
    for name in ("Delta", "Alpha", "Charlie", "Bravo"):
        await make_group(client, auth, ana, name=name)
    first = (await client.get(API, headers=auth(ana), params={"limit": 3})).json()
    assert [g["name"] for g in first["items"]] == ["Alpha", "Bravo", "Charlie"] and first["next_cursor"]
    rest = (await client.get(API, headers=auth(ana), params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [g["name"] for g in rest["items"]] == ["Delta"] and rest["next_cursor"] is None


async def test_group_admin_patches_settings_and_group_updated_lists_the_changes(client, session, make_person, auth):
    ana = await make_person()
    group = await make_group(client, auth, ana)
    response = await client.patch(f"{API}/{group['id']}", headers=auth(ana),
                                  json={"name": "Platform", "admins_only_posting": True, "description": ""})
    assert response.status_code == 200 and response.json()["name"] == "Platform"
    [event] = await outbox_events(session, type="hearth.group.updated")
    assert event.payload().changed == ["admins_only_posting", "name"]
    assert event.payload().group.admins_only_posting is True


async def test_member_cannot_patch_settings_or_make_a_group_official(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    await join(client, auth, bo, group)
    denied = await client.patch(f"{API}/{group['id']}", headers=auth(bo), json={"name": "Mine now"})
    assert denied.status_code == 403 and denied.json()["code"] == "not-a-group-admin"
    official = await client.patch(f"{API}/{group['id']}", headers=auth(ana), json={"official": True})
    assert official.status_code == 403 and official.json()["code"] == "official-group-needs-admin"
    bad = await client.patch(f"{API}/{group['id']}", headers=auth(ana), json={"name": None})
    assert bad.status_code == 422 and bad.json()["code"] == "validation-failed"
    assert (await session.get(Group, group["id"], populate_existing=True)).name == "Platform guild"
    assert await outbox_events(session, type="hearth.group.updated") == []


async def test_going_public_lets_pending_requesters_in(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private")
    await join(client, auth, bo, group)
    await client.patch(f"{API}/{group['id']}", headers=auth(ana), json={"visibility": "public"})
    assert (await roles(session, group["id"]))[bo.id] == "member"
    assert await count(session, GroupJoinRequest) == 0


async def test_going_public_lets_any_number_of_requesters_in_with_the_same_statements_and_skips_the_deactivated(
        client, session, make_person, auth, statements):
    sent = []
    for asking in (2, 6):
        owner, gone = await make_person(), await make_person()
        group = await make_group(client, auth, owner, visibility="private")
        requesters = [await make_person() for _ in range(asking)]
        for person in [*requesters, gone]:
            await join(client, auth, person, group)
        await people.deactivate(session, person=await people.get(session, person_id=gone.id), actor=None)
        await session.commit()
        with statements() as seen:
            response = await client.patch(f"{API}/{group['id']}", headers=auth(owner), json={"visibility": "public"})
        assert response.status_code == 200, response.text
        sent.append(len(seen))
        assert set(await roles(session, group["id"])) == {owner.id, *(p.id for p in requesters)}
        added = [e.payload() for e in await outbox_events(session, type="hearth.group.member_added")
                 if e.subject == group["id"] and e.payload().via == "request_approved"]
        assert sorted(e.person_id for e in added) == sorted(p.id for p in requesters)
    assert sent[0] == sent[1]  # no statement per request
    assert await count(session, GroupJoinRequest) == 0


# --- secret and private groups: what non-members see ---------------------------------------------------

async def test_secret_group_is_404_for_non_members_everywhere(client, session, make_person, auth):
    ana, mallory = await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="secret")
    gid = group["id"]
    calls = [("GET", f"{API}/{gid}", None), ("PATCH", f"{API}/{gid}", {"name": "x"}),
             ("GET", f"{API}/{gid}/members", None), ("POST", f"{API}/{gid}/join", None),
             ("POST", f"{API}/{gid}/leave", None), ("POST", f"{API}/{gid}/invites", {"person_id": str(mallory.id)}),
             ("GET", f"{API}/{gid}/join-requests", None), ("POST", f"{API}/{gid}/archive", None),
             ("PATCH", f"{API}/{gid}/members/{ana.id}", {"role": "member"}),
             ("DELETE", f"{API}/{gid}/members/{ana.id}", None),
             ("POST", f"{API}/{gid}/transfer-ownership", {"person_id": str(mallory.id)})]
    for method, path, body in calls:
        response = await client.request(method, path, headers=auth(mallory), json=body)
        assert response.status_code == 404 and response.json()["code"] == "group-not-found", (method, path)
    assert await roles(session, gid) == {ana.id: "owner"} and await count(session, GroupInvite) == 0
    # The same group is there for its member, and for a company admin.
    assert (await client.get(f"{API}/{gid}", headers=auth(ana))).status_code == 200
    admin = await make_person(roles=["admin"])
    assert (await client.get(f"{API}/{gid}", headers=auth(admin))).status_code == 200


async def test_private_group_is_listed_but_its_members_are_hidden(client, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private", description="Secret sauce team")
    seen = await client.get(f"{API}/{group['id']}", headers=auth(bo))
    assert seen.status_code == 200 and seen.json()["description"] == "Secret sauce team"
    assert seen.json()["my_role"] is None
    hidden = await client.get(f"{API}/{group['id']}/members", headers=auth(bo))
    assert hidden.status_code == 403 and hidden.json()["code"] == "not-a-group-member"
    members = (await client.get(f"{API}/{group['id']}/members", headers=auth(ana))).json()
    assert [(m["person"]["id"], m["role"]) for m in members["items"]] == [(str(ana.id), "owner")]


# --- joining, leaving, requests -------------------------------------------------------------------------

async def test_joining_a_public_group_is_201_and_idempotent(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    assert await join(client, auth, bo, group) == {"state": "member", "request_id": None}
    assert await join(client, auth, bo, group) == {"state": "member", "request_id": None}
    assert await roles(session, group["id"]) == {ana.id: "owner", bo.id: "member"}
    joined = [e for e in await outbox_events(session, type="hearth.group.member_added") if e.payload().via == "joined"]
    assert [e.payload().person_id for e in joined] == [bo.id]


async def test_private_group_join_is_a_request_admins_approve_or_deny(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private")
    asked = await client.post(f"{API}/{group['id']}/join", headers=auth(bo))
    assert asked.status_code == 202 and asked.json()["state"] == "requested"
    await join(client, auth, cy, group)
    again = await join(client, auth, bo, group)
    assert again["request_id"] == asked.json()["request_id"]
    assert len(await outbox_events(session, type="hearth.group.join_requested")) == 2
    pending = (await client.get(f"{API}/{group['id']}/join-requests", headers=auth(ana))).json()["items"]
    by_person = {r["person"]["id"]: r["id"] for r in pending}
    assert set(by_person) == {str(bo.id), str(cy.id)}
    approve = await client.post(f"{API}/{group['id']}/join-requests/{by_person[str(bo.id)]}/approve",
                                headers=auth(ana))
    deny = await client.post(f"{API}/{group['id']}/join-requests/{by_person[str(cy.id)]}/deny", headers=auth(ana))
    assert approve.status_code == deny.status_code == 204
    assert await roles(session, group["id"]) == {ana.id: "owner", bo.id: "member"}
    assert await count(session, GroupJoinRequest) == 0
    [added] = [e for e in await outbox_events(session, type="hearth.group.member_added")
               if e.payload().via == "request_approved"]
    assert added.payload().person_id == bo.id and added.actor == ana.id


async def test_members_cannot_see_or_decide_join_requests(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private")
    request_id = (await join(client, auth, cy, group))["request_id"]
    await client.post(f"{API}/{group['id']}/join-requests/{request_id}/approve", headers=auth(ana))
    other = await join(client, auth, bo, group)
    for action in ("approve", "deny"):
        # cy is a member, not an admin; and bo cannot approve their own request.
        for person in (cy, bo):
            response = await client.post(f"{API}/{group['id']}/join-requests/{other['request_id']}/{action}",
                                         headers=auth(person))
            assert response.status_code == 403 and response.json()["code"] == "not-a-group-admin"
    listing = await client.get(f"{API}/{group['id']}/join-requests", headers=auth(cy))
    assert listing.status_code == 403
    assert await count(session, GroupJoinRequest) == 1 and bo.id not in await roles(session, group["id"])


async def test_a_request_of_another_group_is_404(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    mine = await make_group(client, auth, ana, visibility="private")
    theirs = await make_group(client, auth, bo, visibility="private")
    request_id = (await join(client, auth, cy, theirs))["request_id"]
    response = await client.post(f"{API}/{mine['id']}/join-requests/{request_id}/approve", headers=auth(ana))
    assert response.status_code == 404 and response.json()["code"] == "join-request-not-found"
    assert cy.id not in await roles(session, theirs["id"])


async def test_leaving_removes_the_membership_but_the_last_owner_stays(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    await join(client, auth, bo, group)
    assert (await client.post(f"{API}/{group['id']}/leave", headers=auth(bo))).status_code == 204
    [removed] = await outbox_events(session, type="hearth.group.member_removed")
    assert removed.payload().person_id == bo.id and removed.payload().reason == "left"
    stuck = await client.post(f"{API}/{group['id']}/leave", headers=auth(ana))
    assert stuck.status_code == 409 and stuck.json()["code"] == "last-owner"
    assert await roles(session, group["id"]) == {ana.id: "owner"}


async def test_leaving_withdraws_a_pending_request(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private")
    await join(client, auth, bo, group)
    assert (await client.post(f"{API}/{group['id']}/leave", headers=auth(bo))).status_code == 204
    assert await count(session, GroupJoinRequest) == 0


# --- invites ----------------------------------------------------------------------------------------------

async def test_invite_to_a_secret_group_is_the_way_in(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana, name="Skunkworks", visibility="secret")
    sent = await invite(client, auth, ana, group, bo)
    assert sent["person_id"] == str(bo.id) and sent["group"]["name"] == "Skunkworks"
    assert (await invite(client, auth, ana, group, bo))["id"] == sent["id"]  # inviting again changes nothing
    [event] = await outbox_events(session, type="hearth.group.invited")
    assert event.payload().person_id == bo.id and event.payload().inviter_id == ana.id
    mine = (await client.get(f"{API}/invites", headers=auth(bo))).json()["items"]
    assert [i["id"] for i in mine] == [sent["id"]]
    accepted = await client.post(f"{API}/invites/{sent['id']}/accept", headers=auth(bo))
    assert accepted.status_code == 200 and accepted.json()["my_role"] == "member"
    assert (await roles(session, group["id"]))[bo.id] == "member" and await count(session, GroupInvite) == 0
    assert (await client.get(f"{API}/{group['id']}", headers=auth(bo))).status_code == 200


async def test_declining_an_invite_deletes_it(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private")
    sent = await invite(client, auth, ana, group, bo)
    assert (await client.post(f"{API}/invites/{sent['id']}/decline", headers=auth(bo))).status_code == 204
    assert await count(session, GroupInvite) == 0 and bo.id not in await roles(session, group["id"])


async def test_nobody_accepts_or_declines_someone_elses_invite(client, session, make_person, auth):
    ana, bo, mallory = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="secret")
    sent = await invite(client, auth, ana, group, bo)
    for who in (mallory, ana):
        for action in ("accept", "decline"):
            response = await client.post(f"{API}/invites/{sent['id']}/{action}", headers=auth(who))
            assert response.status_code == 404 and response.json()["code"] == "group-invite-not-found"
    assert (await client.get(f"{API}/invites", headers=auth(mallory))).json()["items"] == []
    assert await count(session, GroupInvite) == 1 and mallory.id not in await roles(session, group["id"])


async def test_members_cannot_invite_and_members_cannot_be_invited(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    await join(client, auth, bo, group)
    denied = await client.post(f"{API}/{group['id']}/invites", headers=auth(bo), json={"person_id": str(cy.id)})
    assert denied.status_code == 403 and denied.json()["code"] == "not-a-group-admin"
    again = await client.post(f"{API}/{group['id']}/invites", headers=auth(ana), json={"person_id": str(bo.id)})
    assert again.status_code == 409 and again.json()["code"] == "already-a-member"
    nobody = await client.post(f"{API}/{group['id']}/invites", headers=auth(ana), json={"person_id": UNKNOWN})
    assert nobody.status_code == 404 and nobody.json()["code"] == "person-not-found"
    assert await count(session, GroupInvite) == 0


async def test_an_invite_lets_someone_skip_the_private_groups_request(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana, visibility="private")
    await invite(client, auth, ana, group, bo)
    assert await join(client, auth, bo, group) == {"state": "member", "request_id": None}
    assert await count(session, GroupInvite) == 0


# --- roles, removal, ownership ------------------------------------------------------------------------------

async def test_admin_promotes_a_member_and_the_role_change_is_emitted(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    await join(client, auth, bo, group)
    response = await client.patch(f"{API}/{group['id']}/members/{bo.id}", headers=auth(ana), json={"role": "admin"})
    assert response.status_code == 200 and response.json()["role"] == "admin"
    [event] = await outbox_events(session, type="hearth.group.member_role_changed")
    assert event.payload().person_id == bo.id and event.payload().role == "admin"
    bad = await client.patch(f"{API}/{group['id']}/members/{bo.id}", headers=auth(ana), json={"role": "king"})
    assert bad.status_code == 422 and (await roles(session, group["id"]))[bo.id] == "admin"


async def test_members_cannot_change_roles_and_admins_cannot_touch_ownership(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    for person in (bo, cy):
        await join(client, auth, person, group)
    member_try = await client.patch(f"{API}/{group['id']}/members/{bo.id}", headers=auth(cy), json={"role": "admin"})
    assert member_try.status_code == 403 and member_try.json()["code"] == "not-a-group-admin"
    await client.patch(f"{API}/{group['id']}/members/{bo.id}", headers=auth(ana), json={"role": "admin"})
    grab = await client.patch(f"{API}/{group['id']}/members/{bo.id}", headers=auth(bo), json={"role": "owner"})
    assert grab.status_code == 403 and grab.json()["code"] == "not-a-group-owner"
    demote = await client.patch(f"{API}/{group['id']}/members/{ana.id}", headers=auth(bo), json={"role": "member"})
    assert demote.status_code == 403
    assert await roles(session, group["id"]) == {ana.id: "owner", bo.id: "admin", cy.id: "member"}


async def test_the_last_owner_cannot_be_demoted(client, session, make_person, auth):
    ana = await make_person()
    group = await make_group(client, auth, ana)
    response = await client.patch(f"{API}/{group['id']}/members/{ana.id}", headers=auth(ana), json={"role": "admin"})
    assert response.status_code == 409 and response.json()["code"] == "last-owner"
    assert await roles(session, group["id"]) == {ana.id: "owner"}


async def test_admin_removes_a_member_but_not_an_owner(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    for person in (bo, cy):
        await join(client, auth, person, group)
    await client.patch(f"{API}/{group['id']}/members/{bo.id}", headers=auth(ana), json={"role": "admin"})
    assert (await client.delete(f"{API}/{group['id']}/members/{cy.id}", headers=auth(bo))).status_code == 204
    owner = await client.delete(f"{API}/{group['id']}/members/{ana.id}", headers=auth(bo))
    assert owner.status_code == 403 and owner.json()["code"] == "cannot-remove-owner"
    gone = await client.delete(f"{API}/{group['id']}/members/{cy.id}", headers=auth(bo))
    assert gone.status_code == 404 and gone.json()["code"] == "group-member-not-found"
    assert await roles(session, group["id"]) == {ana.id: "owner", bo.id: "admin"}
    [removed] = await outbox_events(session, type="hearth.group.member_removed")
    assert removed.payload().reason == "removed" and removed.actor == bo.id


async def test_a_member_cannot_remove_others(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    for person in (bo, cy):
        await join(client, auth, person, group)
    response = await client.delete(f"{API}/{group['id']}/members/{cy.id}", headers=auth(bo))
    assert response.status_code == 403 and cy.id in await roles(session, group["id"])


async def test_transfer_ownership_makes_the_old_owner_an_admin(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    await join(client, auth, bo, group)
    response = await client.post(f"{API}/{group['id']}/transfer-ownership", headers=auth(ana),
                                 json={"person_id": str(bo.id)})
    assert response.status_code == 200 and response.json()["role"] == "owner"
    assert await roles(session, group["id"]) == {ana.id: "admin", bo.id: "owner"}
    changes = [(e.payload().person_id, e.payload().role)
               for e in await outbox_events(session, type="hearth.group.member_role_changed")]
    assert changes == [(bo.id, "owner"), (ana.id, "admin")]
    # Now the old owner may leave; the new one cannot be handed a group by a mere admin.
    stolen = await client.post(f"{API}/{group['id']}/transfer-ownership", headers=auth(ana),
                               json={"person_id": str(ana.id)})
    assert stolen.status_code == 403 and stolen.json()["code"] == "not-a-group-owner"


async def test_transfer_to_a_non_member_changes_nothing(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    response = await client.post(f"{API}/{group['id']}/transfer-ownership", headers=auth(ana),
                                 json={"person_id": str(bo.id)})
    assert response.status_code == 404 and response.json()["code"] == "group-member-not-found"
    assert await roles(session, group["id"]) == {ana.id: "owner"}


async def test_company_admin_manages_any_group(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    admin = await make_person(roles=["admin"])
    group = await make_group(client, auth, ana, visibility="secret")
    sent = await invite(client, auth, admin, group, bo)
    await client.post(f"{API}/invites/{sent['id']}/accept", headers=auth(bo))
    assert (await client.delete(f"{API}/{group['id']}/members/{bo.id}", headers=auth(admin))).status_code == 204
    assert (await client.post(f"{API}/{group['id']}/archive", headers=auth(admin))).status_code == 200


# --- archive ----------------------------------------------------------------------------------------------------

async def test_archived_group_is_read_only_until_unarchived(client, session, make_person, auth):
    ana, bo, cy = await make_person(), await make_person(), await make_person()
    group = await make_group(client, auth, ana)
    await join(client, auth, cy, group)
    denied = await client.post(f"{API}/{group['id']}/archive", headers=auth(cy))
    assert denied.status_code == 403 and denied.json()["code"] == "not-a-group-owner"
    archived = await client.post(f"{API}/{group['id']}/archive", headers=auth(ana))
    assert archived.status_code == 200 and archived.json()["archived"] is True
    [event] = await outbox_events(session, type="hearth.group.updated")
    assert event.payload().changed == ["archived"] and event.payload().group.archived is True
    for method, path, body in [("POST", f"{API}/{group['id']}/join", None),
                               ("POST", f"{API}/{group['id']}/invites", {"person_id": str(bo.id)}),
                               ("PATCH", f"{API}/{group['id']}", {"name": "x"})]:
        response = await client.request(method, path, headers=auth(bo if method == "POST" and "join" in path else ana),
                                        json=body)
        assert response.status_code == 409 and response.json()["code"] == "group-archived", path
    post = await client.post("/api/v1/posts", headers=auth(cy), json={"group_id": group["id"], "body": "hello?"})
    assert post.status_code == 409 and post.json()["code"] == "group-archived"
    assert bo.id not in await roles(session, group["id"]) and await count(session, GroupInvite) == 0
    back = await client.post(f"{API}/{group['id']}/unarchive", headers=auth(ana))
    assert back.status_code == 200 and back.json()["archived"] is False
    assert (await join(client, auth, bo, group))["state"] == "member"


# --- All company ---------------------------------------------------------------------------------------------------

async def test_all_company_group_is_created_once_and_everyone_belongs(client, session, sessionmaker, make_person, auth):
    async with sessionmaker() as s:
        first = await groups.ensure_all_company_group(s)
        await s.commit()
    async with sessionmaker() as s:
        again = await groups.ensure_all_company_group(s)
        await s.commit()
    assert first.id == again.id and await count(session, Group, Group.all_company.is_(True)) == 1
    assert await count(session, GroupMember, GroupMember.group_id == first.id) == 0  # membership is implicit
    ana = await make_person(display_name="Ana")
    listed = (await client.get(API, headers=auth(ana), params={"member": "true"})).json()["items"]
    assert [(g["id"], g["my_role"]) for g in listed] == [(str(first.id), "member")]
    members = (await client.get(f"{API}/{first.id}/members", headers=auth(ana))).json()["items"]
    assert str(ana.id) in [m["person"]["id"] for m in members]
    stay = await client.post(f"{API}/{first.id}/leave", headers=auth(ana))
    assert stay.status_code == 409 and stay.json()["code"] == "all-company-group"
    bo = await make_person(display_name="Bo")
    await people.deactivate(session, person=await people.get(session, person_id=ana.id), actor=None)
    members = (await client.get(f"{API}/{first.id}/members", headers=auth(bo))).json()["items"]
    assert str(ana.id) not in [m["person"]["id"] for m in members]


async def test_only_company_admins_post_in_all_company(client, session, sessionmaker, make_person, auth):
    async with sessionmaker() as s:
        everyone = await groups.ensure_all_company_group(s)
        await s.commit()
    member, admin = await make_person(), await make_person(roles=["admin"])
    denied = await client.post("/api/v1/posts", headers=auth(member), json={"group_id": str(everyone.id), "body": "hi"})
    assert denied.status_code == 403 and denied.json()["code"] == "admins-only-posting"
    allowed = await client.post("/api/v1/posts", headers=auth(admin), json={"group_id": str(everyone.id), "body": "hi"})
    assert allowed.status_code == 201 and allowed.json()["audience"] == "group"


# --- the service API provisioning uses -------------------------------------------------------------------------------

async def test_provisioning_primitives_are_idempotent(session, make_person):
    ana = await make_person()
    group = await groups.create(session, data=GroupCreate(name="Sales", official=True, official_kind="department",
                                                          external_id="okta-1", provisioned=True), actor_id=None)
    assert group.provisioned and await count(session, GroupMember) == 0  # provisioned groups have no owner
    assert await groups.add_member(session, group=group, person_id=ana.id, via="provisioned", actor_id=None)
    assert not await groups.add_member(session, group=group, person_id=ana.id, via="provisioned", actor_id=None)
    assert await groups.remove_member(session, group=group, person_id=ana.id, reason="deprovisioned", actor_id=None)
    assert not await groups.remove_member(session, group=group, person_id=ana.id, reason="deprovisioned", actor_id=None)
    assert len(await outbox_events(session, type="hearth.group.member_added")) == 1
    assert len(await outbox_events(session, type="hearth.group.member_removed")) == 1
    await groups.update(session, group=group, changes={"name": "Sales EMEA"}, actor_id=None)
    assert (await groups.get_by_external_id(session, external_id="okta-1")).name == "Sales EMEA"


async def test_duplicate_external_id_is_409(session):
    await groups.create(session, data=GroupCreate(name="A", external_id="okta-1", provisioned=True), actor_id=None)
    try:
        await groups.create(session, data=GroupCreate(name="B", external_id="okta-1", provisioned=True), actor_id=None)
    except groups.ExternalIdTaken as exc:
        assert exc.status == 409
    else:
        raise AssertionError("a second group took the same external id")
    assert await count(session, Group) == 1


# --- the request is the unit of work --------------------------------------------------------------------------------

async def test_a_join_that_fails_after_writing_leaves_no_membership_and_no_event(
        client, session, make_person, auth, monkeypatch):
    owner, ana = await make_person(), await make_person()
    group = await make_group(client, auth, owner, visibility="public")
    events = len(await outbox_events(session))
    written = groups.add_member

    async def fail_after_writing(session, **kwargs):
        await written(session, **kwargs)  # the membership and its event are written, then the request fails
        raise groups.GroupArchived("failed after the writes")

    monkeypatch.setattr(groups, "add_member", fail_after_writing)
    response = await client.post(f"{API}/{group['id']}/join", headers=auth(ana))
    assert response.status_code == 409 and response.json()["code"] == "group-archived"
    monkeypatch.undo()
    assert await count(session, GroupMember, GroupMember.group_id == group["id"], GroupMember.person_id == ana.id) == 0
    assert len(await outbox_events(session)) == events
