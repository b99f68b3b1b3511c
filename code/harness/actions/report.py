"""`--action=report`: the report page of each run folder --log_dir names (the newest under build/logs without it),
and a comparison page when it names several (harness/report/page.py writes them)."""
from __future__ import annotations

from typing import Optional

from harness.config.command import Command
from harness.report.page import render_comparison, render_folder
from harness.report.read import resolve_folders


def report(args: Command, argv: Optional[list[str]] = None) -> int:
    folders = resolve_folders(args.log_dir)
    for path in folders:
        print(f"[report] {render_folder(path)}")
    if len(folders) > 1:
        print(f"[report] comparison: {render_comparison(folders)}")
    return 0
