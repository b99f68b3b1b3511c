"""One exception type for mistakes a person can fix: main.py prints its message and exits non-zero."""


class HarnessError(Exception):
    """A user-facing error: the message names the file, flag or system, what was expected, and what to do."""
