"""moto in server mode on loopback, and boto3 sessions that can only reach it.

The server runs in a thread of this process, so moto's backends are shared with anything else in the process that
uses moto; give each local stack its own stack name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from videobatch_tools.localstack.lambda_invoke import install_invoke_bridge
from videobatch_tools.localstack.s3_tap import S3NotificationTap, tap_s3_eventbridge
from videobatch_tools.localstack.sqs_move import install_message_move_tasks

# moto's default account; every ARN the local stack builds uses it.
LOCAL_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
LOOPBACK = "127.0.0.1"

# Credentials moto accepts; they are not secrets and cannot reach AWS because every client targets the endpoint.
_FAKE_KEY_ID = "testing"
_FAKE_SECRET = "testing"  # noqa: S105 - a fixed dummy value for moto


def fake_aws_environment(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment that points every default boto3 client at ``endpoint_url`` with dummy credentials.

    AWS_ENDPOINT_URL is honoured by boto3 >= 1.28 for every service; the config and credentials files are
    blanked so a developer's profile can neither leak in nor be used.
    """
    return {
        "AWS_ACCESS_KEY_ID": _FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": _FAKE_SECRET,
        "AWS_SESSION_TOKEN": _FAKE_SECRET,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


_REMOVED_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


@contextmanager
def patched_environ(values: Mapping[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    """Set (and remove) environment variables for the block, restoring the previous values afterwards."""
    names = set(values) | set(remove)
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in remove:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# S3 refuses a key longer than this many bytes (UTF-8) with KeyTooLongError; moto accepts any length.
S3_MAX_KEY_BYTES = 1024
# The S3 operations that create an object under a key of the caller's choosing.
_S3_KEY_WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload")


def refuse_long_s3_keys(params: Mapping[str, Any], model: Any, **_: Any) -> None:
    """botocore hook: answer a write with a key over 1,024 bytes as S3 does, before the request reaches moto."""
    key = params.get("Key")
    if isinstance(key, str) and len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        error = {
            "Error": {"Code": "KeyTooLongError", "Message": "Your key is too long", "Size": str(len(key.encode()))},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        raise ClientError(error, model.name)  # type: ignore[arg-type]


def local_session(region: str = DEFAULT_REGION) -> boto3.session.Session:
    """A boto3 session with dummy credentials; pass ``endpoint_url`` to every client made from it.

    Its S3 clients enforce the rules of AWS moto leaves out (``refuse_long_s3_keys``).
    """
    session = boto3.session.Session(
        aws_access_key_id=_FAKE_KEY_ID,
        aws_secret_access_key=_FAKE_SECRET,
        aws_session_token=_FAKE_SECRET,
        region_name=region,
    )
    for operation in _S3_KEY_WRITES:
        session.events.register(f"before-parameter-build.s3.{operation}", refuse_long_s3_keys)
    return session


@dataclass(frozen=True)
class MotoEndpoint:
    endpoint_url: str
    region: str
    s3_notifications: S3NotificationTap

    def session(self) -> boto3.session.Session:
        return local_session(self.region)

    def client(self, service: str) -> Any:
        """An untyped client for ``service`` bound to the endpoint (annotate the result with the stub type)."""
        return self.session().client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


@contextmanager
def moto_server(
    *, port: int = 0, region: str = DEFAULT_REGION, isolate_environment: bool = True
) -> Iterator[MotoEndpoint]:
    """Run moto on 127.0.0.1 (``port`` 0 picks a free port) for the block.

    With ``isolate_environment`` the process environment points default boto3 clients at the server with dummy
    credentials for the block. S3 -> EventBridge notifications are diverted into ``s3_notifications``
    (see ``s3_tap``).
    """
    # What moto leaves out and the operators' CLI needs: SQS message move tasks, Lambda Invoke of local handlers.
    install_message_move_tasks()
    install_invoke_bridge()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    # werkzeug logs every request at INFO; a simulation makes thousands.
    request_log = logging.getLogger("werkzeug")
    previous_level = request_log.level
    request_log.setLevel(logging.WARNING)
    server.start()
    try:
        host, bound_port = server.get_host_and_port()
        endpoint = f"http://{host}:{bound_port}"
        environment = fake_aws_environment(endpoint, region) if isolate_environment else {}
        removed = _REMOVED_VARIABLES if isolate_environment else ()
        with tap_s3_eventbridge() as tap, patched_environ(environment, removed):
            yield MotoEndpoint(endpoint_url=endpoint, region=region, s3_notifications=tap)
    finally:
        server.stop()
        # stop() only ends serve_forever; close the listening socket too (an open one warns at collection).
        wsgi_server = server._server
        if wsgi_server is not None:
            wsgi_server.server_close()
        request_log.setLevel(previous_level)
