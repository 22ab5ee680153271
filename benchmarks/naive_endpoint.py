"""The baseline a user could write in 20 lines: Starlette + orjson + onnxruntime, no checks.

    python benchmarks/naive_endpoint.py MODEL.onnx PORT     (uvicorn with uvloop and httptools)
"""

import sys

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])


async def predict(request):
    body = orjson.loads(await request.body())
    probabilities = session.run(None, {"images": np.asarray(body["instances"], dtype=np.uint8)})[0]
    return Response(orjson.dumps({"predictions": probabilities}, option=orjson.OPT_SERIALIZE_NUMPY))


app = Starlette(routes=[Route("/v1/models/{name}:predict", predict, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", loop="uvloop", http="httptools")
