"""Builds the `loadgen_native` extension: LoadGen's C++ from its PyPI sdist + native/loadgen_native.cc.

Run through native/build.py (which fetches and checks the sdist and sets LOADGEN_SRC), not by hand.
"""
import hashlib
import os
import subprocess
import sys
import sysconfig

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

SRC = os.environ.get("LOADGEN_SRC")
if not SRC or not os.path.isfile(os.path.join(SRC, "loadgen.cc")):
    raise SystemExit("LOADGEN_SRC must name the unpacked mlcommons-loadgen sdist; run `python native/build.py`.")
HERE = os.path.dirname(os.path.abspath(__file__))
# Only the pybind11 that requirements.txt pins: an older one (e.g. a distribution's python3-pybind11 2.11, found
# first on sys.path) reads numpy 2's dtypes wrong and deadlocks when two threads first touch numpy's C API at once.
import re  # noqa: E402

import pybind11  # noqa: E402

with open(os.path.join(os.path.dirname(HERE), "requirements.txt")) as f:
    _pin = re.search(r"^pybind11==(\S+)", f.read(), re.M)
if _pin and pybind11.__version__ != _pin.group(1) and not os.environ.get("LOADGEN_NATIVE_ANY_PYBIND11"):
    raise SystemExit(f"native/setup.py: pybind11 {pybind11.__version__} ({os.path.dirname(pybind11.__file__)}) is "
                     f"importable first, requirements.txt pins pybind11=={_pin.group(1)}: install that one (pip "
                     f"install pybind11=={_pin.group(1)}, or put its wheel first on PYTHONPATH) and build again.")
with open(os.path.join(HERE, "loadgen_native.cc"), "rb") as f:   # the module carries its source's digest:
    SOURCE_SHA256 = hashlib.sha256(f.read()).hexdigest()          # harness/loadgen/sut.py refuses a stale build
with open(os.path.join(SRC, "VERSION.txt")) as f:
    VERSION = f.read().strip()
MAJOR, MINOR = VERSION.split(".")[:2]

# LoadGen's library sources as its own setup.py lists them; bindings/python_api.cc is #included by ours.
LIB = ["early_stopping.cc", "issue_query_controller.cc", "loadgen.cc", "logging.cc", "test_settings_internal.cc",
       "utils.cc", "version.cc", "results.cc", "generated/version_generated.cc"]


def libstdcxx_link_args() -> list:
    """Link flags that make the module load the system's libstdc++.so.6 instead of embedding libstdc++.a.

    A module that embeds a static libstdc++ in a process where numpy (or torch) already loaded libstdc++.so.6 runs
    two copies of the C++ runtime that share some of their globals: on the 1xH200 host (Ubuntu 24.04, the image's
    CXX=/opt/gcc/bin/g++, the system's libstdc++.so.6 of gcc 14, Python's LDSHARED with -Bsymbolic-functions) the
    build embedded libstdc++.a, the two copies disagreed on std::locale's facet ids, and LoadGen's logging thread
    crashed in its first `<<` of an integer (SIGSEGV in a codecvt function called as num_put). Naming
    libstdc++.so.6 on the link line resolves every libstdc++ symbol against the shared library first, so no archive
    member is pulled in, whatever the compiler's defaults or LDFLAGS (-static-libstdc++) say. native/build.py checks
    the result (DT_NEEDED) before it self-tests."""
    if not sys.platform.startswith("linux"):
        return []
    cxx = (os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++").split()
    try:
        found = subprocess.run(cxx + ["-print-file-name=libstdc++.so.6"], capture_output=True, text=True,
                               timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    if os.path.isabs(found) and os.path.isfile(found):
        return [os.path.realpath(found)]       # the very file the compiler would use at run time
    return ["-l:libstdc++.so.6"]               # let the linker search its default directories


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
        extra_link_args=libstdcxx_link_args(),
        cxx_std=17,
    )],
    zip_safe=False,
)
