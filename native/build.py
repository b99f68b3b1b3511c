#!/usr/bin/env python3
"""Build and install `loadgen_native` (LoadGen + the native SUT core) into the running Python's environment.

    .venv/bin/python native/build.py                 # what `make venv` runs
    .venv/bin/python native/build.py --sdist FILE    # a carried sdist (machines without PyPI)
    .venv/bin/python native/build.py --wheel_dir DIR # also keep the wheel (to carry to a machine of the same Python)
    python3 native/build.py --sdist FILE --target DIR # install into DIR (pip --target), e.g. on a GPU host

LoadGen's sources are never committed: the sdist of the version pinned in requirements.txt is fetched from PyPI
(`pip download`) or taken from --sdist, and its sha256 must be the one below. Build dependencies: a C++17 compiler,
pybind11 and setuptools (pinned in requirements.txt; native/setup.py refuses another pybind11). About a minute on 2
cores. Then native/selftest.py runs in a child process (a 1 s Server and an Offline run through the native SUT, ~2 s)
and its outcome goes into loadgen_native.selftest.json next to the module: harness/loadgen/sut.py uses the module only with a
passed record of that file under the same numpy (a crash, hang or failure marks it unusable: --sut=auto falls back
to the Python SUT with a warning; --strict makes the build exit 2 instead).
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# mlcommons-loadgen sdists this build accepts: version -> sha256 (PyPI's digest of mlcommons_loadgen-<v>.tar.gz).
SDIST_SHA256 = {"6.0.17": "a2e85d09e3cc0c606f89bfe1fbf97537c8b5b238ae0afbd923ad9c710fcf2ca8"}
SELFTEST_RECORD = "loadgen_native.selftest.json"   # next to the installed module; harness/loadgen/sut.py reads it
SELFTEST_TIMEOUT_S = 90        # it takes ~2 s; a hang (a deadlocked worker) ends here


def pinned_version() -> str:
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        m = re.search(r"^mlcommons-loadgen==(\S+)", f.read(), re.M)
    if not m:
        sys.exit("native/build.py: requirements.txt pins no mlcommons-loadgen==<version>.")
    return m.group(1)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sdist(version: str, work: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
                    "--no-binary", ":all:", f"mlcommons-loadgen=={version}", "-d", work], check=True)
    found = glob.glob(os.path.join(work, f"mlcommons_loadgen-{version}.tar.gz"))
    if not found:
        sys.exit(f"native/build.py: pip download gave no mlcommons_loadgen-{version}.tar.gz in {work}.")
    return found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", help="mlcommons_loadgen-<version>.tar.gz to build from (default: from PyPI)")
    parser.add_argument("--wheel_dir", help="keep the built wheel here")
    parser.add_argument("--no_install", action="store_true", help="build the wheel only (needs --wheel_dir)")
    parser.add_argument("--target", help="install into this folder (pip install --target) instead of the environment")
    parser.add_argument("--no_selftest", action="store_true",
                        help="skip the self-test (the module is then untested, and harness/loadgen/sut.py never uses it)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 2 when the self-test fails (default: mark the module unusable, exit 0)")
    parser.add_argument("--install_wheel", metavar="WHEEL",
                        help="install this prebuilt loadgen_native wheel (e.g. one --wheel_dir kept) and self-test it; "
                             "no build")
    opts = parser.parse_args()
    work = os.path.join(ROOT, "build", "native")
    os.makedirs(work, exist_ok=True)
    if opts.install_wheel:
        return install_and_test(os.path.abspath(opts.install_wheel), opts, work)
    version = pinned_version()
    if version not in SDIST_SHA256:
        sys.exit(f"native/build.py: no sha256 known for mlcommons-loadgen {version} (requirements.txt); add PyPI's "
                 "digest of its sdist to SDIST_SHA256.")
    sdist = os.path.abspath(opts.sdist) if opts.sdist else fetch_sdist(version, work)
    digest = sha256(sdist)
    if digest != SDIST_SHA256[version]:
        sys.exit(f"native/build.py: {sdist} has sha256 {digest}, expected {SDIST_SHA256[version]} for "
                 f"mlcommons-loadgen {version}. Refusing to build from it.")
    src_parent = os.path.join(work, "src")
    shutil.rmtree(src_parent, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(src_parent, filter="data")
    src = os.path.join(src_parent, f"mlcommons_loadgen-{version}")
    wheel_dir = os.path.abspath(opts.wheel_dir) if opts.wheel_dir else tempfile.mkdtemp(dir=work)
    for stale in [os.path.join(ROOT, "native", "build")] + glob.glob(os.path.join(ROOT, "native", "*.egg-info")):
        shutil.rmtree(stale, ignore_errors=True)   # setuptools reuses objects by source mtime: never stale ones
    env = dict(os.environ, LOADGEN_SRC=src)
    try:
        import numpy
        import pybind11
        using = f"pybind11 {pybind11.__version__} ({os.path.dirname(pybind11.__file__)}), numpy {numpy.__version__}"
    except ImportError as e:
        using = f"({e})"
    print(f"[native] building loadgen_native from {os.path.basename(sdist)} (sha256 ok) with {sys.executable} "
          f"{sys.version.split()[0]}, {using}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
                    "--no-build-isolation", "-w", wheel_dir, os.path.join(ROOT, "native")], check=True, env=env)
    (wheel,) = glob.glob(os.path.join(wheel_dir, f"loadgen_native-{version}-*.whl"))
    if not opts.no_install:
        rc = install_and_test(wheel, opts, work)
        if rc:
            return rc
    print(f"[native] wheel: {wheel}")
    return 0


def install_and_test(wheel: str, opts, work: str) -> int:
    """pip-installs the wheel (into --target or the environment) and self-tests the installed module."""
    where = ["--target", os.path.abspath(opts.target), "--upgrade"] if opts.target else []
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
                    "--force-reinstall", *where, wheel], check=True)
    check_env = dict(os.environ)
    if opts.target:
        check_env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(opts.target),
                                                                 os.environ.get("PYTHONPATH")]))
    # Where the module landed, found without importing it (an import may be what crashes).
    out = subprocess.run([sys.executable, "-c", "import importlib.util as u, json, numpy; print(json.dumps("
                          "[u.find_spec('loadgen_native').origin, numpy.__version__]))"],
                         capture_output=True, text=True, cwd=work, env=check_env)
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit(f"native/build.py: the installed module cannot be found: {out.stderr[-2000:]}")
    module, numpy_version = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"[native] installed {module}")
    if not opts.no_selftest:
        passed = selftest(module, numpy_version, check_env, work, prebuilt=bool(opts.install_wheel),
                          refuse=link_problem(module))
        if not passed and opts.strict:
            return 2
    return 0


def elf_needed(path: str) -> list:
    """The DT_NEEDED entries (shared libraries it loads) of a 64-bit little-endian ELF file; [] for anything else."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    needed = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 6 or not entsize:          # SHT_DYNAMIC; its sh_link is the string table of the names
            continue
        strtab_offset = sections[link][4]
        for pos in range(offset, offset + size, entsize):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == 1:                      # DT_NEEDED
                end = data.index(b"\0", strtab_offset + value)
                needed.append(data[strtab_offset + value:end].decode())
    return needed


