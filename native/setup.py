"""Builds the `loadgen_native` extension: LoadGen's C++ from its PyPI sdist + native/loadgen_native.cc.

Run through native/build.py (which fetches and checks the sdist and sets LOADGEN_SRC), not by hand.
"""
import hashlib
import os

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

SRC = os.environ.get("LOADGEN_SRC")
if not SRC or not os.path.isfile(os.path.join(SRC, "loadgen.cc")):
    raise SystemExit("LOADGEN_SRC must name the unpacked mlcommons-loadgen sdist; run `python native/build.py`.")
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "loadgen_native.cc"), "rb") as f:   # the module carries its source's digest:
    SOURCE_SHA256 = hashlib.sha256(f.read()).hexdigest()          # harness/sut.py refuses a stale build
with open(os.path.join(SRC, "VERSION.txt")) as f:
    VERSION = f.read().strip()
MAJOR, MINOR = VERSION.split(".")[:2]

# LoadGen's library sources as its own setup.py lists them; bindings/python_api.cc is #included by ours.
LIB = ["early_stopping.cc", "issue_query_controller.cc", "loadgen.cc", "logging.cc", "test_settings_internal.cc",
       "utils.cc", "version.cc", "results.cc", "generated/version_generated.cc"]

ParallelCompile("LOADGEN_NATIVE_JOBS", default=0).install()   # every core: LoadGen's files compile in parallel

setup(
    name="loadgen-native",
    version=VERSION,
    description="MLPerf LoadGen with the harness's native SUT core, in one module",
    cmdclass={"build_ext": build_ext},
    ext_modules=[Pybind11Extension(
        "loadgen_native",
        sources=[os.path.join(HERE, "loadgen_native.cc")] + [os.path.join(SRC, f) for f in LIB],
        include_dirs=[SRC],
        define_macros=[("MAJOR_VERSION", MAJOR), ("MINOR_VERSION", MINOR),
                       # pybind11 state of its own: the PyPI mlperf_loadgen (same pybind11) registers the same
                       # C++ types; both modules may then be imported in one process.
                       ("PYBIND11_COMPILER_TYPE", '"_gcc_loadgen_native"'),
                       ("HARNESS_NATIVE_SOURCE_SHA256", f'"{SOURCE_SHA256}"')],
        extra_compile_args=["-O3"],
        cxx_std=17,
    )],
    zip_safe=False,
)
