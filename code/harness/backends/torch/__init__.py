"""The torch backend (backend.py)."""
from .backend import BACKEND  # noqa: F401
