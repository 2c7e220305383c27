from sqlalchemy import func, select

from services.posts.content.models import Post
from shared.testing import outbox_events


async def count_posts(session) -> int:
    return await session.scalar(select(func.count()).select_from(Post))


async def test_post_with_mention_emits_post_created_for_readers(client, session, make_person, auth):
    author = await make_person()
    maria = await make_person(email="maria@corp.local")
    response = await client.post("/api/v1/posts", headers=auth(author) | {"X-Hearth-Client": "ios"},
                                 json={"body": "Great demo @maria and @nobody-here #Launch #launch", "kind": "praise"})
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["mentions"] == [str(maria.id)] and post["hashtags"] == ["launch"] and post["audience"] == "company"
    [event] = await outbox_events(session, type="hearth.post.created")
    assert event.subject == post["id"] and event.actor == author.id and event.client == "ios"
    assert event.dataschema == "hearth.post.created/1"
    payload = event.payload()
    assert payload.mentions == [maria.id] and payload.kind == "praise" and payload.excerpt.startswith("Great demo")


async def test_self_mention_and_emails_do_not_notify(client, session, make_person, auth):
    author = await make_person(email="self@corp.local")
    await make_person(email="corp@corp.local")
    response = await client.post("/api/v1/posts", headers=auth(author), json={"body": "me @self, mail me at x@corp.local"})
    assert response.status_code == 201
    [event] = await outbox_events(session, type="hearth.post.created")
    assert event.payload().mentions == []


async def test_followers_only_post_is_hidden_from_others_and_mentions_nobody_yet(client, session, make_person, auth):
    author = await make_person()
    other = await make_person(email="peeker@corp.local")
    response = await client.post("/api/v1/posts", headers=auth(author),
                                 json={"body": "for my followers @peeker", "audience": "followers"})
    assert response.status_code == 201
    post_id = response.json()["id"]
    assert (await client.get(f"/api/v1/posts/{post_id}", headers=auth(author))).status_code == 200
    hidden = await client.get(f"/api/v1/posts/{post_id}", headers=auth(other))
    assert hidden.status_code == 404 and hidden.json()["code"] == "post-not-found"
    [event] = await outbox_events(session, type="hearth.post.created")
    assert event.payload().mentions == []  # a mention must not leak a post its target cannot read


async def test_company_post_is_readable_by_colleagues(client, make_person, auth):
    author, reader = await make_person(), await make_person()
    post_id = (await client.post("/api/v1/posts", headers=auth(author), json={"body": "hi all"})).json()["id"]
    response = await client.get(f"/api/v1/posts/{post_id}", headers=auth(reader))
    assert response.status_code == 200 and response.json()["body"] == "hi all"


async def test_announcements_need_communications_role(client, session, make_person, auth):
    member = await make_person()
    comms = await make_person(roles=["communications"])
    denied = await client.post("/api/v1/posts", headers=auth(member), json={"kind": "announcement", "body": "x"})
    assert denied.status_code == 403
    allowed = await client.post("/api/v1/posts", headers=auth(comms), json={"kind": "announcement", "body": "x"})
    assert allowed.status_code == 201
    assert await count_posts(session) == 1


async def test_api_token_scopes_are_enforced(client, session, make_person, auth):
    person = await make_person()

    async def api_token(scope: str) -> dict[str, str]:
        created = await client.post("/auth/tokens", headers=auth(person), json={"name": "bot", "scopes": [scope]})
        assert created.status_code == 201, created.text
        return {"Authorization": f"Bearer {created.json()['token']}"}

    read_only = await api_token("posts:read")
    response = await client.post("/api/v1/posts", headers=read_only, json={"body": "from a bot"})
    assert response.status_code == 403 and response.json()["required_scope"] == "posts:write"
    writer = await api_token("posts:write")
    assert (await client.post("/api/v1/posts", headers=writer, json={"body": "from a bot"})).status_code == 201
    assert await count_posts(session) == 1


