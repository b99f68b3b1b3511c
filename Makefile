# MLPerf Inference ResNet50 harness. Every target installs what it needs into .venv first.
#   make demo                      the main job on the embedded default (ONNX Runtime on this CPU)
#   make test                      the whole test suite
#   make venv NATIVE=0             the venv without the native SUT core (no C++ compiler needed)
#   make run_harness RUN_ARGS="--benchmarks=resnet50 --scenarios=Offline --test_mode=PerformanceOnly"
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MAIN := $(PY) code/main.py
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv demo test download_model preprocess_data calibrate generate_engines run_harness run clean_logs browser

# docker/requirements.py chooses the pins: requirements.txt here; inside the NVIDIA container also its GPU pins, and
# torch only when the image was built with INSTALL_TORCH=1. pip runs as `python -m pip` of the venv.
$(VENV)/.installed: requirements.txt docker/requirements-gpu.txt docker/requirements-gpu-torch.txt docker/requirements.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) docker/requirements.py > $(VENV)/requirements.harness.txt
	$(PY) -m pip install --disable-pip-version-check -q -r $(VENV)/requirements.harness.txt
	@touch $@

# The native SUT core (native/): LoadGen compiled from its pinned PyPI sdist with the harness's C++ SUT, one module
# (loadgen_native). NATIVE=0 skips it; runs then use the pure-Python SUT (--sut=auto falls back to it).
NATIVE ?= 1
$(VENV)/.native: $(VENV)/.installed native/loadgen_native.cc native/setup.py native/build.py native/selftest.py
	$(PY) native/build.py
	@touch $@

venv: $(VENV)/.installed $(if $(filter 1,$(NATIVE)),$(VENV)/.native)

demo: venv
	$(PY) scripts/demo.py $(RUN_ARGS)

test: venv browser
	$(PY) -m pytest tests $(PYTEST_ARGS)

# Headless Chromium (Debian's package) renders the report page in tests/e2e/test_report.py; installed once, as root.
browser:
	@command -v chromium >/dev/null 2>&1 || if [ "$$(id -u)" = 0 ]; then \
	  echo "Installing chromium (Debian) for tests/e2e/test_report.py"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  >/dev/null; \
	else echo "chromium is missing and this is not root: sudo apt-get install chromium (tests/e2e/test_report.py needs it)"; fi

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

# make tune RUN_ARGS="--scenarios=Server [--tune_grid=batch_size=1,2] [--tune_confirm_runs=3] [--tune_write]"
# searches the value the config should hold (code/harness/actions/tune.py, code/harness/tune/); logs and overlay under build/logs/<stamp>/tune/
.PHONY: tune
tune: venv
	$(MAIN) --action=tune $(RUN_ARGS)

clean_logs:
	rm -rf build/logs

# --- Reports and auditor's tools (code/README.md) ---
#   make report RUN_ARGS="--log_dir=build/logs/<timestamp>[,<another>]"   HTML + PNG report of run folder(s)
#   make generate_conf_files [RUN_ARGS="--system_name=... --scenarios=..."]  every user.conf, without running
#   make info                      detected system, the config resolved for it, installed versions
#   make clean                     remove what runs made: build/{logs,engines,submission}, measurements/
#                                  and __pycache__; keeps the venv, build/{models,data,preprocessed_data,inference}
.PHONY: report generate_conf_files info clean
report: venv
	$(MAIN) --action=report $(RUN_ARGS)

generate_conf_files: venv
	$(MAIN) --action=generate_conf_files $(RUN_ARGS)

info: venv
	$(MAIN) --action=info $(RUN_ARGS)

