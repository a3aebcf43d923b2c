"""How records look on the wire: the JSON the SDK's pydantic types parse.

``variants`` change only the presentation here: new_enum_values renames statuses and finish reasons on the way out
(filters still match the documented values), ready_with_warning adds the partial-result error to ready items.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Set
from datetime import datetime
from typing import Any

from twelvelabs_emulator.clock import rfc3339
from twelvelabs_emulator.models import AssetRecord, BatchRecord, ItemRecord, UploadSession
from twelvelabs_emulator.variants import (
    NEW_BATCH_STATUS,
    NEW_FINISH_REASON,
    NEW_ITEM_STATUS,
    PARTIAL_RESULT_MESSAGE,
    Variant,
)

Variants = Set[Variant]
# The truncation warning the SDK documents on a ready task whose finish_reason is length (AnalyzeTaskError.message).
TRUNCATION_WARNING = (
    "output truncated: the generation reached the configured max_tokens. The partial output is returned; "
    "raise max_tokens if you need a longer response."
)

_MIME_BY_FORMAT = {"mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/webm", "avi": "video/x-msvideo"}


def asset_status(asset: AssetRecord, now: datetime) -> str:
    if asset.ready_at is None or now < asset.ready_at:
        return "processing"
    return "ready" if asset.media is not None else "failed"


def asset_view(asset: AssetRecord, now: datetime) -> dict[str, Any]:
    status = asset_status(asset, now)
    view: dict[str, Any] = {
        "_id": asset.asset_id,
        "method": asset.method,
        "status": status,
        "filename": asset.filename,
        "file_type": _mime_type(asset),
        "created_at": rfc3339(asset.created_at),
    }
    if asset.user_metadata:
        view["user_metadata"] = asset.user_metadata
    if status == "ready" and asset.media is not None:
        view["duration"] = asset.media.duration_seconds
        view["size"] = asset.media.size_bytes
        view["technical_metadata"] = _technical_metadata(asset)
    elif status == "failed":
        view["error"] = {"message": asset.error_message or "The file could not be processed."}
    return view


def _mime_type(asset: AssetRecord) -> str | None:
    if asset.media is not None and asset.media.format_name in _MIME_BY_FORMAT:
        return _MIME_BY_FORMAT[asset.media.format_name]
    return mimetypes.guess_type(asset.filename or "")[0]


def _technical_metadata(asset: AssetRecord) -> dict[str, Any]:
    media = asset.media
    assert media is not None
    return {
        "file_size_bytes": media.size_bytes,
        "file_mime_type": _mime_type(asset),
        "file_container_format": media.format_name,
        "video_codec": media.video_codec,
        "video_width": media.video_width,
        "video_height": media.video_height,
        "video_fps": media.video_fps,
        "video_duration_seconds": media.duration_seconds,
        "has_audio": media.has_audio,
        "total_video_streams": 1,
        "total_audio_streams": 1 if media.has_audio else 0,
    }


def batch_created_view(batch: BatchRecord, variants: Variants) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id,
        "status": _batch_status(batch, variants),
        "total_items": len(batch.items),
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.expires_at),
        "items": [{"task_id": item.task_id, "custom_id": item.custom_id} for item in batch.items],
    }


def batch_view(batch: BatchRecord, variants: Variants) -> dict[str, Any]:
    counts = dict.fromkeys(("queued", "processing", "ready", "failed", "canceled"), 0)
    for item in batch.items:
        counts[item.status] += 1
    view: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "analysis_mode": batch.analysis_mode,
        "model_name": batch.model_name,
        "status": _batch_status(batch, variants),
        "total_items": len(batch.items),
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.expires_at),
        **{f"{status}_items": count for status, count in counts.items()},
    }
    # Each terminal timestamp appears only in its own status.
    stamp = {"completed": batch.completed_at, "canceled": batch.canceled_at, "expired": batch.expired_at}
    if batch.status in stamp and stamp[batch.status] is not None:
        view[f"{batch.status}_at"] = rfc3339(stamp[batch.status])  # type: ignore[arg-type]
    if batch.webhooks:
        view["webhooks"] = [status.model_dump() for status in batch.webhooks]
    return view


def result_line(item: ItemRecord, variants: Variants) -> dict[str, Any]:
    """A results line: ``data`` when ready, ``error`` when failed (the SDK's BatchResultItem), or a warning."""
    line: dict[str, Any] = {
        "task_id": item.task_id,
        "custom_id": item.custom_id,
        "status": _item_status(item, variants),
    }
    if item.status == "ready" and item.result is not None:
        line["data"] = _result(item.result, variants)
        if Variant.READY_WITH_WARNING in variants:
            line["error"] = {"message": _partial_result(item)}
    if item.status == "failed" and item.error is not None:
        line["error"] = item.error
    return line


def task_view(item: ItemRecord, analysis_mode: str, variants: Variants) -> dict[str, Any]:
    view: dict[str, Any] = {
        "task_id": item.task_id,
        "custom_id": item.custom_id,
        "batch_id": item.batch_id,
        "status": _item_status(item, variants),
        "created_at": rfc3339(item.created_at),
        "video_source": {
            "type": "asset_id",
            "asset_id": item.asset_id,
            "system_metadata": {"duration": item.video_duration_seconds},
        },
        "request_params": _request_params_view(item.request_params, analysis_mode),
    }
    if item.completed_at is not None:
        view["completed_at"] = rfc3339(item.completed_at)
    if item.status == "ready" and item.result is not None:
        view["result"] = _result(item.result, variants)
        if Variant.READY_WITH_WARNING in variants:
            view["error"] = {"message": _partial_result(item)}
        elif item.result.get("finish_reason") == "length":
            view["error"] = {"message": TRUNCATION_WARNING}
    if item.status in ("failed", "canceled") and item.error is not None:
        view["error"] = item.error
    return view


def _partial_result(item: ItemRecord) -> str:
    definitions = (item.request_params.get("response_format") or {}).get("segment_definitions") or []
    what = f" for segment_definitions {definitions[0]['id']}" if definitions else ""
    return PARTIAL_RESULT_MESSAGE.format(what=what)


def _batch_status(batch: BatchRecord, variants: Variants) -> str:
    if Variant.NEW_ENUM_VALUES in variants:
        return NEW_BATCH_STATUS.get(batch.status, batch.status)
    return batch.status


def _item_status(item: ItemRecord, variants: Variants) -> str:
    if Variant.NEW_ENUM_VALUES in variants:
        return NEW_ITEM_STATUS.get(item.status, item.status)
    return item.status


def _result(result: dict[str, Any], variants: Variants) -> dict[str, Any]:
    if Variant.NEW_ENUM_VALUES not in variants:
        return result
    reason = result.get("finish_reason")
    return {**result, "finish_reason": NEW_FINISH_REASON.get(reason, reason) if isinstance(reason, str) else reason}


def _request_params_view(params: dict[str, Any], analysis_mode: str) -> dict[str, Any]:
    # The task object reports the prompt text as ``prompt`` and the structured prompt as ``prompt_v2``.
    view = {key: value for key, value in params.items() if key != "prompt"}
    view["analysis_mode"] = analysis_mode
    prompt = params.get("prompt")
    if prompt is not None:
        view["prompt"] = prompt["input_text"]
        view["prompt_v2"] = prompt
    return view


def upload_urls_view(urls: list[tuple[int, str]], expires_at: datetime) -> list[dict[str, Any]]:
    return [{"chunk_index": index, "url": url, "expires_at": rfc3339(expires_at)} for index, url in urls]


def upload_summary_view(session: UploadSession) -> dict[str, Any]:
    return {
        "upload_id": session.upload_id,
        "status": session.status,
        "total_size": session.total_size_bytes,
        "chunk_size": session.chunk_size_bytes,
        "total_chunks": session.total_chunks,
        "created_at": rfc3339(session.created_at),
        "expires_at": rfc3339(session.expires_at),
    }


def chunk_view(session: UploadSession, index: int) -> dict[str, Any]:
    reported = session.reported_at.get(index)
    view: dict[str, Any] = {"index": index, "status": "completed" if reported else "pending"}
    if reported is not None:
        view["uploaded_at"] = rfc3339(reported)
        view["updated_at"] = rfc3339(reported)
    return view


def page_info(page: int, page_limit: int, total_results: int) -> dict[str, int]:
    return {
        "page": page,
        "limit_per_page": page_limit,
        "total_page": max(1, -(-total_results // page_limit)),
        "total_results": total_results,
    }
