"""Attachments: limits, Pillow dimensions, visibility through the post, and a real S3-compatible server (moto)."""

import asyncio
import contextlib
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import boto3
import httpx
import pytest
from fastapi import Request
from PIL import Image
from sqlalchemy import func, select, update
from uuid6 import uuid7

from services.posts.attachments.models import Attachment
from services.posts.attachments.service import orphan_sweeper, sweep_orphans

from shared.db import get_session, unit_of_work
from shared.devstack.ports import free_port, wait_for_port
from shared.storage import LocalStorage, S3Storage, StoredObjectNotFound, storage_from_url
from shared.testing import outbox_events
from shared.uploads import MULTIPART_ENVELOPE_BYTES
from tests.posts.content_helpers import make_group, publish


def png(width=3, height=2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3_url():
    """moto's standalone S3-compatible server on a free loopback port, with a bucket."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30, alive=lambda: server.poll() is None)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket="hearth")
        yield f"s3://test:test@hearth/uploads?endpoint_url={endpoint}&region=us-east-1"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def storage_at(app, tmp_path):
    """Point the app's storage somewhere for one test."""
    original = app.state.settings.storage_url

    def use(url: str | None = None):
        app.state.settings.storage_url = url or str(tmp_path / "uploads")

    use()
    yield use
    app.state.settings.storage_url = original


async def upload(client, headers, data, content_type="image/png", name="photo.png"):
    return await client.post("/api/v1/posts/attachments", headers=headers, files={"file": (name, data, content_type)})


async def test_image_upload_gets_its_dimensions_and_is_readable_through_its_post(client, make_person, auth,
                                                                                 storage_at):
    author, reader = await make_person(), await make_person()
    uploaded = await upload(client, auth(author), png(40, 30))
    assert uploaded.status_code == 201, uploaded.text
    meta = uploaded.json()
    assert (meta["width"], meta["height"], meta["content_type"]) == (40, 30, "image/png")
    assert meta["filename"] == "photo.png"
    url = f"/api/v1/posts/attachments/{meta['id']}"
    assert (await client.get(url, headers=auth(reader))).status_code == 404  # not on a post yet: uploader only
    assert (await client.get(url, headers=auth(author))).content == png(40, 30)
    post = await publish(client, auth(author), body="look", attachment_ids=[meta["id"]])
    assert [a["id"] for a in post["attachments"]] == [meta["id"]]
    response = await client.get(url, headers=auth(reader))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(f"{url}/meta", headers=auth(reader))).json()["width"] == 40


async def test_attachment_of_an_unreadable_post_is_not_found(client, make_person, auth, storage_at):
    author, outsider = await make_person(), await make_person()
    group_id = await make_group(client, auth(author), "secret")
    meta = (await upload(client, auth(author), png())).json()
    await publish(client, auth(author), body="secret", group_id=group_id, attachment_ids=[meta["id"]])
    for path in ["", "/meta"]:
        response = await client.get(f"/api/v1/posts/attachments/{meta['id']}{path}", headers=auth(outsider))
        assert response.status_code == 404 and response.json()["code"] == "attachment-not-found"


async def test_attachments_of_a_deleted_post_are_gone(client, make_person, auth, storage_at):
    author, reader = await make_person(), await make_person()
    meta = (await upload(client, auth(author), png())).json()
    post = await publish(client, auth(author), body="soon gone", attachment_ids=[meta["id"]])
    await client.delete(f"/api/v1/posts/{post['id']}", headers=auth(author))
    assert (await client.get(f"/api/v1/posts/attachments/{meta['id']}", headers=auth(reader))).status_code == 404


async def test_someone_elses_or_a_used_attachment_cannot_be_attached(client, make_person, auth, storage_at):
    author, thief = await make_person(), await make_person()
    meta = (await upload(client, auth(author), png())).json()
    stolen = await client.post("/api/v1/posts", headers=auth(thief),
                               json={"body": "mine", "attachment_ids": [meta["id"]]})
    assert stolen.status_code == 422 and stolen.json()["code"] == "invalid-attachments"
    await publish(client, auth(author), body="first", attachment_ids=[meta["id"]])
    reused = await client.post("/api/v1/posts", headers=auth(author),
                               json={"body": "again", "attachment_ids": [meta["id"]]})
    assert reused.status_code == 422


