"""The notification socket end to end: posts -> social.v1 -> notifications -> notifications.v1 -> socket."""

from tests.e2e.notifications_fixtures import NotificationSocket, admin, new_person, post


async def test_a_mention_reaches_the_open_socket_and_a_reconnect_resumes(http, stack):
    boss = await admin(http, stack)
    maria, maria_headers = await new_person(http, stack, boss)
    socket = await NotificationSocket.open(stack, maria_headers)
    badge = await socket.next_of("badge")
    assert badge["data"] == {"unread": 0}
    first = await post(http, stack, boss, f"Hello @{maria['handle']}")
    frame = await socket.next_of("notification")
    assert frame["data"]["kind"] == "mention" and frame["data"]["post_id"] == first["id"]
    seen = socket.last_seq
    await socket.close()
    second = await post(http, stack, boss, f"Again @{maria['handle']}")  # while disconnected
    resumed = await NotificationSocket.open(stack, maria_headers, last_seq=seen)
    replayed = await resumed.next_of("notification")
    assert replayed["data"]["post_id"] == second["id"] and replayed["seq"] == seen + 1
    notifications = (await http.get(f"{stack.urls['notifications']}/api/v1/notifications",
                                    headers=maria_headers)).json()["items"]
    await http.post(f"{stack.urls['notifications']}/api/v1/notifications/{notifications[0]['id']}/read",
                    headers=maria_headers)
    assert (await resumed.next_of("badge"))["data"] == {"unread": 1}
    await resumed.close()


async def test_a_company_post_sends_a_new_posts_hint_without_the_post(http, stack):
    boss = await admin(http, stack)
    _, reader_headers = await new_person(http, stack, boss)
    socket = await NotificationSocket.open(stack, reader_headers)
    await post(http, stack, boss, "Company news")
    hint = await socket.next_of("feed.new_posts")
    assert hint["data"] == {"feed": "company"} and "seq" not in hint
    await socket.close()
