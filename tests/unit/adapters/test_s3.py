from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from videobatch.adapters.s3 import S3ObjectStore
from videobatch.errors import RejectedUploadError, StaleStateError
from videobatch.services.ports import ObjectRef

from .conftest import REGION


@pytest.fixture
def s3(aws: None) -> Any:
    # The runtime signs with SigV4 (required for KMS-encrypted objects and expiries beyond 1 h in some regions).
    client = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="uploads")
    return client


def test_head_and_range_read(s3: Any) -> None:
    s3.put_object(Bucket="uploads", Key="a.mp4", Body=b"0123456789", ContentType="video/mp4")
    store = S3ObjectStore(s3)
    ref = ObjectRef(bucket="uploads", key="a.mp4")
    info = store.head(ref)
    assert (info.size_bytes, info.content_type) == (10, "video/mp4")
    assert info.etag
    assert '"' not in info.etag
    assert store.read_range(ref, 2, 3) == b"234"
    assert store.read_range(ref, 8, 100) == b"89"
    assert store.read_range(ref, 0, 0) == b""


def test_reads_the_exact_version(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket="uploads", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="uploads", Key="a.mp4", Body=b"first")["VersionId"]
    s3.put_object(Bucket="uploads", Key="a.mp4", Body=b"second!")
    store = S3ObjectStore(s3)
    ref = ObjectRef(bucket="uploads", key="a.mp4", version_id=first)
    assert store.head(ref).size_bytes == 5
    assert b"".join(store.iter_chunks(ref, 2)) == b"first"


def test_missing_object_is_a_rejected_upload(s3: Any) -> None:
    with pytest.raises(RejectedUploadError) as caught:
        S3ObjectStore(s3).head(ObjectRef(bucket="uploads", key="gone.mp4"))
    assert caught.value.reason == "object_missing"


def test_chunks_are_exact(s3: Any) -> None:
    s3.put_object(Bucket="uploads", Key="a.mp4", Body=bytes(range(256)) * 4)
    chunks = list(S3ObjectStore(s3).iter_chunks(ObjectRef(bucket="uploads", key="a.mp4"), 300))
    assert [len(chunk) for chunk in chunks] == [300, 300, 300, 124]
    assert b"".join(chunks) == bytes(range(256)) * 4


def test_presigned_url_is_signed_for_the_object(s3: Any) -> None:
    url = S3ObjectStore(s3).presigned_get_url(ObjectRef(bucket="uploads", key="dir/a b.mp4", version_id="v1"), 600)
    parsed = httpx.URL(url)
    assert "uploads" in str(parsed)
    assert "a%20b.mp4" in parsed.raw_path.decode()
    assert parsed.params["versionId"] == "v1"
    assert parsed.params["X-Amz-Expires"] == "600"


def test_write_once_is_idempotent_and_refuses_different_bytes(s3: Any) -> None:
    store = S3ObjectStore(s3)
    assert store.write_once("uploads", "results/a.mp4.json", b'{"a":1}', "application/json")
    assert not store.write_once("uploads", "results/a.mp4.json", b'{"a":1}', "application/json")
    with pytest.raises(StaleStateError):
        store.write_once("uploads", "results/a.mp4.json", b'{"a":2}', "application/json")
    body = s3.get_object(Bucket="uploads", Key="results/a.mp4.json")
    assert (body["Body"].read(), body["ContentType"]) == (b'{"a":1}', "application/json")