async def test_type_and_size_limits(client, app, make_person, auth, storage_at):
    person = await make_person()
    not_png = await upload(client, auth(person), b"GIF89a not really", "image/png")
    assert not_png.status_code == 415 and not_png.json()["code"] == "unsupported-attachment"
    exe = await upload(client, auth(person), b"MZ\x90\x00", "application/x-msdownload", "tool.exe")
    assert exe.status_code == 415
    empty = await upload(client, auth(person), b"", "text/plain", "empty.txt")
    assert empty.status_code == 422 and empty.json()["code"] == "empty-attachment"
    limit = app.state.settings.attachment_max_bytes
    big = await upload(client, auth(person), b"x" * (limit + 1), "text/plain", "big.txt")
    assert big.status_code == 413 and big.json()["code"] == "attachment-too-large"
    text = await upload(client, auth(person), b"hello", "text/plain", "../../etc/notes.txt")
    assert text.status_code == 201 and text.json()["filename"] == "notes.txt" and text.json()["width"] is None
    download = await client.get(f"/api/v1/posts/attachments/{text.json()['id']}", headers=auth(person))
    assert download.headers["content-disposition"].startswith("attachment;")


async def test_local_storage_refuses_keys_that_escape_its_folder(tmp_path):
    storage = LocalStorage(tmp_path)
    for key in ["../escape", "a/../../b", "/absolute", ""]:
        with pytest.raises(ValueError):
            await storage.put(key, b"x", content_type="text/plain")
    with pytest.raises(StoredObjectNotFound):
        await storage.get("missing/key")


async def test_s3_storage_round_trip_on_a_real_s3_compatible_server(s3_url):
    storage = storage_from_url(s3_url)
    assert isinstance(storage, S3Storage) and storage.bucket == "hearth" and storage.prefix == "uploads"
    await storage.put("attachments/one", b"bytes", content_type="text/plain")
    assert await storage.get("attachments/one") == b"bytes"
    head = storage.client.head_object(Bucket="hearth", Key="uploads/attachments/one")
    assert head["ContentType"] == "text/plain"
    await storage.delete("attachments/one")
    with pytest.raises(StoredObjectNotFound):
        await storage.get("attachments/one")


async def test_upload_and_download_through_the_api_with_s3(client, make_person, auth, storage_at, s3_url):
    storage_at(s3_url)
    author, reader = await make_person(), await make_person()
    meta = (await upload(client, auth(author), png(5, 7))).json()
    await publish(client, auth(author), body="from s3", attachment_ids=[meta["id"]])
    response = await client.get(f"/api/v1/posts/attachments/{meta['id']}", headers=auth(reader))
    assert response.status_code == 200 and response.content == png(5, 7)


async def test_uploads_may_be_as_large_as_the_attachment_limit_while_other_bodies_stay_small(
        client, app, make_person, auth, storage_at):
    settings, person = app.state.settings, await make_person()
    limit = settings.attachment_max_bytes
    assert limit > settings.max_body_bytes  # what this test is about: a file larger than any other body
    full = await upload(client, auth(person), b"x" * limit, "text/plain", "full.txt")
    assert full.status_code == 201, full.text
    assert full.json()["size"] == limit
    huge = await upload(client, auth(person), b"x" * (limit + MULTIPART_ENVELOPE_BYTES), "text/plain", "huge.txt")
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"
    assert huge.json()["code"] == "payload-too-large"
    post = await client.post("/api/v1/posts", headers=auth(person), json={"body": "x" * settings.max_body_bytes})
    assert post.status_code == 413 and post.json()["code"] == "payload-too-large"
    elsewhere = await client.post("/api/v1/posts/views", headers=auth(person),
                                  files={"file": ("big.txt", b"x" * (settings.max_body_bytes + 1), "text/plain")})
    assert elsewhere.status_code == 413, "only the upload route takes large bodies"


