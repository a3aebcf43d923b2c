"""S3: read uploaded videos (metadata, first bytes, chunks, presigned URL) and write result files exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from videobatch.domain.results import MAX_S3_KEY_BYTES
from videobatch.errors import InvalidInputError, RejectedUploadError, StaleStateError
from videobatch.services.ports import ListedVersion, ObjectInfo, ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING_CODES: Final = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
# S3 refuses longer keys (KeyTooLongError); moto does not, so the rule (MAX_S3_KEY_BYTES) is checked here first.
_PRECONDITION_CODES: Final = frozenset({"412", "PreconditionFailed", "409", "ConditionalRequestConflict"})


def check_s3_key(key: str) -> None:
    """S3's rule for object keys: at most 1,024 bytes of UTF-8 (InvalidInputError otherwise)."""
    size = len(key.encode("utf-8"))
    if size > MAX_S3_KEY_BYTES:
        raise InvalidInputError(f"S3 object key of {size} bytes exceeds the {MAX_S3_KEY_BYTES}-byte limit")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _version_args(ref: ObjectRef) -> dict[str, Any]:
    return {"VersionId": ref.version_id} if ref.version_id else {}


class S3ObjectStore:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def head(self, ref: ObjectRef) -> ObjectInfo:
        """Size, type and ETag of the exact object version; RejectedUploadError(object_missing) when it is gone."""
        try:
            response = self._client.head_object(Bucket=ref.bucket, Key=ref.key, **_version_args(ref))
        except ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                raise RejectedUploadError(
                    "object_missing", f"s3://{ref.bucket}/{ref.key} was deleted before it could be analysed"
                ) from error
            raise
        return ObjectInfo(
            size_bytes=response["ContentLength"],
            content_type=response.get("ContentType"),
            etag=response.get("ETag", "").strip('"') or None,
        )

    def read_range(self, ref: ObjectRef, start_byte: int, length_bytes: int) -> bytes:
        """Bytes ``[start, start + length)`` (fewer at the end of the object)."""
        if length_bytes <= 0:
            return b""
        response = self._client.get_object(
            Bucket=ref.bucket,
            Key=ref.key,
            Range=f"bytes={start_byte}-{start_byte + length_bytes - 1}",
            **_version_args(ref),
        )
        return response["Body"].read()

    def iter_chunks(self, ref: ObjectRef, chunk_size_bytes: int) -> Iterator[bytes]:
        """The object as consecutive chunks of ``chunk_size_bytes`` (the last one shorter), streamed, never whole."""
        response = self._client.get_object(Bucket=ref.bucket, Key=ref.key, **_version_args(ref))
        body = response["Body"]
        try:
            while chunk := _read_exactly(body, chunk_size_bytes):
                yield chunk
        finally:
            body.close()

    def presigned_get_url(self, ref: ObjectRef, expires_seconds: int) -> str:
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, **_version_args(ref)}
        return self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_seconds)

    def write_once(self, bucket: str, key: str, body: bytes, content_type: str) -> bool:
        """Create ``key`` with ``body`` unless it exists: True when written, False when the same bytes were there.

        Different bytes under the key raise StaleStateError: two different results for one video is a bug to surface,
        not to overwrite. If-None-Match makes the check and the write one atomic step.
        """
        check_s3_key(key)
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
        except ClientError as error:
            if _error_code(error) == "KeyTooLongError":
                raise InvalidInputError(f"S3 refused the key of {len(key.encode())} bytes as too long") from error
            if _error_code(error) not in _PRECONDITION_CODES:
                raise
            existing = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
            if existing != body:
                raise StaleStateError(f"s3://{bucket}/{key} holds a different result already") from error
            return False
        return True

    def read(self, bucket: str, key: str) -> bytes | None:
        """The current object at ``key`` (a pointer written by ``put``); None when there is none."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def overwrite(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        """Write ``key``, replacing what is there (pointers only: results are ``write_once``)."""
        check_s3_key(key)
        self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def iter_versions(self, bucket: str, prefix: str) -> Iterator[ListedVersion]:
        """ListObjectVersions, page by page (an unversioned bucket answers with version "null": None here)."""
        paginator = self._client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            entries: list[tuple[str, ListedVersion]] = []
            for version in page.get("Versions", []):
                listed = ListedVersion(
                    key=version["Key"],
                    version_id=_version_or_none(version.get("VersionId")),
                    is_latest=bool(version.get("IsLatest", True)),
                    size_bytes=int(version.get("Size", 0)),
                    etag=str(version.get("ETag", "")).strip('"') or None,
                    last_modified=version.get("LastModified"),
                )
                entries.append((listed.key, listed))
            for marker in page.get("DeleteMarkers", []):
                listed = ListedVersion(
                    key=marker["Key"],
                    version_id=_version_or_none(marker.get("VersionId")),
                    is_latest=bool(marker.get("IsLatest", True)),
                    delete_marker=True,
                )
                entries.append((listed.key, listed))
            # S3 lists versions and markers apart; within a key, the latest first as S3 orders each list.
            entries.sort(key=lambda pair: (pair[0], not pair[1].is_latest))
            yield from (listed for _, listed in entries)


def _version_or_none(version_id: str | None) -> str | None:
    return None if version_id in (None, "", "null") else version_id


def _read_exactly(body: Any, size: int) -> bytes:
    # StreamingBody.read(n) may return fewer bytes than asked before the end; chunks must be exact for multipart.
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part: bytes = body.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
