"""`--action=download_model`: the model file of the registry entry, md5-checked (resnet50/model_files.py)."""
from __future__ import annotations


from typing import Optional

from harness.config.command import Command
from resnet50.model_files import ensure_model
from resnet50.models import get_model


def download_model(args: Command, argv: Optional[list[str]] = None) -> None:
    ensure_model(get_model(args.model), args.model_path, force=bool(args.overwrite))
