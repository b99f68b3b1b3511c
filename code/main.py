#!/usr/bin/env python3
"""Entry point of the harness: `python3 code/main.py --action=<action> [RUN_ARGS]` (the Makefile calls it).

`code/` is not a package (a package named `code` would shadow the standard library's `code` module, which pdb
imports); this script puts `code/` on sys.path and imports the `harness` and `resnet50` packages from there.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.actions import dispatch, parse_args  # noqa: E402
from harness.core.errors import HarnessError  # noqa: E402
from harness.core.interrupt import install_process_handlers  # noqa: E402
from harness.core.storage import storage_error  # noqa: E402


STDOUT_CLOSED = 141   # 128 + SIGPIPE, as a shell reports a tool that a closed pipe ended (`... | head -1`)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        install_process_handlers()
        args = parse_args(argv)
        rc = dispatch(args, argv)
        sys.stdout.flush()          # a closed pipe shows here, not in the interpreter's last flush
        return rc
    except BrokenPipeError:
        # The reader of stdout went away (`--action=info | head -1`): nothing left to say, no traceback.
        _drop_stdout()
        return STDOUT_CLOSED
    except OSError as e:
        if not e.filename:
            raise
        # A storage fault nothing below turned into a HarnessError: still the path and the cause, no traceback.
        print(f"ERROR: {storage_error(e, e.filename, 'accessing it')}", file=sys.stderr)
        return 2
    except HarnessError as e:
        # 2: an error; 3: accuracy below the target; 130 / 143: interrupted by SIGINT / SIGTERM (command_flags.md)
        print(f"ERROR: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
