"""Attachments: uploaded into a conversation, sent with a message, readable by its members only."""

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from services.messaging.attachments.models import Attachment

from services.messaging.attachments.router import storage
from shared.storage import LocalStorage
from tests.messaging.factories import people
from tests.messaging.test_conversations import API, group
from tests.posts.test_attachments import failing_client, files_under, session_that_cannot_commit


@pytest.fixture
def files(app, tmp_path):
    app.dependency_overrides[storage] = lambda: LocalStorage(tmp_path)
    yield tmp_path


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), "red").save(out, format="PNG")
    return out.getvalue()


async def upload(client, keys, who, conversation_id, data, content_type="image/png", name="pic.png"):
    return await client.post(f"{API}/{conversation_id}/attachments", headers=keys.headers(who),
                             files={"file": (name, data, content_type)})


async def test_a_photo_is_sent_and_only_members_can_fetch_it(client, keys, sessionmaker, files):
    ana, ben, mallory = await people(sessionmaker, 3)
    conv = await group(client, keys, ana, [ben])
    uploaded = await upload(client, keys, ana, conv["id"], png())
    assert uploaded.status_code == 201 and uploaded.json()["width"] == 3 and uploaded.json()["message_id"] is None
    attachment_id = uploaded.json()["id"]
    url = f"{API}/{conv['id']}/attachments/{attachment_id}"
    assert (await client.get(url, headers=keys.headers(ben))).status_code == 404  # not sent yet: the uploader's
    sent = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ana),
                             json={"attachment_ids": [attachment_id]})
    assert sent.status_code == 201 and [a["id"] for a in sent.json()["attachments"]] == [attachment_id]
    fetched = await client.get(url, headers=keys.headers(ben))
    assert fetched.status_code == 200 and fetched.content == png() and fetched.headers["content-type"] == "image/png"
    assert (await client.get(url, headers=keys.headers(mallory))).status_code == 404
    assert (await upload(client, keys, mallory, conv["id"], png())).status_code == 404
    history = (await client.get(f"{API}/{conv['id']}/messages", headers=keys.headers(ben))).json()["items"]
    assert history[-1]["attachments"][0]["id"] == attachment_id


async def test_an_upload_is_attached_once_by_its_uploader_in_its_conversation(client, keys, sessionmaker, files):
    ana, ben = await people(sessionmaker, 2)
    conv, other = await group(client, keys, ana, [ben]), await group(client, keys, ana, [ben])
    attachment_id = (await upload(client, keys, ana, conv["id"], b"notes", "text/plain", "notes.txt")).json()["id"]
    for who, where in ((ben, conv["id"]), (ana, other["id"])):
        refused = await client.post(f"{API}/{where}/messages", headers=keys.headers(who),
                                    json={"body": "x", "attachment_ids": [attachment_id]})
        assert refused.status_code == 422 and refused.json()["code"] == "attachment-not-usable"
    ok = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ana),
                           json={"body": "x", "attachment_ids": [attachment_id]})
    assert ok.status_code == 201
    again = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ana),
                              json={"body": "y", "attachment_ids": [attachment_id]})
    assert again.status_code == 422


async def test_uploads_are_limited_by_type_size_and_content(client, keys, sessionmaker, files, settings):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    assert (await upload(client, keys, ana, conv["id"], b"MZ...", "application/x-msdownload", "a.exe")).status_code == 415
    assert (await upload(client, keys, ana, conv["id"], b"not a png")).status_code == 415
    assert (await upload(client, keys, ana, conv["id"], b"", "text/plain", "e.txt")).status_code == 422
    big = b"x" * (settings.attachment_max_bytes + 1)
    assert (await upload(client, keys, ana, conv["id"], big, "text/plain", "big.txt")).status_code == 413
    empty = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ana), json={"body": "  "})
    assert empty.status_code == 422  # nothing to send


async def test_an_upload_whose_commit_fails_leaves_neither_file_nor_row(app, client, keys, sessionmaker, files):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])

    async with failing_client(app, session_that_cannot_commit(sessionmaker)) as client:
        response = await upload(client, keys, ana, conv["id"], png())
    assert response.status_code == 500
    assert files_under(files) == []
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 0