def link_problem(module: str):
    """Why a built module must not be used as linked, or None. A module that embeds libstdc++ (no DT_NEEDED
    libstdc++.so.6) runs a second C++ runtime beside the one numpy loads: it crashed LoadGen's logging thread on the
    1xH200 host (native/setup.py, libstdcxx_link_args)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        needed = elf_needed(module)
    except (OSError, ValueError, IndexError, struct.error) as e:
        return f"its dynamic section could not be read ({e})"
    if not any(n.startswith("libstdc++.so") for n in needed):
        return (f"it is linked with a static copy of libstdc++ (it loads only {', '.join(needed) or 'nothing'}), "
                "which clashes with the libstdc++.so.6 that numpy loads; build it with a toolchain whose "
                "libstdc++.so.6 the linker finds")
    return None


def selftest(module: str, numpy_version: str, env: dict, cwd: str,
             script: str = os.path.join(ROOT, "native", "selftest.py"), prebuilt: bool = False,
             refuse: str = None) -> bool:
    """native/selftest.py in a child process (a 1 s Server and an Offline run through the native SUT); its outcome
    goes into loadgen_native.selftest.json next to the module, which harness/loadgen/sut.py reads before it ever imports
    the module: a module whose self-test crashed, hung or failed is never used (`--sut=auto` falls back to the
    Python SUT with a warning, `--sut=native` is an error). refuse: a reason not to run it at all (link_problem):
    recorded as the failure."""
    record_path = os.path.join(os.path.dirname(module), SELFTEST_RECORD)
    if os.path.exists(record_path):
        os.remove(record_path)      # a build cut short from here on leaves no record: untested, never used
    try:
        import pybind11
        pybind11_version = "unknown (a prebuilt wheel)" if prebuilt else pybind11.__version__
    except ImportError:
        pybind11_version = "unknown"
    record = {"passed": False, "module": module, "module_sha256": sha256(module),
              "source_sha256": sha256(os.path.join(ROOT, "native", "loadgen_native.cc")),
              "python": sys.version.split()[0], "numpy": numpy_version, "pybind11": pybind11_version,
              "selftest": "native/selftest.py", "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print(f"[native] self-test: a 1 s Server and an Offline run through the native SUT (native/selftest.py)",
          flush=True)
    started = time.monotonic()
    if refuse:
        rc, output = 1, f"native/build.py: the module was not self-tested: {refuse}."
    else:
        rc, output = run_child(script, env, cwd)
    record["seconds"] = round(time.monotonic() - started, 1)
    ok_line = [line for line in output.splitlines() if line.startswith("SELFTEST OK ")]
    result = json.loads(ok_line[-1][len("SELFTEST OK "):]) if rc == 0 and ok_line else None
    if result is not None and os.path.realpath(result["module"]) != os.path.realpath(module):
        rc, output = 1, output + f"\nnative/selftest.py imported {result['module']}, not the module just built"
    elif result is not None:
        record["passed"] = True
        record["result"] = result
        record["pybind11"] = result.get("pybind11", pybind11_version)
    if not record["passed"]:
        how = (f"timed out after {SELFTEST_TIMEOUT_S} s" if rc is None else
               f"killed by signal {-rc} ({signal_name(-rc)})" if rc < 0 else f"exit status {rc}")
        record["error"] = f"not run: {refuse}" if refuse else f"native/selftest.py {how}"
        record["output_tail"] = output[-6000:]
    with open(record_path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(record_path + ".tmp", record_path)
    if record["passed"]:
        print(f"[native] self-test passed in {record['seconds']} s: {record_path}")
        return True
    print(f"{output[-6000:]}\n"
          f"WARNING: native/build.py: the built loadgen_native FAILED its self-test ({record['error']}; Python "
          f"{record['python']}, numpy {record['numpy']}, pybind11 {record['pybind11']}); its output is above and in "
          f"{record_path}. It is marked unusable: runs with --sut=auto use the Python SUT (with a warning), "
          f"--sut=native refuses to run. Please report this output.", file=sys.stderr, flush=True)
    return False


def run_child(script: str, env: dict, cwd: str):
    """(exit status or None on a timeout, stdout + stderr) of the self-test script in a child process."""
    try:
        res = subprocess.run([sys.executable, "-X", "faulthandler", script],
                             capture_output=True, text=True, cwd=cwd, env=env, timeout=SELFTEST_TIMEOUT_S)
        return res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired as e:
        return None, "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
                             for x in (e.stdout, e.stderr))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
