from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from videobatch.domain.uploads import (
    HEAD_BYTES_NEEDED,
    MULTIPART_EXPIRY_MARGIN_SECONDS,
    MULTIPART_SESSION_SECONDS,
    Container,
    IgnoreReason,
    MultipartUploadSession,
    UploadDecision,
    UploadMethod,
    UploadPlan,
    event_key_candidates,
    inspect_upload,
    sniff_container,
)
from videobatch.errors import ConfigurationError, RejectedUploadError
from videobatch.twelvelabs import limits

PAD = bytes(HEAD_BYTES_NEEDED)


def _pad(head: bytes) -> bytes:
    return (head + PAD)[:HEAD_BYTES_NEEDED]


def _ts(packet: int, offset: int = 0) -> bytes:
    data = bytearray(HEAD_BYTES_NEEDED)
    data[offset] = 0x47
    data[offset + packet] = 0x47
    return bytes(data)


MP4 = _pad(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00")
MOV = _pad(b"\x00\x00\x00\x14ftypqt  ")
OLD_MOV = _pad(b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat")
MKV = _pad(b"\x1a\x45\xdf\xa3\x01\x00\x00\x00")
AVI = _pad(b"RIFF\x00\x10\x00\x00AVI LIST")
WAV = _pad(b"RIFF\x00\x10\x00\x00WAVEfmt ")
TS = _ts(188)
M2TS = _ts(192, offset=4)
PS = _pad(b"\x00\x00\x01\xba\x44")
FLV = _pad(b"FLV\x01\x05")
ASF = _pad(bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"))
PDF = _pad(b"%PDF-1.7\n")
HEIC = _pad(b"\x00\x00\x00\x18ftypheic")
M4A = _pad(b"\x00\x00\x00\x18ftypM4A ")
JPEG = _pad(b"\xff\xd8\xff\xe0")
ONE_G = _pad(b"G")  # a text file starting with "G": one sync byte is not TS


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (MP4, Container.ISO_BMFF),
        (MOV, Container.ISO_BMFF),
        (OLD_MOV, Container.ISO_BMFF),
        (MKV, Container.MATROSKA),
        (AVI, Container.AVI),
        (TS, Container.MPEG_TS),
        (M2TS, Container.MPEG_TS),
        (PS, Container.MPEG_PS),
        (FLV, Container.FLV),
        (ASF, Container.ASF),
        (PDF, None),
        (WAV, None),
        (HEIC, None),
        (M4A, None),
        (JPEG, None),
        (ONE_G, None),
        (b"", None),
        (b"\x00\x00\x00", None),
    ],
)
def test_sniff_container(head: bytes, expected: Container | None) -> None:
    assert sniff_container(head) is expected


@pytest.mark.parametrize(
    ("key", "size", "head", "method", "container"),
    [
        ("videos/a.mp4", 1, MP4, UploadMethod.URL, Container.ISO_BMFF),
        ("videos/a.MOV", limits.MAX_URL_UPLOAD_BYTES, MOV, UploadMethod.URL, Container.ISO_BMFF),
        ("videos/a.mkv", limits.MAX_URL_UPLOAD_BYTES + 1, MKV, UploadMethod.MULTIPART, Container.MATROSKA),
        ("a.webm", limits.MAX_MULTIPART_UPLOAD_BYTES, MKV, UploadMethod.MULTIPART, Container.MATROSKA),
        ("x/y/z.avi", 100, AVI, UploadMethod.URL, Container.AVI),
        ("clip.ts", 100, TS, UploadMethod.URL, Container.MPEG_TS),
        ("clip.mts", 100, M2TS, UploadMethod.URL, Container.MPEG_TS),
        ("clip.mpg", 100, PS, UploadMethod.URL, Container.MPEG_PS),
        ("clip.flv", 100, FLV, UploadMethod.URL, Container.FLV),
        ("clip.wmv", 100, ASF, UploadMethod.URL, Container.ASF),
        # Mislabelled but real video is accepted: the content decides the container.
        ("clip.mp4", 100, MKV, UploadMethod.URL, Container.MATROSKA),
        # A "results" folder elsewhere in the key is not the results prefix.
        ("videos/results/a.mp4", 100, MP4, UploadMethod.URL, Container.ISO_BMFF),
    ],
)
def test_processable_uploads(key: str, size: int, head: bytes, method: UploadMethod, container: Container) -> None:
    plan = inspect_upload(key=key, size_bytes=size, head_bytes=head, results_prefix="results/")
    assert plan == UploadPlan(decision=UploadDecision.PROCESS, size_bytes=size, method=method, container=container)


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        ("results/abc/result.json", 10, IgnoreReason.RESULTS_PREFIX),
        ("results/abc/video.mp4", 10, IgnoreReason.RESULTS_PREFIX),
        ("results/", 0, IgnoreReason.RESULTS_PREFIX),
        ("videos/", 0, IgnoreReason.DIRECTORY_MARKER),
        ("videos/new folder/", 0, IgnoreReason.DIRECTORY_MARKER),
    ],
)
def test_ignored_objects_do_not_become_items(key: str, size: int, reason: IgnoreReason) -> None:
    plan = inspect_upload(key=key, size_bytes=size, head_bytes=b"", results_prefix="results/")
    assert plan.decision is UploadDecision.IGNORE
    assert plan.ignore_reason is reason
    assert plan.method is None
    assert plan.container is None


