"""S3 specifics beyond the contract suite (tests/contract): presigned URLs, S3 error codes."""

from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from videobatch.adapters.s3 import S3ObjectStore
from videobatch.errors import InvalidInputError
from videobatch.services.ports import ObjectRef

from .conftest import REGION


@pytest.fixture
def s3(aws: None) -> Any:
    # The runtime signs with SigV4 (required for KMS-encrypted objects and expiries beyond 1 h in some regions).
    client = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="uploads")
    return client


def test_presigned_url_is_signed_for_the_object(s3: Any) -> None:
    url = S3ObjectStore(s3).presigned_get_url(ObjectRef(bucket="uploads", key="dir/a b.mp4", version_id="v1"), 600)
    parsed = httpx.URL(url)
    assert "uploads" in str(parsed)
    assert "a%20b.mp4" in parsed.raw_path.decode()
    assert parsed.params["versionId"] == "v1"
    assert parsed.params["X-Amz-Expires"] == "600"


def test_s3s_key_too_long_answer_is_an_invalid_input(s3: Any) -> None:
    """Should S3 refuse a key the adapter's own check let through, the answer still maps to InvalidInputError."""
    store = S3ObjectStore(s3)
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", service_error_code="KeyTooLongError", http_status_code=400)
        with pytest.raises(InvalidInputError, match="too long"):
            store.write_once("uploads", "results/a.json", b"{}", "application/json")
