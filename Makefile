# The two commands a new user needs:
#   make demo   set up .venv and run train -> export -> predict on the bundled digits data
#   make test   set up .venv with the test dependencies and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN ?= runs/demo-digits
EXPORT ?= exports/demo-digits

.PHONY: demo test lint clean

$(VENV)/.stamp-dev: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.stamp-dev
	rm -rf $(RUN)
	$(PY) -m kerasreg.train --dataset digits --out $(RUN)
	$(PY) -m export $(RUN) --out $(EXPORT) --quantize int8 --overwrite
	$(PY) -m serve predict $(EXPORT)/model.onnx $(EXPORT)/samples/*.png --top-k 3

test: $(VENV)/.stamp-dev
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.stamp-dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) runs exports .pytest_cache
