#!/usr/bin/env bash
# Sourced by the scripts/gpu/*.sh scripts on a GPU host without internet: LoadGen (the carried cp312 wheel), and the
# native SUT core (loadgen_native) built from the carried LoadGen sdist with the carried pybind11/setuptools and
# self-tested (native/build.py), all into $SITE, which goes first on PYTHONPATH. NATIVE=0 skips the native build.
# Sets NATIVE_OK=1 when loadgen_native passed its self-test (the harness's --sut=auto then uses it).
# Carry .whl/ (scripts/gpu/prepare_capacity.sh makes it here).
SITE=${SITE:-/tmp/harness-site}
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
NATIVE_OK=0
python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --upgrade --target "$SITE" \
  .whl/mlcommons_loadgen-6.0.17-cp312-*.whl .whl/pybind11-*.whl .whl/setuptools-*.whl \
  || { echo "setup_site: no LoadGen/pybind11/setuptools wheels in .whl/ (run scripts/gpu/prepare_capacity.sh here)"; return 1; }
if [ "${NATIVE:-1}" != 0 ]; then
  for w in .whl/loadgen_native-*-cp312-*.whl; do
    [ -f "$w" ] || continue
    python3 native/build.py --install_wheel "$w" --target "$SITE" && echo "== loadgen_native: prebuilt $w"
  done
  if ! python3 -c "import sys; sys.path.insert(0, 'code'); from harness.sut import native_status as s; sys.exit(0 if s()[0] else 1)" 2>/dev/null; then
    echo "== loadgen_native: building from the carried sdist"
    python3 native/build.py --sdist .whl/mlcommons_loadgen-6.0.17.tar.gz --target "$SITE"
  fi
  python3 -c "import sys; sys.path.insert(0, 'code'); from harness.sut import native_status as s; m, why = s(); \
              print('== loadgen_native: ' + ('self-tested, in use (--sut=auto)' if m else 'NOT usable: ' + why)); \
              sys.exit(0 if m else 1)" && NATIVE_OK=1
fi