@pytest.mark.parametrize(
    ("key", "size", "head", "reason", "message_part"),
    [
        ("a.mp4", 0, b"", "empty_object", "0 bytes"),
        ("a.pdf", 100, PDF, "not_a_video_extension", "has .pdf"),
        ("README", 100, PDF, "not_a_video_extension", "no extension"),
        ("dir.mp4/file", 100, MP4, "not_a_video_extension", "no extension"),
        ("a.mp4.txt", 100, MP4, "not_a_video_extension", ".txt"),
        ("a.mp4", limits.MAX_MULTIPART_UPLOAD_BYTES + 1, MP4, "too_large", "at most 10 GB"),
        ("videos/clip/", 100, MP4, "not_a_video_extension", "ends in '/' (a folder name) but holds 100 bytes"),
        ("videos/clip.", 100, MP4, "not_a_video_extension", "a name ending in '.'"),
        ("a.mp4", 100, PDF, "not_a_video_content", "first bytes"),
        ("a.mov", 100, HEIC, "not_a_video_content", "first bytes"),
        ("a.avi", 100, WAV, "not_a_video_content", "first bytes"),
        ("a.mp4", 3, b"\x00\x00\x00", "not_a_video_content", "first bytes"),
    ],
)
def test_rejected_uploads(key: str, size: int, head: bytes, reason: str, message_part: str) -> None:
    with pytest.raises(RejectedUploadError) as info:
        inspect_upload(key=key, size_bytes=size, head_bytes=head, results_prefix="results/")
    assert info.value.reason == reason
    assert message_part in info.value.message
    assert key in info.value.message


def test_empty_results_prefix_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="results_prefix"):
        inspect_upload(key="a.mp4", size_bytes=1, head_bytes=MP4, results_prefix="")


@pytest.mark.parametrize(
    "fields",
    [
        {"decision": UploadDecision.PROCESS, "method": UploadMethod.URL},
        {"decision": UploadDecision.PROCESS, "method": UploadMethod.URL, "container": Container.AVI,
         "ignore_reason": IgnoreReason.RESULTS_PREFIX},
        {"decision": UploadDecision.IGNORE},
        {"decision": UploadDecision.IGNORE, "ignore_reason": IgnoreReason.RESULTS_PREFIX, "method": UploadMethod.URL},
    ],
)  # fmt: skip
def test_upload_plan_rejects_inconsistent_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="process plans need"):
        UploadPlan.model_validate({"size_bytes": 1, **fields})