async def test_a_chunked_upload_over_the_limit_is_refused_while_it_streams(client, app, make_person, auth, storage_at):
    person, limit = await make_person(), app.state.settings.attachment_max_bytes
    chunk, sent = b"x" * 1_048_576, 0

    async def body():  # no Content-Length: the limit is enforced on what arrives
        nonlocal sent
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
               b"Content-Type: text/plain\r\n\r\n")
        while sent <= limit + MULTIPART_ENVELOPE_BYTES:
            sent += len(chunk)
            yield chunk
        yield b"\r\n--b--\r\n"

    response = await client.post("/api/v1/posts/attachments", content=body(),
                                 headers=auth(person) | {"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"


async def test_uploads_no_post_took_are_swept_after_a_while_with_their_files(client, app, sessionmaker, make_person,
                                                                             auth, storage_at):
    person = await make_person()
    orphan = (await upload(client, auth(person), b"never used", "text/plain", "o.txt")).json()
    used = (await upload(client, auth(person), b"on a post", "text/plain", "u.txt")).json()
    await publish(client, auth(person), body="with a file", attachment_ids=[used["id"]])
    async with sessionmaker() as s:  # both uploads are two days old; a fresh one stays
        await s.execute(update(Attachment).values(created_at=datetime.now(UTC) - timedelta(days=2)))
        await s.commit()
    fresh = (await upload(client, auth(person), b"just now", "text/plain", "f.txt")).json()
    storage = storage_from_url(app.state.settings.storage_url)
    swept = await sweep_orphans(sessionmaker, storage=storage, older_than=datetime.now(UTC) - timedelta(days=1))
    assert swept == 1
    assert (await client.get(f"/api/v1/posts/attachments/{orphan['id']}", headers=auth(person))).status_code == 404
    with pytest.raises(StoredObjectNotFound):
        await storage.get(f"attachments/{orphan['id']}")
    for kept in (used, fresh):
        assert (await client.get(f"/api/v1/posts/attachments/{kept['id']}", headers=auth(person))).status_code == 200
    assert await sweep_orphans(sessionmaker, storage=storage, older_than=datetime.now(UTC) - timedelta(days=1)) == 0


async def test_the_orphan_sweeper_job_sweeps_and_stops_when_asked(client, app, sessionmaker, make_person, auth,
                                                                 storage_at):
    person = await make_person()
    orphan = (await upload(client, auth(person), b"never used", "text/plain", "o.txt")).json()
    stop = asyncio.Event()

    def sessions():
        stop.set()  # one round, then the job's sleep returns at once
        return sessionmaker()

    job = orphan_sweeper(sessions, storage=storage_from_url(app.state.settings.storage_url), max_age=timedelta(0))
    await asyncio.wait_for(job(stop), timeout=30)
    assert (await client.get(f"/api/v1/posts/attachments/{orphan['id']}", headers=auth(person))).status_code == 404


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


async def test_a_file_the_sweeper_failed_to_delete_is_deleted_by_the_next_sweep(client, sessionmaker, make_person,
                                                                               auth, storage_at, tmp_path):
    person = await make_person()
    first, second = await uploads(client, auth(person), "first", "second")
    async with sessionmaker() as s:
        await s.execute(update(Attachment).values(created_at=datetime.now(UTC) - timedelta(days=2)))
        await s.commit()

    class DeleteFailsOnce(LocalStorage):
        """A storage whose first delete times out without deleting anything."""
        failed = False

        async def delete(self, key):
            if not self.failed:
                self.failed = True
                raise TimeoutError("no answer from the storage")
            await super().delete(key)

    storage, root = DeleteFailsOnce(tmp_path / "uploads"), tmp_path / "uploads"
    older_than = datetime.now(UTC) - timedelta(days=1)
    assert await sweep_orphans(sessionmaker, storage=storage, older_than=older_than) == 1
    async with sessionmaker() as s:
        [kept] = await s.scalars(select(Attachment.id))  # the upload whose file is still there keeps its row
    assert files_under(root) == [f"attachments/{kept}"] and str(kept) in (first, second)
    assert await sweep_orphans(sessionmaker, storage=storage, older_than=older_than) == 1
    assert files_under(root) == []
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 0


class CommitLost(Exception):
    """The request's transaction failing at its commit (the database went away, a serialization failure...)."""


def session_that_cannot_commit(sessionmaker):
    """A request session dependency whose commit fails: what the route wrote rolls back."""
    async def dependency(request: Request):
        async with sessionmaker() as session:
            request.state.unit_of_work = session
            yield session
            raise CommitLost()  # instead of committing

    return dependency


@contextlib.asynccontextmanager
async def failing_client(app, session_dependency):
    """A client whose requests use `session_dependency`; a server error is a 500 answer, not a raise."""
    previous = app.dependency_overrides.get(get_session)
    app.dependency_overrides[get_session] = session_dependency
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        app.dependency_overrides.pop(get_session)
        if previous is not None:
            app.dependency_overrides[get_session] = previous


@pytest.mark.parametrize("idempotency_key", [None, "upload-1"])
async def test_an_upload_whose_commit_fails_leaves_neither_file_nor_row(app, sessionmaker, make_person, auth,
                                                                       storage_at, tmp_path, idempotency_key):
    person = await make_person()
    headers = auth(person) | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})

    async with failing_client(app, session_that_cannot_commit(sessionmaker)) as client:
        response = await upload(client, headers, b"never saved", "text/plain", "lost.txt")
    assert response.status_code == 500
    assert files_under(tmp_path / "uploads") == []
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_an_upload_whose_storage_fails_after_writing_leaves_no_file(app, sessionmaker, make_person, auth,
                                                                         storage_at, tmp_path):
    from services.posts.attachments.router import storage as storage_dependency
    person = await make_person()

    class WritesThenTimesOut(LocalStorage):
        """An S3 PUT that reached the server but whose answer never came back, in a folder."""

        async def put(self, key, data, *, content_type):
            await super().put(key, data, content_type=content_type)
            raise TimeoutError("no answer from the storage")

    app.dependency_overrides[storage_dependency] = lambda: WritesThenTimesOut(tmp_path / "uploads")

    async def session(request: Request):
        async with unit_of_work(sessionmaker) as s:
            request.state.unit_of_work = s
            yield s

    try:
        async with failing_client(app, session) as client:
            response = await upload(client, auth(person), b"half stored", "text/plain", "half.txt")
            assert response.status_code == 503  # storage trouble is the infrastructure's
            assert files_under(tmp_path / "uploads") == []
            del app.dependency_overrides[storage_dependency]
            kept = await upload(client, auth(person), b"stored", "text/plain", "ok.txt")  # the same way, working
            assert kept.status_code == 201
            assert files_under(tmp_path / "uploads") == [f"attachments/{kept.json()['id']}"]
    finally:
        app.dependency_overrides.pop(storage_dependency, None)


