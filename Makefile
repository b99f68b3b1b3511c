# MLPerf Inference ResNet50 harness. Every target installs what it needs into .venv first.
#   make demo                      the main job on the embedded default (ONNX Runtime on this CPU)
#   make test                      the whole test suite
#   make run_harness RUN_ARGS="--benchmarks=resnet50 --scenarios=Offline --test_mode=PerformanceOnly"
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MAIN := $(PY) code/main.py
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv demo test download_model preprocess_data calibrate generate_engines run_harness run clean_logs

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) scripts/demo.py $(RUN_ARGS)

test: venv
	$(PY) -m pytest tests $(PYTEST_ARGS)

download_model: venv
	$(MAIN) --action=download_model $(RUN_ARGS)

preprocess_data: venv
	$(MAIN) --action=preprocess_data $(RUN_ARGS)

calibrate: venv
	$(MAIN) --action=calibrate $(RUN_ARGS)

generate_engines: venv
	$(MAIN) --action=generate_engines $(RUN_ARGS)

run_harness: venv
	$(MAIN) --action=run_harness $(RUN_ARGS)

run: venv
	$(MAIN) --action=run $(RUN_ARGS)

clean_logs:
	rm -rf build/logs

# --- Container and TensorRT targets (prebuild, launch_docker, attach_docker) ---

# --- Submission and audit targets ---
