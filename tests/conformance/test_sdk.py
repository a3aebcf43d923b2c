"""The official SDK (twelvelabs 1.3.6) against the emulator: every method parses, errors raise typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from twelvelabs import TwelveLabs
from twelvelabs.core.api_error import ApiError
from twelvelabs.errors import BadRequestError, ConflictError, NotFoundError, TooManyRequestsError
from twelvelabs.types import BatchItemRequest, BatchPrompt, BatchVideoContext, CompletedChunk

from tests.emulator.support import API_KEY, Emu

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk(emu: Emu) -> Iterator[TwelveLabs]:
    with httpx.Client(timeout=30.0) as http:
        yield TwelveLabs(api_key=API_KEY, base_url=emu.server.api_url, httpx_client=http)


def _requests(asset_id: str, count: int) -> list[BatchItemRequest]:
    video = BatchVideoContext(type="asset_id", asset_id=asset_id)
    return [BatchItemRequest(video=video, custom_id=f"item-{i}") for i in range(count)]


def _ready_asset(sdk: TwelveLabs, emu: Emu, path: Path) -> str:
    with path.open("rb") as handle:
        asset = sdk.assets.create(method="direct", file=handle, filename=path.name, user_metadata='{"k": "v"}')
    assert asset.id is not None
    assert asset.status == "processing"
    assert asset.user_metadata == {"k": "v"}
    emu.advance(5)
    return asset.id


def test_assets_methods(sdk: TwelveLabs, emu: Emu, videos: dict[str, Path]) -> None:
    asset_id = _ready_asset(sdk, emu, videos["short"])
    detail = sdk.assets.retrieve(asset_id)
    assert detail.status == "ready"
    assert detail.duration
    assert detail.technical_metadata
    assert detail.technical_metadata.video_width == 360
    listed = list(sdk.assets.list(asset_ids=[asset_id], page_limit=1))
    assert [a.id for a in listed] == [asset_id]
    sdk.assets.delete(asset_id)
    with pytest.raises(NotFoundError):
        sdk.assets.retrieve(asset_id)
    with pytest.raises(BadRequestError):
        sdk.assets.create(method="url")


def test_batch_methods_and_pagers(sdk: TwelveLabs, emu: Emu, videos: dict[str, Path]) -> None:
    asset_id = _ready_asset(sdk, emu, videos["short"])
    prompt = BatchPrompt(input_text="Summarise.")
    created = [
        sdk.analyze_async.batches.create(
            model_name="pegasus1.5",
            analysis_mode="general",
            requests=_requests(asset_id, 2),
            defaults={"prompt": prompt},
        )
        for _ in range(3)
    ]
    assert created[0].items[0].custom_id == "item-0"
    emu.advance(10)
    listed = list(sdk.analyze_async.batches.list(page_limit=2, status=["completed"]))
    assert [b.batch_id for b in listed] == [c.batch_id for c in reversed(created)]
    batch = sdk.analyze_async.batches.retrieve(created[0].batch_id)
    assert batch.status == "completed"
    assert batch.ready_items == 2
    assert batch.completed_at is not None
    lines = list(sdk.analyze_async.batches.results(created[0].batch_id))
    assert [line.status for line in lines] == ["ready", "ready"]
    assert lines[0].data is not None
    task = sdk.analyze_async.tasks.retrieve(lines[0].task_id)
    assert task.batch_id == created[0].batch_id
    assert task.result is not None
    assert task.request_params is not None
    assert task.request_params.prompt == "Summarise."
    tasks = sdk.analyze_async.tasks.list(asset_id=asset_id, status="ready")
    assert len(tasks.data) == 6
    sdk.analyze_async.batches.delete(created[0].batch_id)
    with pytest.raises(NotFoundError):
        sdk.analyze_async.batches.retrieve(created[0].batch_id)
    with pytest.raises(NotFoundError):
        sdk.analyze_async.tasks.retrieve(lines[0].task_id)


def test_batch_typed_errors(sdk: TwelveLabs, emu: Emu, videos: dict[str, Path]) -> None:
    asset_id = _ready_asset(sdk, emu, videos["short"])
    create = sdk.analyze_async.batches.create
    with pytest.raises(BadRequestError) as bad:
        create(model_name="pegasus1.5", analysis_mode="general", requests=_requests(asset_id, 1))
    assert bad.value.body["error"]["code"] == "parameter_not_provided"
    defaults = {"prompt": BatchPrompt(input_text="x")}
    with pytest.raises(NotFoundError):
        create(model_name="pegasus1.5", analysis_mode="general", requests=_requests("f" * 24, 1), defaults=defaults)
    ids = [
        create(model_name="pegasus1.5", analysis_mode="general", requests=_requests(asset_id, 1), defaults=defaults)
        for _ in range(5)
    ]
    with pytest.raises(TooManyRequestsError):
        create(model_name="pegasus1.5", analysis_mode="general", requests=_requests(asset_id, 1), defaults=defaults)
    canceled = sdk.analyze_async.batches.cancel(ids[0].batch_id)
    assert canceled.status == "canceling"
    with pytest.raises(ConflictError):
        sdk.analyze_async.batches.cancel(ids[0].batch_id)
    with pytest.raises(ConflictError):
        sdk.analyze_async.batches.delete(ids[1].batch_id)
    emu.advance(1)
    assert sdk.analyze_async.batches.retrieve(ids[0].batch_id).status == "canceled"
    with pytest.raises(NotFoundError):
        list(sdk.analyze_async.batches.results("0" * 24))


def test_processing_asset_is_conflict(sdk: TwelveLabs, videos: dict[str, Path]) -> None:
    with videos["short"].open("rb") as handle:
        asset = sdk.assets.create(method="direct", file=handle)
    assert asset.id is not None
    with pytest.raises(ConflictError):
        sdk.analyze_async.batches.create(
            model_name="pegasus1.5",
            analysis_mode="general",
            requests=_requests(asset.id, 1),
            defaults={"prompt": BatchPrompt(input_text="x")},
        )


def test_unauthorized_is_an_api_error_401(emu: Emu) -> None:
    with httpx.Client() as http:
        wrong = TwelveLabs(api_key="wrong", base_url=emu.server.api_url, httpx_client=http)
        with pytest.raises(ApiError) as error:
            wrong.analyze_async.batches.retrieve("0" * 24)
    assert error.value.status_code == 401


def test_sdk_upload_helper_end_to_end(sdk: TwelveLabs, emu: Emu, videos: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "upload.mp4"
    source.write_bytes(videos["short"].read_bytes())  # the helper writes chunk files next to the source
    result = sdk.multipart_upload.upload_file(source, batch_size=3, max_retries=0)
    assert f"/_assets/{result.asset_id}/content?" in result.asset_url  # a signed URL, like the platform's
    emu.advance(5)
    asset = sdk.assets.retrieve(result.asset_id)
    assert asset.status == "ready"
    assert asset.method == "multipart"
    assert asset.size == source.stat().st_size
    assert emu.control.get(result.asset_url).content == source.read_bytes()


def test_multipart_low_level_methods(sdk: TwelveLabs, emu: Emu) -> None:
    data = b"x" * 10_000  # three chunks of 4096 bytes
    session = sdk.multipart_upload.create(filename="raw.bin", type="video", total_size=len(data))
    assert session.upload_id
    assert session.total_chunks == 3
    assert session.upload_urls
    assert [u.chunk_index for u in session.upload_urls] == [1, 2, 3]
    more = sdk.multipart_upload.get_additional_presigned_urls(session.upload_id, start=2, count=2)
    assert [u.chunk_index for u in more.upload_urls or []] == [2, 3]
    incomplete = list(sdk.multipart_upload.list_incomplete_uploads())
    assert [u.upload_id for u in incomplete] == [session.upload_id]
    chunks = []
    for url, index in zip(more.upload_urls or [], (2, 3), strict=True):
        piece = data[(index - 1) * 4096 : index * 4096]
        put = httpx.put(url.url or "", content=piece)
        chunks.append(
            CompletedChunk(chunk_index=index, proof=put.headers["etag"], proof_type="etag", chunk_size=len(piece))
        )
    report = sdk.multipart_upload.report_chunk_batch(session.upload_id, completed_chunks=chunks)
    assert (report.processed_chunks, report.total_completed, report.url) == (2, 2, None)
    status = sdk.multipart_upload.get_status(session.upload_id, page_limit=2)
    assert [c.status for c in status] == ["pending", "completed", "completed"]
    bad = CompletedChunk(chunk_index=1, proof="0" * 32, proof_type="etag", chunk_size=4096)
    with pytest.raises(BadRequestError):
        sdk.multipart_upload.report_chunk_batch(session.upload_id, completed_chunks=[bad])
    with pytest.raises(NotFoundError):
        sdk.multipart_upload.get_status("0" * 24)
    tampered = (session.upload_urls[0].url or "").replace("signature=", "signature=0")
    assert httpx.put(tampered, content=data[:4096]).status_code == 403