clean:
	rm -rf build/logs build/engines build/submission measurements/*/
	find code tests scripts -name __pycache__ -type d -prune -exec rm -rf {} +

# --- Container and TensorRT targets (prebuild, launch_docker, attach_docker) ---
# The NVIDIA container (docker/Dockerfile; FAQ.md "The TensorRT backend"). They run on the host's python3 (standard
# library only), not in the venv. Needs MLPERF_SCRATCH_PATH, Docker and the NVIDIA Container Toolkit.
#   make prebuild        build mlperf-inference:<user>-latest, link build/{data,preprocessed_data,models} into
#                        $MLPERF_SCRATCH_PATH, and open a shell in the container (all GPUs, the repo at /work)
#   make build_docker    only build the image;  make launch_docker  only open a shell in it
#   make attach_docker   another shell in the running container;  make link_dirs  only the links
# DOCKER_ARGS adds `docker run` options, e.g. DOCKER_ARGS="--gpus device=0 --cpuset-cpus 0-15" (a --gpus, --runtime
# or --device there replaces the default --gpus=all). DOCKER_DRY_RUN=1 prints the docker commands instead.
# DOCKER_BUILD_ARGS adds `docker build` options, e.g. DOCKER_BUILD_ARGS="--build-arg INSTALL_TORCH=0".
DOCKER_ARGS ?=
DOCKER_BUILD_ARGS ?=
export DOCKER_ARGS DOCKER_BUILD_ARGS
DOCKER_SCRIPT := $(PYTHON) scripts/docker.py $(if $(DOCKER_DRY_RUN),--dry_run)

.PHONY: prebuild build_docker launch_docker attach_docker link_dirs

prebuild:
	$(DOCKER_SCRIPT) prebuild

build_docker:
	$(DOCKER_SCRIPT) build

launch_docker:
	$(DOCKER_SCRIPT) launch

attach_docker:
	$(DOCKER_SCRIPT) attach

link_dirs:
	$(DOCKER_SCRIPT) link

# --- Submission and audit targets ---
# make run_audit_harness RUN_ARGS="--system_name=... --scenarios=..."   TEST01 + TEST04, verified against the runs
# make update_results RUN_ARGS="--submitter=MyOrg"   stage the newest valid runs into build/submission (--dry_run)
# make truncate_results / summarize_results / check_submission        then the official checker if build/inference
#   (or RUN_ARGS="--inference_repo=<any local checkout of mlcommons/inference>"; code/README.md, offline use)
.PHONY: run_audit_harness run_audit_test01 run_audit_test04 run_audit_test05 update_results truncate_results \
	summarize_results check_submission clone_inference

run_audit_harness: venv
	$(MAIN) --action=run_audit_harness $(RUN_ARGS)

run_audit_test01: venv
	$(MAIN) --action=run_audit_harness --audit_test=TEST01 $(RUN_ARGS)

run_audit_test04: venv
	$(MAIN) --action=run_audit_harness --audit_test=TEST04 $(RUN_ARGS)

# TEST05 (vary the RNG seeds) was required until v4.1 and dropped in v5.0.
run_audit_test05: venv
	$(MAIN) --action=run_audit_harness --audit_version=v4.1 --audit_test=TEST05 $(RUN_ARGS)

update_results: venv
	$(MAIN) --action=update_results $(RUN_ARGS)

truncate_results: venv
	$(MAIN) --action=truncate_results $(RUN_ARGS)

summarize_results: venv
	$(MAIN) --action=summarize_results $(RUN_ARGS)

check_submission: venv
	$(MAIN) --action=check_submission $(RUN_ARGS)

# mlcommons/inference at the release matching the installed LoadGen (needs internet): the tag INFERENCE_REF when
# given, else the commit that set loadgen/VERSION.txt to the installed mlcommons-loadgen version.
INFERENCE_REPO ?= build/inference
INFERENCE_URL ?= https://github.com/mlcommons/inference.git
INFERENCE_REF ?=
clone_inference: venv
	@if [ -d "$(INFERENCE_REPO)/.git" ]; then echo "$(INFERENCE_REPO) exists; remove it to clone again."; exit 0; fi; \
	set -e; git clone --filter=blob:none "$(INFERENCE_URL)" "$(INFERENCE_REPO)"; \
	ref="$(INFERENCE_REF)"; \
	if [ -z "$$ref" ]; then \
	  version=$$($(PY) -c "from importlib.metadata import version; print(version('mlcommons-loadgen'))"); \
	  ref=$$(for c in $$(git -C "$(INFERENCE_REPO)" log --reverse --format=%H -- loadgen/VERSION.txt); do \
	    if [ "$$(git -C "$(INFERENCE_REPO)" show $$c:loadgen/VERSION.txt | tr -d '[:space:]')" = "$$version" ]; then \
	      echo $$c; break; fi; done); \
	  if [ -z "$$ref" ]; then echo "No commit sets loadgen/VERSION.txt to $$version; pass INFERENCE_REF=<tag>."; exit 1; fi; \
	  echo "LoadGen $$version -> mlcommons/inference $$ref"; \
	fi; \
	git -C "$(INFERENCE_REPO)" checkout --quiet "$$ref"; \
	echo "Checked out $$ref in $(INFERENCE_REPO); make check_submission runs its tools/submission checker."