async def test_removing_a_file_also_removes_what_an_interrupted_write_left(tmp_path):
    storage = LocalStorage(tmp_path)
    (tmp_path / "attachments").mkdir()
    (tmp_path / "attachments" / "a.partial").write_bytes(b"half")
    await storage.delete("attachments/a")
    assert files_under(tmp_path) == []


# --- edits change attachments ----------------------------------------------------------------------------

async def uploads(client, headers, *names) -> list[str]:
    return [(await upload(client, headers, name.encode(), "text/plain", f"{name}.txt")).json()["id"] for name in names]


async def edit(client, headers, post, **fields):
    return await client.patch(f"/api/v1/posts/{post['id']}", headers=headers, json=fields)


async def downloadable(client, headers, attachment_id) -> bool:
    return (await client.get(f"/api/v1/posts/attachments/{attachment_id}", headers=headers)).status_code == 200


async def test_an_edit_replaces_the_attachments_in_order_and_the_history_keeps_the_old_list(
        client, app, session, sessionmaker, make_person, auth, storage_at):
    author, reader = await make_person(), await make_person()
    a, b, c = await uploads(client, auth(author), "a", "b", "c")
    post = await publish(client, auth(author), body="slides", attachment_ids=[b, a])
    assert [x["id"] for x in post["attachments"]] == [b, a]  # the order given, not the upload order
    edited = await edit(client, auth(author), post, attachment_ids=[c, a])
    assert edited.status_code == 200, edited.text
    assert [x["id"] for x in edited.json()["attachments"]] == [c, a] and edited.json()["version"] == 2
    assert [await downloadable(client, auth(reader), x) for x in (a, b, c)] == [True, False, True]
    assert await downloadable(client, auth(author), b)  # an unused upload of the author's again
    history = (await client.get(f"/api/v1/posts/{post['id']}/edits", headers=auth(reader))).json()
    assert [(h["version"], h["attachment_ids"], h["body"]) for h in history] == [(1, [b, a], "slides")]
    [event] = await outbox_events(session, type="hearth.post.updated")
    assert event.payload().changed == ["attachment_ids"] and event.payload().attachment_ids == [UUID(c), UUID(a)]
    # the same edit again (a retry) changes nothing: no version, no history entry, no event
    again = await edit(client, auth(author), post, attachment_ids=[c, a])
    assert again.status_code == 200 and again.json()["version"] == 2
    assert len((await client.get(f"/api/v1/posts/{post['id']}/edits", headers=auth(reader))).json()) == 1
    assert len(await outbox_events(session, type="hearth.post.updated")) == 1
    # the removed file goes the way of every unused upload: the orphan sweeper deletes it and its file
    async with sessionmaker() as s:
        await s.execute(update(Attachment).values(created_at=datetime.now(UTC) - timedelta(days=2)))
        await s.commit()
    storage = storage_from_url(app.state.settings.storage_url)
    assert await sweep_orphans(sessionmaker, storage=storage, older_than=datetime.now(UTC) - timedelta(days=1)) == 1
    with pytest.raises(StoredObjectNotFound):
        await storage.get(f"attachments/{b}")
    assert [await downloadable(client, auth(reader), x) for x in (a, c)] == [True, True]
    emptied = await edit(client, auth(author), post, attachment_ids=[])
    assert emptied.json()["attachments"] == [] and not await downloadable(client, auth(reader), a)


