"""Where uploaded files live: a local folder in development, an S3-compatible bucket in production.

One setting chooses it (`HEARTH_STORAGE_URL`):
- `file:///var/lib/hearth/uploads` or a plain path: a folder (created on first write);
- `s3://bucket/optional/prefix?endpoint_url=http://minio:9000&region=eu-west-1`: a bucket on any
  S3-compatible server (AWS, MinIO, Ceph, moto). Credentials come from the URL's user info
  (`s3://KEY:SECRET@bucket/...`) or, when absent, from boto3's usual chain (environment, role).

Keys are opaque strings made by the caller (`attachments/<uuid>`). The blocking clients (file system,
boto3) run in worker threads, never on the event loop.
"""

import asyncio
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from shared.errors import NotFound


class StoredObjectNotFound(NotFound):
    code, title = "stored-object-not-found", "File not found"


class Storage(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid storage key: {key!r}")
    return key


class LocalStorage:
    """Files under one folder; a key's slashes are sub-folders."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        temporary.write_bytes(data)
        os.replace(temporary, path)  # readers never see half a file

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoredObjectNotFound()

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        await asyncio.to_thread(self._write, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    def _delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".partial").unlink(missing_ok=True)  # what a write cut short left

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)


class S3Storage:
    """Objects in a bucket (under an optional prefix) of an S3-compatible server."""

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None):
        import boto3  # only deployments that use S3 pay for importing it

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{_safe_key(key)}" if self.prefix else _safe_key(key)

    def _get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise StoredObjectNotFound()

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data,
                                ContentType=content_type)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))


def storage_from_url(url: str) -> Storage:
    """The storage a `HEARTH_STORAGE_URL` names (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return LocalStorage(unquote(parts.path) if parts.scheme else url)
    if parts.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.hostname:
            raise ValueError("an s3:// storage URL names a bucket: s3://bucket/prefix")
        return S3Storage(bucket=parts.hostname, prefix=unquote(parts.path), endpoint_url=query.get("endpoint_url"),
                         region=query.get("region"), access_key=unquote(parts.username) if parts.username else None,
                         secret_key=unquote(parts.password) if parts.password else None)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (file:// or s3://)")
