"""Form bodies for ``POST /assets``: multipart/form-data (with a file) or urlencoded (without)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from twelvelabs_emulator.api_errors import invalid


@dataclass
class FormFile:
    filename: str | None
    content: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, FormFile] = field(default_factory=dict)


def parse_form(content_type: str, body: bytes) -> Form:
    if content_type.startswith("multipart/form-data"):
        return _parse_multipart(content_type, body)
    if content_type.startswith("application/x-www-form-urlencoded") or not body:
        pairs = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return Form(fields={key: values[-1] for key, values in pairs.items()})
    raise invalid("content-type", "must be multipart/form-data")


def _parse_multipart(content_type: str, body: bytes) -> Form:
    # The stdlib MIME parser reads form-data once the Content-Type header is put in front of the body.
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise invalid("body", "is not a valid multipart/form-data body")
    form = Form()
    for part in message.iter_parts():
        _add_part(form, part)
    return form


def _add_part(form: Form, part: Message) -> None:
    name = part.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        return
    payload = part.get_payload(decode=True)
    content = payload if isinstance(payload, bytes) else b""
    filename = part.get_filename()
    if filename is not None or part.get_content_type() == "application/octet-stream":
        form.files[name] = FormFile(filename=filename, content=content)
    else:
        form.fields[name] = content.decode("utf-8", errors="replace")