@pytest.mark.parametrize(
    ("in_event", "candidates"),
    [
        ("videos/cat.mp4", ("videos/cat.mp4",)),
        ("my+video.mp4", ("my video.mp4", "my+video.mp4")),
        ("caf%C3%A9.mp4", ("café.mp4", "caf%C3%A9.mp4")),
        ("a%2Bb.mp4", ("a+b.mp4", "a%2Bb.mp4")),
        ("100%25.mp4", ("100%.mp4", "100%25.mp4")),
        ("50%2525.mp4", ("50%25.mp4", "50%2525.mp4")),  # a literal "%25" in the key, encoded once more
    ],
)
def test_event_keys_are_decoded_as_s3_encodes_them(in_event: str, candidates: tuple[str, ...]) -> None:
    assert event_key_candidates(in_event) == candidates


# --- multipart upload sessions ---------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(**changes: Any) -> MultipartUploadSession:
    values: dict[str, Any] = {
        "upload_id": "up",
        "asset_id": "as",
        "chunk_bytes": 100,
        "total_chunks": 3,
        "total_bytes": 250,
        "now": T0,
        "expires_at": None,
        **changes,
    }
    return MultipartUploadSession.started(**values)


def test_a_session_confirms_its_chunks_in_order_and_knows_their_spans() -> None:
    session = _session()
    assert (session.next_chunk, session.complete, session.confirmed_bytes) == (1, False, 0)
    assert [session.chunk_span(i) for i in (1, 2, 3)] == [(0, 100), (100, 100), (200, 50)]
    with pytest.raises(ValueError, match="out of order; the next is 1"):
        session.confirmed(2)
    done = session.confirmed(1).confirmed(2).confirmed(3)
    assert (done.next_chunk, done.complete, done.confirmed_bytes) == (4, True, 250)
    with pytest.raises(ValueError, match=r"outside 1\.\.3"):
        done.chunk_span(4)


def test_a_session_without_an_expiry_gets_the_documented_day_and_stops_being_usable_before_it() -> None:
    session = _session()
    assert session.expires_at == T0 + timedelta(seconds=MULTIPART_SESSION_SECONDS)
    margin = timedelta(seconds=MULTIPART_EXPIRY_MARGIN_SECONDS)
    assert session.usable(session.expires_at - margin - timedelta(seconds=1))
    assert not session.usable(session.expires_at - margin)
    assert not session.usable(session.expires_at + timedelta(days=1))


@pytest.mark.parametrize(
    ("total_chunks", "total_bytes"),
    [(2, 250), (4, 250), (3, 300 + 1)],
)
def test_a_session_whose_chunks_cannot_hold_the_object_is_refused(total_chunks: int, total_bytes: int) -> None:
    with pytest.raises(ValidationError, match="must hold total_bytes"):
        _session(total_chunks=total_chunks, total_bytes=total_bytes)


def test_confirmed_chunks_cannot_exceed_the_total() -> None:
    with pytest.raises(ValidationError, match="cannot exceed"):
        MultipartUploadSession.model_validate({**_session().model_dump(), "confirmed_chunks": 4})


@pytest.mark.parametrize(
    ("url_upload_max_bytes", "size", "method"),
    [
        (0, 100, UploadMethod.MULTIPART),  # an endpoint that cannot reach the bucket: every object pushed
        (1_000, 1_000, UploadMethod.URL),
        (1_000, 1_001, UploadMethod.MULTIPART),
        (limits.MAX_URL_UPLOAD_BYTES, limits.MAX_URL_UPLOAD_BYTES, UploadMethod.URL),
    ],
)
def test_the_url_upload_bound_is_a_setting(url_upload_max_bytes: int, size: int, method: UploadMethod) -> None:
    plan = inspect_upload(
        key="a.mp4",
        size_bytes=size,
        head_bytes=MP4,
        results_prefix="results/",
        url_upload_max_bytes=url_upload_max_bytes,
    )
    assert plan.method is method
