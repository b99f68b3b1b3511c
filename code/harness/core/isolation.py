"""A job in a process of its own (LoadGen reads its mlperf.conf once per process)."""
from __future__ import annotations

import os
import pickle
import sys
import tempfile
from typing import Any, Callable

from harness.core.errors import HarnessError
from harness.core.paths import REPO_ROOT
from harness.core.interrupt import install_process_handlers, run_child
from harness.core.storage import storage_error


def run_isolated(function: Callable[[Any], Any], job: Any) -> Any:
    """`function(job)` in a fresh Python process, its result back here: a job in, a result out (both pickled).

    LoadGen reads its mlperf.conf once per process, and a second FromConfig in one process marks the log as not valid
    for submission: every scenario of a multi-scenario command runs this way. The child runs in its own process
    group (harness/interrupt.py run_child): Ctrl-C reaches this process, which passes it on, waits for the child to
    mark its run, and raises RunInterrupted. A HarnessError in the child (printed there) comes back as a HarnessError.
    """
    code_dir = os.path.join(REPO_ROOT, "code")
    with tempfile.TemporaryDirectory(prefix="mlperf-job-") as tmp:
        job_path, result_path = os.path.join(tmp, "job.pickle"), os.path.join(tmp, "result.pickle")
        with open(job_path, "wb") as f:
            pickle.dump((function, job), f)
        rc = run_child([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from harness.core.isolation import job_main; sys.exit(job_main(sys.argv[2], sys.argv[3]))",
                        code_dir, job_path, result_path])
        try:
            with open(result_path, "rb") as f:
                status, value = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            raise HarnessError(f"The process running {getattr(function, '__name__', 'the job')} ended with exit "
                               f"code {rc} and no result (see the messages above).") from None
    if status == "ok":
        return value
    raise HarnessError(value)


def job_main(job_path: str, result_path: str) -> int:
    """The child side of run_isolated: run the pickled job, pickle the outcome, exit as code/main.py would."""
    install_process_handlers()
    with open(job_path, "rb") as f:
        function, job = pickle.load(f)
    try:
        try:
            outcome, code = ("ok", function(job)), 0
        except OSError as e:   # a storage fault nothing below named: the path and the cause, as code/main.py says it
            if not e.filename or isinstance(e, BrokenPipeError):
                raise
            raise storage_error(e, e.filename, "accessing it") from None
    except HarnessError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        outcome, code = ("error", str(e)), getattr(e, "exit_code", 2)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        outcome, code = ("error", "Interrupted."), 130
    with open(result_path, "wb") as f:
        pickle.dump(outcome, f)
    return code