async def test_bad_input_gets_problem_json_and_changes_nothing(client, session, make_person, auth):
    person = await make_person()
    headers = auth(person)
    cases = [
        (dict(content=b'{"body": "unterminated', headers=headers | {"content-type": "application/json"}), 400,
         "malformed-json"),
        (dict(json={"body": 42}, headers=headers), 422, "validation-failed"),
        (dict(json={"body": "   "}, headers=headers), 422, "validation-failed"),
        (dict(json={"body": "x", "audience": "everyone"}, headers=headers), 422, "validation-failed"),
        (dict(json={"body": "x", "surprise": 1}, headers=headers), 422, "validation-failed"),
        (dict(json={"body": "x" * 20_001}, headers=headers), 422, "validation-failed"),
        (dict(content=b"x" * 1_100_000, headers=headers | {"content-type": "application/json"}), 413,
         "payload-too-large"),
        (dict(json={"body": "x"}), 401, "unauthorized"),
    ]
    for kwargs, status, code in cases:
        response = await client.post("/api/v1/posts", **kwargs)
        assert response.status_code == status, (code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == code and body["status"] == status and body["title"] and body["detail"]
    assert await count_posts(session) == 0
    invalid = await client.post("/api/v1/posts", json={"body": 42}, headers=headers)
    assert invalid.json()["errors"][0]["loc"] == ["body", "body"]


async def test_chunked_oversize_body_is_413(client, session, make_person, auth):
    person = await make_person()

    async def chunks():
        for _ in range(40):
            yield b"x" * 65_536

    response = await client.post("/api/v1/posts", content=chunks(),
                                 headers=auth(person) | {"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "payload-too-large"
    assert await count_posts(session) == 0


async def test_unknown_route_and_wrong_method_are_problems(client):
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = await client.delete("/auth/login")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method-not-allowed"


async def _group(client, auth, owner, visibility: str) -> str:
    response = await client.post("/api/v1/groups", headers=auth(owner), json={"name": "Team", "visibility": visibility})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_group_post_is_for_the_groups_readers_and_mentions_only_them(client, session, make_person, auth):
    author, member = await make_person(), await make_person(email="insider@corp.local")
    outsider = await make_person(email="outsider@corp.local")
    group_id = await _group(client, auth, author, "private")
    sent = await client.post(f"/api/v1/groups/{group_id}/invites", headers=auth(author),
                             json={"person_id": str(member.id)})
    await client.post(f"/api/v1/groups/invites/{sent.json()['id']}/accept", headers=auth(member))
    response = await client.post("/api/v1/posts", headers=auth(author),
                                 json={"group_id": group_id, "body": "hi @insider and @outsider"})
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["audience"] == "group" and post["group_id"] == group_id
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(member))).status_code == 200
    hidden = await client.get(f"/api/v1/posts/{post['id']}", headers=auth(outsider))
    assert hidden.status_code == 404 and hidden.json()["code"] == "post-not-found"
    [event] = await outbox_events(session, type="hearth.post.created")
    payload = event.payload()
    assert payload.audience == "group" and payload.group_id is not None and payload.mentions == [member.id]


async def test_public_group_post_is_readable_by_anyone(client, make_person, auth):
    author, reader = await make_person(), await make_person()
    group_id = await _group(client, auth, author, "public")
    post_id = (await client.post("/api/v1/posts", headers=auth(author),
                                 json={"group_id": group_id, "body": "open to all"})).json()["id"]
    assert (await client.get(f"/api/v1/posts/{post_id}", headers=auth(reader))).status_code == 200


async def test_only_members_post_in_a_group_and_secret_groups_stay_hidden(client, session, make_person, auth):
    owner, outsider = await make_person(), await make_person()
    public_id, secret_id = await _group(client, auth, owner, "public"), await _group(client, auth, owner, "secret")
    not_member = await client.post("/api/v1/posts", headers=auth(outsider), json={"group_id": public_id, "body": "x"})
    assert not_member.status_code == 403 and not_member.json()["code"] == "not-a-group-member"
    secret = await client.post("/api/v1/posts", headers=auth(outsider), json={"group_id": secret_id, "body": "x"})
    assert secret.status_code == 404 and secret.json()["code"] == "group-not-found"
    unknown = await client.post("/api/v1/posts", headers=auth(outsider),
                                json={"group_id": "0190a000-0000-7000-8000-000000000000", "body": "x"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "group-not-found"
    mismatched = await client.post("/api/v1/posts", headers=auth(owner),
                                   json={"group_id": public_id, "body": "x", "audience": "followers"})
    assert mismatched.status_code == 422
    no_group = await client.post("/api/v1/posts", headers=auth(owner), json={"body": "x", "audience": "group"})
    assert no_group.status_code == 422
    assert await count_posts(session) == 0


async def test_markdown_is_rendered_to_sanitized_html_and_the_raw_text_kept(client, make_person, auth):
    author = await make_person()
    body = "**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    post = (await client.post("/api/v1/posts", headers=auth(author), json={"body": body})).json()
    assert post["body"] == body
    assert "<strong>bold</strong>" in post["body_html"] and "<script" not in post["body_html"]
    assert "javascript:" not in post["body_html"].replace("[x](javascript:alert(1))", "")


async def test_article_has_a_title_and_other_kinds_do_not(client, make_person, auth):
    author = await make_person()
    article = await client.post("/api/v1/posts", headers=auth(author),
                                json={"kind": "article", "title": "Our year", "body": "# Intro\n\ntext"})
    assert article.status_code == 201 and article.json()["title"] == "Our year"
    assert (await client.post("/api/v1/posts", headers=auth(author),
                              json={"kind": "article", "body": "untitled"})).status_code == 422
    assert (await client.post("/api/v1/posts", headers=auth(author),
                              json={"kind": "update", "title": "t", "body": "x"})).status_code == 422


async def test_edits_keep_a_visible_history_and_only_the_author_edits(client, session, make_person, auth):
    author, other = await make_person(), await make_person(email="newname@corp.local")
    post = (await client.post("/api/v1/posts", headers=auth(author), json={"body": "first #one"})).json()
    denied = await client.patch(f"/api/v1/posts/{post['id']}", headers=auth(other), json={"body": "hijacked"})
    assert denied.status_code == 403 and denied.json()["code"] == "not-post-author"
    edited = await client.patch(f"/api/v1/posts/{post['id']}", headers=auth(author),
                                json={"body": "second #two @newname"})
    assert edited.status_code == 200
    assert edited.json()["version"] == 2 and edited.json()["edited_at"] and edited.json()["hashtags"] == ["two"]
    assert edited.json()["mentions"] == [str(other.id)] and "second" in edited.json()["body_html"]
    history = (await client.get(f"/api/v1/posts/{post['id']}/edits", headers=auth(other))).json()
    assert [(h["version"], h["body"]) for h in history] == [(1, "first #one")]
    [event] = await outbox_events(session, type="hearth.post.updated")
    assert event.payload().version == 2 and event.payload().editor_id == author.id


async def test_soft_delete_by_author_or_moderator_hides_the_post(client, session, make_person, auth):
    author, other = await make_person(), await make_person()
    moderator = await make_person(roles=["moderator"])
    first = (await client.post("/api/v1/posts", headers=auth(author), json={"body": "one"})).json()
    second = (await client.post("/api/v1/posts", headers=auth(author), json={"body": "two"})).json()
    assert (await client.delete(f"/api/v1/posts/{first['id']}", headers=auth(other))).status_code == 403
    assert (await client.delete(f"/api/v1/posts/{first['id']}", headers=auth(author))).status_code == 204
    assert (await client.delete(f"/api/v1/posts/{second['id']}", headers=auth(moderator))).status_code == 204
    for post in (first, second):
        for viewer in (author, other):
            assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(viewer))).status_code == 404
    assert (await client.patch(f"/api/v1/posts/{first['id']}", headers=auth(author),
                               json={"body": "back"})).status_code == 404
    assert (await client.get(f"/api/v1/posts/{first['id']}/edits", headers=auth(author))).status_code == 404
    events = [e.payload() for e in await outbox_events(session, type="hearth.post.deleted")]
    assert [(e.deleted_by, e.by_moderator) for e in events] == [(author.id, False), (moderator.id, True)]


async def test_followers_only_post_endpoints_are_404_to_non_followers(client, make_person, auth):
    author, stranger = await make_person(protected=True), await make_person()
    post = (await client.post("/api/v1/posts", headers=auth(author), json={"body": "protected"})).json()
    base = f"/api/v1/posts/{post['id']}"
    for method, path, body in [("get", "", None), ("patch", "", {"body": "x"}), ("delete", "", None),
                               ("get", "/edits", None), ("get", "/comments", None),
                               ("post", "/comments", {"body": "x"}), ("put", "/reaction", {"kind": "like"}),
                               ("put", "/bookmark", None), ("post", "/votes", {"option_ids": [post["id"]]})]:
        kwargs = {"json": body} if body is not None else {}
        response = await client.request(method.upper(), base + path, headers=auth(stranger), **kwargs)
        assert response.status_code == 404, (method, path)


async def test_control_characters_are_refused_in_every_text_field(client, session, make_person, auth):
    author = await make_person()
    post = (await client.post("/api/v1/posts", headers=auth(author), json={"body": "ok"})).json()
    cases = [("/api/v1/posts", {"body": "nul \x00 here"}),
             ("/api/v1/posts", {"kind": "article", "title": "bell\x07", "body": "x"}),
             ("/api/v1/posts", {"kind": "poll", "body": "x", "poll": {"options": ["a\x1b", "b"]}}),
             (f"/api/v1/posts/{post['id']}/comments", {"body": "esc \x1b"})]
    for url, body in cases:
        response = await client.post(url, headers=auth(author), json=body)
        assert response.status_code == 422 and response.json()["code"] == "validation-failed", body
    assert (await client.patch(f"/api/v1/posts/{post['id']}", headers=auth(author),
                               json={"body": "\x00"})).status_code == 422
    assert await count_posts(session) == 1


async def test_a_retried_create_with_the_same_idempotency_key_returns_the_first_post(client, session, make_person,
                                                                                    auth):
    author = await make_person()
    headers = auth(author) | {"Idempotency-Key": "post-1"}
    first = await client.post("/api/v1/posts", headers=headers, json={"body": "once"})
    again = await client.post("/api/v1/posts", headers=headers, json={"body": "once"})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = await client.post("/api/v1/posts", headers=headers, json={"body": "different"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"
    assert await count_posts(session) == 1
    assert len(await outbox_events(session, type="hearth.post.created")) == 1


async def test_groups_are_mentioned_by_their_name_and_secret_ones_only_by_members(client, make_person, auth):
    author, outsider = await make_person(), await make_person()
    public = (await client.post("/api/v1/groups", headers=auth(author),
                                json={"name": "Platform Guild", "visibility": "public"})).json()["id"]
    secret = (await client.post("/api/v1/groups", headers=auth(author),
                                json={"name": "Skunk Works", "visibility": "secret"})).json()["id"]
    body = "ping @platform-guild and @skunk-works and @no-such-group"
    mine = (await client.post("/api/v1/posts", headers=auth(author), json={"body": body})).json()
    assert sorted(mine["group_mentions"]) == sorted([public, secret]) and mine["mentions"] == []
    theirs = (await client.post("/api/v1/posts", headers=auth(outsider), json={"body": body})).json()
    assert theirs["group_mentions"] == [public]
    assert "@no-such-group" in theirs["body_html"]  # unknown names stay text


async def test_a_protected_account_posts_to_its_followers_unless_it_says_otherwise(client, session, make_person, auth):
    protected, open_account = await make_person(protected=True), await make_person()
    default = (await client.post("/api/v1/posts", headers=auth(protected), json={"body": "mine"})).json()
    chosen = (await client.post("/api/v1/posts", headers=auth(protected),
                                json={"body": "mine", "audience": "company"})).json()
    public = (await client.post("/api/v1/posts", headers=auth(open_account), json={"body": "hi"})).json()
    assert (default["audience"], chosen["audience"], public["audience"]) == ("followers", "company", "company")
    audiences = {str(e.subject): e.payload().audience for e in await outbox_events(session, type="hearth.post.created")}
    assert audiences[default["id"]] == "followers"