async def test_an_edit_attaches_only_the_authors_unused_uploads(client, session, make_person, auth, storage_at):
    author, thief = await make_person(), await make_person()
    [mine, used] = await uploads(client, auth(author), "mine", "used")
    [own] = await uploads(client, auth(thief), "own")
    await publish(client, auth(author), body="first", attachment_ids=[used])
    post = await publish(client, auth(thief), body="second", attachment_ids=[own])
    for ids in ([own, mine], [used], [str(uuid7())]):  # someone else's, on another post, unknown
        refused = await edit(client, auth(thief), post, attachment_ids=ids, body="changed too")
        assert refused.status_code == 422, ids
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "invalid-attachments"
    too_many = await edit(client, auth(thief), post, attachment_ids=[str(uuid7()) for _ in range(11)])
    assert too_many.status_code == 422 and too_many.json()["code"] == "validation-failed"
    shown = (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(thief))).json()
    assert ([x["id"] for x in shown["attachments"]], shown["body"], shown["version"]) == ([own], "second", 1)
    assert await outbox_events(session, type="hearth.post.updated") == []
    assert not await downloadable(client, auth(thief), mine)
    other = await edit(client, auth(author), post, attachment_ids=[mine])  # only the author edits
    assert other.status_code == 403 and other.json()["code"] == "not-post-author"


async def test_an_edit_changes_or_removes_an_articles_cover(client, session, make_person, auth, storage_at):
    author, reader = await make_person(), await make_person()
    old, new, file = await uploads(client, auth(author), "old", "new", "file")
    article = await publish(client, auth(author), kind="article", title="Launch", body="story",
                            cover_attachment_id=old, attachment_ids=[file])
    changed = await edit(client, auth(author), article, cover_attachment_id=new)
    assert changed.status_code == 200, changed.text
    assert changed.json()["cover_attachment_id"] == new and [x["id"] for x in changed.json()["attachments"]] == [file]
    assert [await downloadable(client, auth(reader), x) for x in (old, new, file)] == [False, True, True]
    removed = await edit(client, auth(author), article, cover_attachment_id=None)
    assert removed.json()["cover_attachment_id"] is None and not await downloadable(client, auth(reader), new)
    history = (await client.get(f"/api/v1/posts/{article['id']}/edits", headers=auth(reader))).json()
    assert [(h["cover_attachment_id"], h["attachment_ids"]) for h in history] == [(new, [file]), (old, [file])]
    events = [e.payload() for e in await outbox_events(session, type="hearth.post.updated")]
    assert [(e.changed, e.cover_attachment_id) for e in events] == [
        (["cover_attachment_id"], UUID(new)), (["cover_attachment_id"], None)]
    update_post = await publish(client, auth(author), body="not an article")
    refused = await edit(client, auth(author), update_post, cover_attachment_id=old)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid-input"


async def test_the_history_of_attachments_is_for_those_who_may_read_the_post(client, make_person, auth, storage_at):
    author, outsider = await make_person(), await make_person()
    group_id = await make_group(client, auth(author), "secret")
    [secret] = await uploads(client, auth(author), "secret")
    post = await publish(client, auth(author), body="inside", group_id=group_id, attachment_ids=[secret])
    assert (await edit(client, auth(author), post, attachment_ids=[])).status_code == 200
    for who, status in ((author, 200), (outsider, 404)):
        response = await client.get(f"/api/v1/posts/{post['id']}/edits", headers=auth(who))
        assert response.status_code == status
    assert (await client.get(f"/api/v1/posts/{post['id']}/edits", headers=auth(author))).json()[0][
        "attachment_ids"] == [secret]
