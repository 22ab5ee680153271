"""kerasreg: logistic-regression baselines with Keras, tf.distribute, SavedModel and ONNX.

Extras: train (kerasreg), export (+ tf2onnx, onnx, onnxruntime, ai-edge-litert), serve
(onnxruntime: no TensorFlow), litert (LiteRT's runtime instead: no TensorFlow, no onnxruntime),
http (serve + granian, an HTTP server), notebook (train + a Jupyter kernel), dev (everything the tests need).
"""

from setuptools import find_packages, setup

# Pinned to the minor versions checked together here; tf2onnx and onnx constrain the rest.
TRAIN = [
    "tensorflow>=2.21,<2.22",
    "keras>=3.15,<3.16",
    "tensorflow-datasets>=4.9,<4.10",
    "importlib_resources",  # tensorflow-datasets' downloader needs it and does not declare it
    "numpy>=1.26",
    "scipy>=1.11",
    "scikit-learn>=1.4",
    "h5py>=3.10",
    "pillow>=10.1",  # draws the run directory's pictures (kerasreg/reports/drawing.py; load_default(size=) is 10.1)
    "xxhash>=3.4",  # keys the decoded-folder cache by each file's content (kerasreg/datasets/folder_cache.py)
]
LITERT_RUNTIME = "ai-edge-litert>=2.3,<2.4"  # runs .tflite files with no TensorFlow (59 MB)
# ai-edge-litert checks the LiteRT files; Pillow (from TRAIN) writes the sample PNGs.
EXPORT = TRAIN + ["tf2onnx>=1.17,<1.18", "onnx>=1.23,<1.24", "onnxruntime>=1.32,<1.33", LITERT_RUNTIME]
# pyspng (libspng): decodes a small PNG 7x faster than Pillow; Pillow does every other image.
IMAGES = ["numpy>=1.26", "pillow>=10.1", "pyspng>=0.1.4"]
SERVE = [*IMAGES, "onnxruntime>=1.32,<1.33"]  # .onnx files
LITERT = [*IMAGES, LITERT_RUNTIME]  # .tflite files: no onnxruntime, no TensorFlow
# The HTTP server: granian (Rust, hyper) through RSGI, on uvloop's event loop where it is
# built; orjson for JSON in and out; prometheus-client writes /metrics; python-multipart
# (Starlette's form parser) reads uploaded forms; grpcio and protobuf serve --grpc-port
# (protobuf 6.31 or 7: the range TensorFlow 2.21 takes too).
HTTP = SERVE + [
    "granian>=2.8,<2.9",
    "uvloop>=0.19; sys_platform != 'win32'",
    "orjson>=3.9",
    "prometheus-client>=0.20",
    "python-multipart>=0.0.20",
    "grpcio>=1.85,<1.86",
    "protobuf>=6.31.1,<8",
]
# hypothesis: property-based tests; playwright: drives Debian's Chromium for the page's tests;
# starlette and uvicorn: benchmarks/naive_endpoint.py, the baseline.
TOOLS = [
    "pytest>=8",
    "pytest-xdist>=3.6",  # make test spreads the tests over the cores: each keeps to its own folders and ports
    "httpx[http2]>=0.27",  # http2: the TLS tests speak HTTP/2
    "hypothesis>=6",
    "playwright>=1.40",
    "starlette>=0.40",
    "uvicorn>=0.30",
    "httptools>=0.6",  # uvicorn's http="httptools" in the baseline endpoint: uvicorn does not bring it
    "ruff>=0.6",
    # tests/test_notebook.py runs notebooks/course_week2.ipynb headless, in an ipykernel (NOTEBOOK's).
    "nbclient>=0.10",
    "nbformat>=5.10",
    # The reference v2 clients the tests and the benchmark run against the server, with their defaults
    # (tritonclient[grpc] wants protobuf < 7); grpcio-tools compiles inference.proto (make grpc): 1.80 is the
    # last whose protoc runs on protobuf 6.
    "tritonclient[http,grpc]>=2.73,<2.74",
    "grpcio-tools==1.80.0",
    # The OpenAPI document checked (openapi-spec-validator) and fuzzed against a live server (schemathesis).
    "openapi-spec-validator>=0.7",
    "schemathesis>=4,<5",
    # deploy/'s manifests: the built-in kinds against Kubernetes' schemas (the CRDs through jsonschema).
    "kubernetes-validate>=1.31",
    "pyyaml>=6",
    # The documentation site (make docs; tests/test_docs.py builds it): the API reference from the docstrings.
    "mkdocs-material>=9.5",
    "mkdocstrings[python]>=0.26",
]
# The notebook (notebooks/course_week2.ipynb) in the user's own Jupyter: training, a kernel, and matplotlib,
# which the course's notebook draws with.
# jupyterlab to open it; nbconvert runs it headless (make notebook).
NOTEBOOK = TRAIN + ["ipykernel>=6", "matplotlib>=3.8", "jupyterlab>=4", "nbconvert>=7"]
DEV = sorted(set(EXPORT + LITERT + HTTP + NOTEBOOK + TOOLS))

setup(
    name="kerasreg",
    version="0.1.0",  # the one place: kerasreg, export and serve read it back from the installed metadata
    description="Logistic-regression baselines: Keras training, tf.distribute, SavedModel/ONNX export, "
    "TensorFlow-free serving",
    packages=find_packages(
        include=["kerasreg", "kerasreg.*", "export", "export.*", "serve", "serve.*", "shared", "shared.*"]
    ),
    # The page at / (onnxruntime-web itself comes from `make web`, in a source checkout).
    package_data={
        "serve": [
            "web/index.html",
            "web/app.js",
            "web/style.css",
            "web/package.json",
            "web/package-lock.json",
            "protocols/grpc/inference.proto",
        ]
    },
    python_requires=">=3.10",
    install_requires=[],  # each part brings its own: `serve` must not pull in TensorFlow
    extras_require={
        "train": TRAIN,
        "export": EXPORT,
        "serve": SERVE,
        "litert": LITERT,
        "http": HTTP,
        "notebook": NOTEBOOK,
        "dev": DEV,
    },
)
