"""The baseline: what a user could write in 20 lines. Starlette, orjson, onnxruntime, no checks.

    python benchmarks/naive_endpoint.py MODEL.onnx PORT     (uvicorn with uvloop and httptools)

It answers the same requests as `serve http` (v1 instances, nested or b64 PNG; v2
infer) and validates nothing: the figure to beat, not a server to run.
"""

import base64
import io
import sys

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])


def run(images):
    return session.run(None, {"images": np.asarray(images, dtype=np.uint8)})[0]


def pixels(instance):
    if isinstance(instance, dict):
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(instance["b64"]))))[..., None]
    return instance


async def predict(request):
    body = orjson.loads(await request.body())
    probabilities = run([pixels(i) for i in body["instances"]])
    return Response(orjson.dumps({"predictions": probabilities}, option=orjson.OPT_SERIALIZE_NUMPY))


async def infer(request):
    tensor = orjson.loads(await request.body())["inputs"][0]
    probabilities = run(np.reshape(tensor["data"], tensor["shape"]))
    out = {"name": "probabilities", "datatype": "FP32", "shape": probabilities.shape, "data": probabilities.ravel()}
    return Response(orjson.dumps({"outputs": [out]}, option=orjson.OPT_SERIALIZE_NUMPY))


routes = [Route("/v1/models/{name}:predict", predict, methods=["POST"])]
app = Starlette(routes=routes + [Route("/v2/models/{name}/infer", infer, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", loop="uvloop", http="httptools")
