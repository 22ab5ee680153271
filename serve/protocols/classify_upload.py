"""An image uploaded as it is: POST /models/NAME[/versions/V]/classify[?top_k=K].

    curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg' localhost:8501/models/catvnoncat/classify
    curl -F image=@cat.jpg -F image=@dog.png 'localhost:8501/models/catvnoncat/classify?top_k=1'

The body is one image (Content-Type image/png, image/jpeg, image/bmp, image/gif,
image/webp or application/octet-stream), or a multipart/form-data form whose files
are all in the field `image` (one answer each, in order). Each image is decoded,
turned upright, converted and resized as a training folder's are (shared/image_files.py),
after its header's size is checked against the pixel limits. The answer names the
model and version and gives each image's top classes, likeliest first.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from serve.errors import BadInput, ServeError
from serve.limits import MAX_COUNT, read_count
from serve.plane.dataplane import DataPlane, InferenceRequest, ModelView, Parsed
from serve.plane.image_budget import plan_decoding
from serve.protocols.http_messages import Request, Response, json_response
from serve.protocols.multipart_form import form_files
from shared.ranking import DEFAULT_TOP_K, top_classes

IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "application/octet-stream")
FORM = "multipart/form-data"
FIELD = "image"


class UnsupportedMediaType(ServeError):
    """A body of a type the route does not take."""

    status_code = 415


def top_k(query: str, classes: int) -> int:
    """The `top_k` query parameter (DEFAULT_TOP_K when absent), within 1..classes after clipping, or BadInput."""
    values = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(values) - {"top_k"})
    if unknown:
        raise BadInput(f"unknown query parameter {unknown[0][:40]!r}; this route takes top_k.")
    if "top_k" not in values:
        return min(DEFAULT_TOP_K, classes)
    text = values["top_k"][-1]
    k = read_count(text)
    if k is None or k < 1:
        raise BadInput(f"top_k {text[:40]!r} is not a positive integer (at most {MAX_COUNT}).")
    return min(k, classes)


def _images(request: Request, max_files: int) -> list[tuple[str | None, bytes]]:
    """(filename or None, bytes) of each uploaded image."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == FORM:
        files = form_files(request.body, content_type, FIELD, max_files)
        if not files:
            raise BadInput(f"the form holds no files; send each image as a file in field {FIELD!r}.")
        return files
    if media in IMAGE_TYPES:
        if not request.body:
            raise BadInput("the request body is empty; send the image's bytes as the body.")
        return [(None, request.body)]
    raise UnsupportedMediaType(
        f"Content-Type {media[:60]!r} is not taken here; send the image as the body ({', '.join(IMAGE_TYPES)}) or "
        f"as {FORM} with field {FIELD!r}."
    )


async def classify(plane: DataPlane, request: Request) -> Response:
    """The top classes of each uploaded image, from the version the path names.

    Nothing of the upload is read on the event loop: the data plane reads the form and
    every image's header in the parsing thread, and decodes the pixels in a decoding
    thread, each under the timeout.
    """
    k = None

    def parse(found: ModelView) -> Parsed:
        nonlocal k
        k = top_k(request.query, len(found.info.classes))
        uploads = _images(request, plane.max_batch)
        names = [filename for filename, _ in uploads]

        def label(i: int) -> str:
            return f"image {i}" + (f" ({names[i][:60]!r})" if names[i] else "")

        encoded = dict(enumerate(data for _, data in uploads))
        return Parsed(plan_decoding(encoded, found.model, plane.limits, label), names)

    params = request.path_params
    asked = InferenceRequest(params["name"], params.get("version"), parse, len(request.body), off_loop=True)
    answer = await plane.infer(asked)
    classes, names = answer.info.classes, answer.context
    predictions = []
    for name, row, picked in zip(names, answer.probabilities, top_classes(answer.probabilities, k), strict=True):
        top = [{"class": classes[j], "probability": float(row[j])} for j in picked]
        predictions.append({"filename": name, "top": top} if name is not None else {"top": top})
    body = {"model_name": answer.name, "model_version": str(answer.version), "predictions": predictions}
    return json_response(body, labels=answer.labels)
