# The two commands a new user needs:
#   make demo   set up .venv and run train -> export -> predict on the bundled digits data
#   make test   set up .venv with the test dependencies and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN ?= runs/demo-digits
EXPORT ?= exports/demo-digits

.PHONY: notebook docs demo test test-fast fuzz grpc web lint bench bench-full results course soak clean wheels image test-deploy bench-deploy

$(VENV)/.stamp-dev: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.stamp-dev
	@echo "make demo: .venv holds kerasreg[dev] (TensorFlow, Keras, tf2onnx, onnxruntime, scikit-learn, ...)"
	rm -rf $(RUN)
	$(PY) -m kerasreg.train --dataset digits --out $(RUN)
	$(PY) -m export $(RUN) --out $(EXPORT) --quantize int8 --overwrite
	$(PY) -m serve predict $(EXPORT)/model.onnx $(EXPORT)/samples/*.png --top-k 3

# -n auto: one pytest worker per core (pytest-xdist); -ra: every skip with its reason.
test: $(VENV)/.stamp-dev
	$(PY) -m pytest -q -ra -n auto $(PYTEST_ARGS)

# Long random campaigns of the property tests (FUZZ_EXAMPLES cases each, fresh random draws every
# run; make test and CI draw the same cases every time), and of schemathesis against a live server
# (API_EXAMPLES cases per operation). A failure prints the @example (or the request) to keep.
FUZZ_EXAMPLES ?= 5000
API_EXAMPLES ?= 500
fuzz: $(VENV)/.stamp-dev
	KERASREG_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KERASREG_SCHEMATHESIS_EXAMPLES=$(API_EXAMPLES) \
		$(PY) -m pytest -q -m fuzz --hypothesis-profile=fuzz $(PYTEST_ARGS)

# inference.proto compiled again into serve/protocols/grpc/descriptor.py, after a change to the .proto.
grpc: $(VENV)/.stamp-dev
	$(PY) -m serve.protocols.grpc.descriptor

# onnxruntime-web for the page at / (serve/web/), pinned by its package-lock.json; without
# it the page still works and asks the server instead. Needs Node.js and npm.
web:
	cd serve/web && npm ci --no-audit --no-fund

# The course's notebook run headless, as a user's Jupyter runs it (needs the course's two files in
# notebooks/data/): the executed copy goes to runs/notebook/. Open it with `jupyter lab` from the venv.
notebook: $(VENV)/.stamp-dev
	$(PY) -m jupyter nbconvert --to notebook --execute notebooks/course_week2.ipynb --output-dir runs/notebook

# The documentation site, from docs/ and the code's docstrings, into site/ (open site/index.html); --strict: a
# broken link, a page left out of the nav or a docstring the API reference cannot read fails.
docs: $(VENV)/.stamp-dev
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# The inner loop: everything but the tests marked slow (50-100 s here, by how busy the host is).
test-fast: $(VENV)/.stamp-dev
	$(PY) -m pytest -q -ra -n auto -m "not slow" $(PYTEST_ARGS)

# Speed against scikit-learn, a numpy floor, a 20-line endpoint and bare onnxruntime
# (~7 min): writes benchmarks/results.json and the README's Performance section.
# Needs the real MNIST test set (KERASREG_TEST_DATA, default ../shared/data) and wrk.
bench: $(VENV)/.stamp-dev
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk, the HTTP load generator: sudo apt-get install wrk"; exit 2; }
	$(PY) benchmarks/run_all.py

# Training at the real datasets' sizes (MNIST 60k, CIFAR-10 50k, built from the real
# images in KERASREG_TEST_DATA; ~3-3.5 h, most of it the scale row's search, 1-1.5 h, and
# LogisticRegressionCV): epoch against the numpy floor, --l2 auto against LogisticRegressionCV, peak
# memory, the epoch at 8k-60k images; then the memory table (64x64x3 images), the
# small-data table (--l2 auto's choice across seeds, by folds and by one split), the
# scale row (1.28M images of 32x32x3, the defaults), the shard table (a 2-worker cluster's
# peaks against one process's) and the quasi-Newton table (full-batch L-BFGS-B along the search's
# path, against its Adam epochs). Writes benchmarks/results-full.json, results-memory.json,
# results-small.json, results-scale.json, results-shard.json, results-quasi-newton.json and
# the docs' tables.
bench-full: $(VENV)/.stamp-dev
	$(PY) benchmarks/full_bench.py

# The README's Results table (~10 min): kerasreg's defaults at seeds 0-2 on digits, MNIST 8k/2k,
# the CIFAR-10 sample and cat vs rest, beside scikit-learn on the same files.
results: $(VENV)/.stamp-dev
	$(PY) benchmarks/results_table.py

# Load and soak (~2 min): 20,000+ requests per kind, single images and batches of 32,
# both protocols, against the demo's export; exits 1 on any failed request.
soak: demo
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make soak needs wrk, the HTTP load generator: sudo apt-get install wrk"; exit 2; }
	$(PY) benchmarks/soak_bench.py $(EXPORT)

# The README's "The course, reproduced, then beaten" and calibration tables (~6 min): the course's recipe,
# each of kerasreg's defaults turned on alone, the defaults and LogisticRegressionCV on the course's files;
# Brier score and ECE on catvnoncat and cat vs rest. Needs KERASREG_TEST_DATA (default ../shared/data).
course: $(VENV)/.stamp-dev
	$(PY) benchmarks/course_table.py

lint: $(VENV)/.stamp-dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) runs exports .pytest_cache serve/web/node_modules test-artifacts

# The container images (deploy/): kerasreg-serve (serve + http + grpc, no TensorFlow) and kerasreg-train
# (kerasreg with TensorFlow). Offline and repeatable: the wheels are built first at the versions in
# deploy/constraints.txt, then podman builds with --network none. Where no registry is reachable (here) the
# bases are Debian's Python built with mmdebstrap (deploy/debian_base.sh); elsewhere:
#   make image BASE=docker.io/library/python:3.11-slim BUILD_BASE=docker.io/library/python:3.11
SERVE_IMAGE ?= localhost/kerasreg-serve
TRAIN_IMAGE ?= localhost/kerasreg-train
BASE ?= localhost/kerasreg-base:bookworm
BUILD_BASE ?= localhost/kerasreg-base:bookworm-build
PODMAN := podman --runtime runc  # runc: crun fails on some kernels' cgroups (hybrid mode)
export CONTAINERS_CONF := $(CURDIR)/deploy/containers.conf

wheels: $(VENV)/.stamp-dev
	$(PY) -m pip wheel --quiet -c deploy/constraints.txt -w deploy/wheels/serve ".[http]" pip
	$(PY) -m pip wheel --quiet -c deploy/constraints.txt -w deploy/wheels/train ".[train]" pip
	cp deploy/constraints.txt deploy/wheels/serve/ && cp deploy/constraints.txt deploy/wheels/train/

image: wheels
	@command -v podman >/dev/null || { echo "make image needs podman (and runc, mmdebstrap): sudo apt-get install podman runc mmdebstrap"; exit 2; }
	@case "$(BASE)" in localhost/kerasreg-base:*) deploy/debian_base.sh ;; esac
	$(PODMAN) build --quiet --network none -f deploy/Containerfile.serve --build-arg BASE=$(BASE) \
		--build-arg BUILD_BASE=$(BUILD_BASE) -t $(SERVE_IMAGE) .
	$(PODMAN) build --quiet --network none -f deploy/Containerfile.train --build-arg BASE=$(BASE) \
		--build-arg BUILD_BASE=$(BUILD_BASE) -t $(TRAIN_IMAGE) .
	@$(PODMAN) images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "kerasreg-(serve|train)"

# The images proven (~10 min, most of it building the train image): stock clients against the serve image,
# a stop under load, a version added while it runs, ready within 2 s; a training cluster of two train
# containers killed and resumed. Where containers cannot run, says why and skips.
test-deploy: $(VENV)/.stamp-dev
	@why="$$(deploy/container_runtime.sh 2>&1)" || { echo "make test-deploy: skipped: $$why"; exit 0; }; \
		$(MAKE) --no-print-directory image && \
		KERASREG_CONTAINER_TESTS=1 $(PY) -m pytest -q -ra tests/test_containers.py $(PYTEST_ARGS)

# The serve image against the same server run bare (requests/s, median of 3 rounds), its cold start and
# both images' sizes: writes benchmarks/results-deploy.json and the README's deploy table.
bench-deploy: image demo
	$(PY) benchmarks/container_bench.py $(EXPORT)
