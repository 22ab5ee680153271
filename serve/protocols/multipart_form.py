"""A `multipart/form-data` body's files, parsed by python-multipart (Starlette's parser), within limits.

    files = form_files(body, content_type, field="image", max_files=256)  # [(filename, bytes), ...]

The parser is streaming; this module only collects the parts, names what is wrong in
one line (BadInput), and enforces what the parser leaves to its caller, as Starlette
does: how many parts, how large each non-file field may be, and which field names
are taken. Each part's headers are bounded by the parser itself (count and size).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from serve.errors import BadInput

MAX_FIELD_BYTES = 1024  # a form field that is no file (none is taken; this bounds what is read of one)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


def form_files(body: bytes, content_type: str, field_name: str, max_files: int) -> list[tuple[str | None, bytes]]:
    """The files sent as `field_name` (filename or None, bytes), in order; BadInput for anything else in the form."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadInput("multipart/form-data without a boundary in its Content-Type; let the client set the header.")
    parts: list[_Part] = []
    header: list[bytes] = [b"", b""]  # the field and value of the header being read

    def part_begin() -> None:
        if len(parts) >= max_files:
            raise BadInput(f"the form holds more than {max_files} parts; send at most {max_files} images a request.")
        parts.append(_Part())

    def part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part.size += end - start
        if b"filename" not in part.headers.get(b"content-disposition", b"") and part.size > MAX_FIELD_BYTES:
            raise BadInput(f"a form field that is no file holds more than {MAX_FIELD_BYTES} bytes.")
        part.chunks.append(data[start:end])

    def header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        parts[-1].headers[header[0].lower()] = header[1]
        header[0] = header[1] = b""

    callbacks = {
        "on_part_begin": part_begin,
        "on_part_data": part_data,
        "on_header_field": header_field,
        "on_header_value": header_value,
        "on_header_end": header_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except FormParserError as e:  # what the parser raises for a body or a boundary it refuses
        raise BadInput(f"the multipart/form-data body does not parse ({str(e)[:120]}).") from None
    if parser.state != MultipartState.END:
        raise BadInput("the multipart/form-data body ends before its closing boundary; send it whole.")
    return [_file(part, i, field_name) for i, part in enumerate(parts)]


def _file(part: _Part, index: int, field_name: str) -> tuple[str | None, bytes]:
    from python_multipart.multipart import parse_options_header

    disposition, options = parse_options_header(part.headers.get(b"content-disposition", b""))
    name = options.get(b"name", b"").decode("latin-1")
    if disposition != b"form-data" or not name:
        raise BadInput(
            f"form part {index} has no Content-Disposition: form-data; name=...; send files as {field_name!r}."
        )
    if name != field_name:
        raise BadInput(f"form field {name[:40]!r} is not taken; send each image as a file in field {field_name!r}.")
    filename = options.get(b"filename")
    return (filename.decode("utf-8", "replace") if filename is not None else None), b"".join(part.chunks)
